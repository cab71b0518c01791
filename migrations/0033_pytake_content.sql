-- PyTake content (issue 15 items 1 and 7): an organization's contacts and flows. Every row
-- belongs to one organization and every query is scoped to it.

-- A WhatsApp contact. `whatsapp_id` (the wa_id: digits of the phone number) is unique in the
-- organization; two organizations may know the same person.
CREATE TABLE pytake_contact (
    contact_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    whatsapp_id      text NOT NULL CHECK (whatsapp_id ~ '^[0-9]{8,15}$'),
    name             text CHECK (char_length(name) BETWEEN 1 AND 200),
    email            text CHECK (char_length(email) BETWEEN 3 AND 254),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pytake_contact_org_whatsapp_key UNIQUE (organization_id, whatsapp_id)
);
-- listing: newest first within an organization
CREATE INDEX pytake_contact_org_created_idx
    ON pytake_contact (organization_id, created_at DESC, contact_id DESC);

-- A conversation flow: a graph of nodes (any `type`, stored as given) and edges between
-- them, both jsonb arrays checked by the application (caps, unique node ids, edges naming
-- existing nodes) before they are written.
CREATE TABLE pytake_flow (
    flow_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description      text CHECK (char_length(description) <= 2000),
    status           text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
    nodes            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(nodes) = 'array'),
    edges            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(edges) = 'array'),
    created_by       uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pytake_flow_org_created_idx
    ON pytake_flow (organization_id, created_at DESC, flow_id DESC);
