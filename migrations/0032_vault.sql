-- The secrets vault (PyTake's `secrets/`): envelope encryption, no plaintext anywhere.
-- Each secret has its own random 256-bit data key. `value_sealed` is the value under that
-- data key (AES-256-GCM: nonce || ciphertext+tag, AAD = the secret's id and organization, so a
-- blob copied to another row does not open). `data_key_sealed` is the data key sealed by the
-- master key of version `master_version` (CATRACA_SECRET_KEYS; the same AAD).
CREATE TABLE vault_secret (
    secret_id       uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    -- The contract's `key`: the secret's name, unique per organization and environment.
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    environment     text NOT NULL DEFAULT 'production'
                    CHECK (environment IN ('development', 'staging', 'production')),
    -- What the secret is for (`openai`, `whatsapp`, ...); what `test` checks against.
    service         text CHECK (service IS NULL OR length(service) BETWEEN 1 AND 100),
    description     text CHECK (description IS NULL OR length(description) <= 1000),
    -- Inactive secrets are never used by the platform.
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    value_sealed    bytea NOT NULL,
    data_key_sealed bytea NOT NULL,
    master_version  integer NOT NULL CHECK (master_version >= 1),
    created_by      uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Set by rotate (a fresh data key, or a new value).
    last_rotated_at timestamptz
);
CREATE UNIQUE INDEX vault_secret_org_env_name_key ON vault_secret (organization_id, environment, name);
-- Re-wrapping finds the secrets still sealed under an older master key.
CREATE INDEX vault_secret_master_version_idx ON vault_secret (master_version);
CREATE TRIGGER vault_secret_updated_at BEFORE UPDATE ON vault_secret FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- Every use of a secret by the platform (and every `test`): the usage statistics' source.
CREATE TABLE vault_secret_use (
    use_id          bigserial PRIMARY KEY,
    secret_id       uuid NOT NULL REFERENCES vault_secret (secret_id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    success         boolean NOT NULL,
    -- What used it (`test`, `whatsapp.send`, ...), for the operator; never the value.
    purpose         text NOT NULL CHECK (length(purpose) BETWEEN 1 AND 100),
    used_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vault_secret_use_secret_idx ON vault_secret_use (secret_id, used_at DESC);
CREATE INDEX vault_secret_use_org_idx ON vault_secret_use (organization_id, used_at DESC);
