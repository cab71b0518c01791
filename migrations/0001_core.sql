-- catraca's core schema: tenants, people, keys, usage, catalog, audit.
-- Conventions: singular table names, <table>_id keys, created_at/updated_at kept by trigger,
-- money as bigint micro-units (1 unit = 1e-6 of the currency named in the column), never float.

-- updated_at maintenance for every table that has the column
CREATE OR REPLACE FUNCTION trigger_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- Plans a platform sells (SabIA's sandbox/starter/pro/enterprise, MaxAI tiers).
CREATE TABLE plan (
    plan_id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code                    text NOT NULL UNIQUE,            -- stable id used by clients: 'starter'
    name                    text NOT NULL,
    price_brl_micros        bigint NOT NULL DEFAULT 0 CHECK (price_brl_micros >= 0),
    annual_price_brl_micros bigint NOT NULL DEFAULT 0 CHECK (annual_price_brl_micros >= 0),
    monthly_request_quota   bigint CHECK (monthly_request_quota >= 0),  -- NULL = unlimited
    rate_limit_rps          integer CHECK (rate_limit_rps > 0),
    features                jsonb NOT NULL DEFAULT '[]',
    popular                 boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER plan_updated_at BEFORE UPDATE ON plan FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- The tenant: a seed's team, customer or project. Every admin query is scoped by it.
CREATE TABLE organization (
    organization_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind            text NOT NULL DEFAULT 'team' CHECK (kind IN ('team', 'customer', 'project')),
    plan_id         uuid REFERENCES plan (plan_id),
    logo_url        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER organization_updated_at BEFORE UPDATE ON organization FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- People who log in to the dashboards. Passwords are argon2id PHC strings.
CREATE TABLE app_user (
    user_id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text NOT NULL,
    name              text NOT NULL,
    phone             text,
    company           text,
    avatar_url        text,
    password_hash     text NOT NULL,
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX app_user_email_key ON app_user (lower(email));
CREATE TRIGGER app_user_updated_at BEFORE UPDATE ON app_user FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- Who belongs to which organization, with what role.
CREATE TABLE membership (
    organization_id uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES app_user (user_id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX membership_user_idx ON membership (user_id);

-- API keys: only the SHA-256 of the key and a short display prefix are stored.
CREATE TABLE api_key (
    api_key_id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    serial_id             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,  -- integer id of contracts that use one (MaxAI)
    organization_id       uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    created_by            uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    key_hash              bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    prefix                text NOT NULL,
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description           text,
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'revoked')),
    rate_limit_rpm        integer CHECK (rate_limit_rpm > 0),
    rate_limit_rpd        integer CHECK (rate_limit_rpd > 0),
    rate_limit_tpm        integer CHECK (rate_limit_tpm > 0),
    budget_usd_micros     bigint CHECK (budget_usd_micros >= 0),       -- NULL = no budget
    expires_at            timestamptz,
    scopes                text[] NOT NULL DEFAULT '{}',
    allowed_models        text[] NOT NULL DEFAULT '{}',                -- empty = every model
    last_used_at          timestamptz,
    total_requests        bigint NOT NULL DEFAULT 0,
    total_prompt_tokens   bigint NOT NULL DEFAULT 0,
    total_completion_tokens bigint NOT NULL DEFAULT 0,
    total_cost_usd_micros bigint NOT NULL DEFAULT 0,
    revoked_at            timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_key_organization_idx ON api_key (organization_id, created_at DESC);
CREATE TRIGGER api_key_updated_at BEFORE UPDATE ON api_key FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- Every gateway node LISTENs on 'catraca_api_key' and drops its cached copy of the key whose
-- hash (hex) is the payload, so a change is seen everywhere within milliseconds.
CREATE OR REPLACE FUNCTION notify_api_key_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('catraca_api_key', encode(OLD.key_hash, 'hex'));
        RETURN OLD;
    END IF;
    PERFORM pg_notify('catraca_api_key', encode(NEW.key_hash, 'hex'));
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER api_key_notify_row AFTER INSERT OR DELETE ON api_key
    FOR EACH ROW EXECUTE FUNCTION notify_api_key_change();
-- only columns the gateway caches: the usage writer's updates of the totals notify no one
CREATE TRIGGER api_key_notify_update AFTER UPDATE OF
        key_hash, name, status, expires_at, allowed_models, scopes,
        rate_limit_rpm, rate_limit_rpd, rate_limit_tpm, budget_usd_micros, organization_id
    ON api_key FOR EACH ROW EXECUTE FUNCTION notify_api_key_change();

-- One row per gateway request, written in batches. request_id is unique so a batch replayed
-- from the spill file after an outage is inserted exactly once.
CREATE TABLE usage_event (
    usage_event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id            text NOT NULL UNIQUE,
    organization_id       uuid,
    api_key_id            uuid,
    key_name              text,
    route                 text NOT NULL,
    model                 text,
    deployment            text,
    provider              text,
    status                smallint NOT NULL,
    error                 text,
    attempts              smallint NOT NULL,
    stream                boolean NOT NULL,
    prompt_tokens         bigint NOT NULL,
    completion_tokens     bigint NOT NULL,
    usage_reported        boolean NOT NULL,
    cost_upstream_usd_micros bigint,
    cost_billed_brl_micros   bigint,
    latency_ms            integer NOT NULL,
    ttft_ms               integer,
    session_id            text,
    client_disconnected   boolean NOT NULL,
    created_at            timestamptz NOT NULL
);
-- the dashboards' queries: per tenant or key over a time window, per model over a window
CREATE INDEX usage_event_org_time_idx ON usage_event (organization_id, created_at DESC);
CREATE INDEX usage_event_key_time_idx ON usage_event (api_key_id, created_at DESC);
CREATE INDEX usage_event_model_time_idx ON usage_event (model, created_at DESC);

-- The model catalog as the dashboards show it (the gateway routes from conf/catraca.yaml).
CREATE TABLE model (
    model_id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                  text NOT NULL UNIQUE,
    category              text NOT NULL CHECK (category IN ('chat', 'completion', 'embedding', 'image', 'audio', 'ocr', 'recognition')),
    owned_by              text NOT NULL DEFAULT 'catraca',
    input_usd_micros_per_1m  bigint CHECK (input_usd_micros_per_1m >= 0),
    output_usd_micros_per_1m bigint CHECK (output_usd_micros_per_1m >= 0),
    context_window        integer,
    active                boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER model_updated_at BEFORE UPDATE ON model FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- Who did what: admin actions, one row each.
CREATE TABLE audit_log (
    audit_log_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid REFERENCES organization (organization_id) ON DELETE CASCADE,
    user_id         uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    action          text NOT NULL,
    target          text,
    detail          jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org_time_idx ON audit_log (organization_id, created_at DESC);
