-- Limits of #5: per key, per organization and per plan. NULL = unlimited (an organization's
-- own value wins over its plan's). The gateway caches them with the key, so changes notify it.

ALTER TABLE api_key
    ADD COLUMN rate_limit_rps  integer CHECK (rate_limit_rps > 0),
    ADD COLUMN max_concurrency integer CHECK (max_concurrency > 0);

ALTER TABLE plan
    ADD COLUMN rate_limit_rpm  integer CHECK (rate_limit_rpm > 0),
    ADD COLUMN rate_limit_rpd  integer CHECK (rate_limit_rpd > 0),
    ADD COLUMN rate_limit_tpm  integer CHECK (rate_limit_tpm > 0),
    ADD COLUMN max_concurrency integer CHECK (max_concurrency > 0);

ALTER TABLE organization
    ADD COLUMN rate_limit_rps  integer CHECK (rate_limit_rps > 0),
    ADD COLUMN rate_limit_rpm  integer CHECK (rate_limit_rpm > 0),
    ADD COLUMN rate_limit_rpd  integer CHECK (rate_limit_rpd > 0),
    ADD COLUMN rate_limit_tpm  integer CHECK (rate_limit_tpm > 0),
    ADD COLUMN max_concurrency integer CHECK (max_concurrency > 0);

-- the new key columns are cached too
DROP TRIGGER api_key_notify_update ON api_key;
CREATE TRIGGER api_key_notify_update AFTER UPDATE OF
    key_hash, name, status, expires_at, allowed_models, scopes,
    rate_limit_rpm, rate_limit_rpd, rate_limit_tpm, budget_usd_micros, organization_id,
    rate_limit_rps, max_concurrency
    ON api_key FOR EACH ROW EXECUTE FUNCTION notify_api_key_change();

-- an organization's or a plan's limits change the limits of all its keys: '*' = drop every
-- cached key (rare, operator-driven changes)
CREATE OR REPLACE FUNCTION notify_all_keys() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('catraca_api_key', '*');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER organization_limits_notify AFTER UPDATE OF
    plan_id, rate_limit_rps, rate_limit_rpm, rate_limit_rpd, rate_limit_tpm, max_concurrency
    ON organization FOR EACH ROW EXECUTE FUNCTION notify_all_keys();
CREATE TRIGGER plan_limits_notify AFTER UPDATE OF
    rate_limit_rps, rate_limit_rpm, rate_limit_rpd, rate_limit_tpm, max_concurrency,
    monthly_request_quota
    ON plan FOR EACH ROW EXECUTE FUNCTION notify_all_keys();
