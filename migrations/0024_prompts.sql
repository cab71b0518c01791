-- Tokia's prompt library (issue 14 item 9): an organization's saved prompts, each with an
-- append-only history of its bodies. A run is an ordinary gateway request whose session id
-- is `prompt-{prompt_id}-{unix ms}`, so its usage events are found by that prefix.
CREATE TABLE prompt (
    prompt_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    created_by      uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    name            text NOT NULL,
    description     text,
    body            text NOT NULL,
    variables       text[] NOT NULL DEFAULT '{}',
    tags            text[] NOT NULL DEFAULT '{}',
    default_model   text,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX prompt_org_name_key ON prompt (organization_id, name);
CREATE INDEX prompt_org_updated_idx ON prompt (organization_id, updated_at DESC);
CREATE TRIGGER prompt_updated_at BEFORE UPDATE ON prompt FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- One row per version; never updated (a trigger refuses it), removed only with its prompt.
CREATE TABLE prompt_version (
    prompt_id   uuid NOT NULL REFERENCES prompt (prompt_id) ON DELETE CASCADE,
    version     integer NOT NULL,
    body        text NOT NULL,
    variables   text[] NOT NULL,
    change_note text,
    created_by  uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prompt_id, version)
);
CREATE FUNCTION prompt_version_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'prompt_version is append-only';
END $$;
CREATE TRIGGER prompt_version_no_update BEFORE UPDATE ON prompt_version
    FOR EACH ROW EXECUTE FUNCTION prompt_version_append_only();

-- A prompt's runs: its organization's usage events whose session id starts with `prompt-`.
CREATE INDEX usage_event_prompt_session_idx ON usage_event (organization_id, session_id text_pattern_ops)
    WHERE session_id LIKE 'prompt-%';
