-- Tokia's account routes (issue 14 item 5): a user's preferences, referral codes and who
-- invited whom, which template a queued mail is, and the index the LGPD export's hourly cap
-- reads.

-- One row per user who has set a preference; a user without one has the defaults the domain
-- gives (America/Sao_Paulo, pt-BR, weekly digest on). `timezone` is an IANA name checked
-- against PostgreSQL's own zone database (`pg_timezone_names`) when it is set, so every
-- `AT TIME ZONE` of the usage exports accepts it.
CREATE TABLE user_preference (
    user_id               uuid PRIMARY KEY REFERENCES app_user (user_id) ON DELETE CASCADE,
    timezone              text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    preferred_locale      text NOT NULL CHECK (preferred_locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    weekly_digest_enabled boolean NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER user_preference_updated_at BEFORE UPDATE ON user_preference
    FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- Referrals. A user's code is made once (on the first read of GET /v1/me/referrals) and never
-- changes: 8 characters without the look-alikes 0, O, 1 and I. `referred_by` is set when the
-- operator creates a user with a `referral_code` (POST /admin/v1/users), in the same
-- transaction as the user.
ALTER TABLE app_user
    ADD COLUMN referral_code text CHECK (referral_code ~ '^[A-HJ-NP-Z2-9]{8}$'),
    ADD COLUMN referred_by   uuid REFERENCES app_user (user_id) ON DELETE SET NULL;
CREATE UNIQUE INDEX app_user_referral_code_key ON app_user (referral_code);
CREATE INDEX app_user_referred_by_idx ON app_user (referred_by, created_at)
    WHERE referred_by IS NOT NULL;

-- Which mail a row is (`invitation`, `reset_password`, `verify_email`), as GET
-- /v1/me/notifications shows it; rows queued before this migration are `other`.
ALTER TABLE outbox_email ADD COLUMN template text NOT NULL DEFAULT 'other';
-- a user's mail is found by address, case-insensitively (as the dashboard counts it)
CREATE INDEX outbox_email_to_idx ON outbox_email (lower(to_address));

-- LGPD exports are capped per user per hour by counting their audit rows.
CREATE INDEX audit_log_account_export_idx ON audit_log (user_id, created_at)
    WHERE action = 'account.export';
