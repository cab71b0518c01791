-- Monthly request quotas of plans, enforced by the gateways (see src/funds.rs). Gateways hold
-- each organization's quota account in memory; these notifications make them read it again.

-- a plan's quota changed: every account is read again
CREATE OR REPLACE FUNCTION notify_funds_all() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('catraca_funds', '*');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER plan_quota_notify AFTER UPDATE OF monthly_request_quota ON plan
    FOR EACH ROW EXECUTE FUNCTION notify_funds_all();

-- an organization moved to another plan: its quota account is read again
CREATE OR REPLACE FUNCTION notify_org_quota() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('catraca_funds', 'q:' || NEW.organization_id || ':0:db');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER organization_plan_quota_notify AFTER UPDATE OF plan_id ON organization
    FOR EACH ROW EXECUTE FUNCTION notify_org_quota();
