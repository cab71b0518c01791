-- PyTake's WhatsApp (issue 15 item 6): an organization's WhatsApp Cloud API numbers, the
-- messages sent and received through them, and every webhook event applied (once).

-- A WhatsApp Business phone number of an organization, as the Graph API lists it under a
-- WhatsApp Business Account (WABA). Its access token is the vault secret `secret_id`
-- (service `whatsapp`): the number is registered by `POST /api/v1/whatsapp/numbers/sync`,
-- which lists the WABA's numbers with that token. `phone_number_id` (the Graph id) is unique
-- across organizations: webhooks name it, and it must lead to one organization.
CREATE TABLE whatsapp_number (
    number_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    phone_number_id  text NOT NULL UNIQUE CHECK (phone_number_id ~ '^[0-9]{1,30}$'),
    waba_id          text NOT NULL CHECK (waba_id ~ '^[0-9]{1,30}$'),
    -- The token used for this number; deleting the secret leaves the number unusable.
    secret_id        uuid REFERENCES vault_secret (secret_id) ON DELETE SET NULL,
    phone_number     text NOT NULL CHECK (char_length(phone_number) BETWEEN 1 AND 40),
    display_name     text NOT NULL CHECK (char_length(display_name) <= 200),
    status           text NOT NULL CHECK (status IN ('active', 'inactive', 'pending')),
    verified         boolean NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX whatsapp_number_org_idx ON whatsapp_number (organization_id, created_at);
CREATE TRIGGER whatsapp_number_updated_at BEFORE UPDATE ON whatsapp_number FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- A message sent (`out`) or received (`in`) through a number. `wamid` is WhatsApp's message
-- id, unique: a received message delivered twice is stored once. `status` of an outbound
-- message moves forward only (accepted < sent < delivered < read; failed from any).
CREATE TABLE whatsapp_message (
    message_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    number_id        uuid NOT NULL REFERENCES whatsapp_number (number_id) ON DELETE CASCADE,
    wamid            text NOT NULL UNIQUE CHECK (char_length(wamid) BETWEEN 1 AND 200),
    direction        text NOT NULL CHECK (direction IN ('out', 'in')),
    -- The other party's wa_id (digits).
    peer             text NOT NULL CHECK (char_length(peer) BETWEEN 1 AND 40),
    kind             text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 40),
    body             text CHECK (char_length(body) <= 4096),
    template_name    text CHECK (char_length(template_name) <= 512),
    status           text NOT NULL
                     CHECK (status IN ('accepted', 'sent', 'delivered', 'read', 'failed', 'received')),
    -- Set when sent by an automation job.
    job_id           uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX whatsapp_message_org_idx ON whatsapp_message (organization_id, created_at DESC);
CREATE TRIGGER whatsapp_message_updated_at BEFORE UPDATE ON whatsapp_message FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- Every webhook event applied, keyed so a redelivery is recognised: `status:<wamid>:<status>`
-- for a status, `message:<wamid>` for a received message. An event is applied only by the
-- statement that inserts its key.
CREATE TABLE whatsapp_event (
    event_id         bigserial PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    event_key        text NOT NULL UNIQUE CHECK (char_length(event_key) BETWEEN 1 AND 300),
    kind             text NOT NULL CHECK (kind IN ('status', 'message')),
    wamid            text NOT NULL,
    status           text,
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX whatsapp_event_wamid_idx ON whatsapp_event (wamid);
