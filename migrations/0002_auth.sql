-- Sessions and one-time tokens of the admin app. Tokens are stored as SHA-256 only.

-- Rotating refresh tokens. Each refresh marks its token used and issues the next one in the
-- same family; presenting a used token again (theft or replay) revokes the whole family.
CREATE TABLE refresh_token (
    refresh_token_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id        uuid NOT NULL,
    user_id          uuid NOT NULL REFERENCES app_user (user_id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    token_hash       bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,
    revoked_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_token_family_idx ON refresh_token (family_id);
CREATE INDEX refresh_token_user_idx ON refresh_token (user_id);

-- Password reset and email verification: single use, expiring.
CREATE TABLE one_time_token (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id     uuid NOT NULL REFERENCES app_user (user_id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('reset_password', 'verify_email')),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Mail waits here for a sender; tests read it instead of an SMTP server.
CREATE TABLE outbox_email (
    outbox_email_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_address      text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
