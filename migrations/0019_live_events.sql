-- Live events (MaxAI's /socket.io/, src/live.rs): a key created or revoked by any path
-- (dashboard, operator API, CLI, plain SQL) is notified on 'catraca_live' to the admin app of
-- every node, as a one-item array {"o": organization, "ev": name, "d": key}. Revoking is the
-- status becoming 'revoked' (a deleted key stays as a revoked tombstone), or the row deleted
-- while live. The usage writer notifies usage and budget thresholds on the same channel.
CREATE OR REPLACE FUNCTION notify_live_key() RETURNS trigger AS $$
DECLARE
    k api_key;
    ev text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        k := NEW;
        ev := 'key.created';
    ELSIF TG_OP = 'UPDATE' THEN
        k := NEW;
        ev := 'key.revoked';
    ELSE
        k := OLD;
        ev := 'key.revoked';
    END IF;
    PERFORM pg_notify('catraca_live', json_build_array(json_build_object(
        'o', k.organization_id, 'ev', ev, 'd', json_build_object(
            'id', k.serial_id, 'name', k.name, 'key_prefix', left(k.prefix, 64),
            'status', CASE WHEN TG_OP = 'DELETE' THEN 'revoked' ELSE k.status END,
            'rate_limit_rpm', k.rate_limit_rpm, 'rate_limit_rpd', k.rate_limit_rpd,
            'budget_usd_micros', k.budget_usd_micros,
            'created_us', (extract(epoch FROM k.created_at) * 1000000)::int8,
            'revoked_us', (extract(epoch FROM coalesce(k.revoked_at,
                CASE WHEN ev = 'key.revoked' THEN now() END)) * 1000000)::int8)))::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_key_live_created AFTER INSERT ON api_key
    FOR EACH ROW EXECUTE FUNCTION notify_live_key();
CREATE TRIGGER api_key_live_revoked AFTER UPDATE OF status ON api_key
    FOR EACH ROW WHEN (NEW.status = 'revoked' AND OLD.status IS DISTINCT FROM 'revoked')
    EXECUTE FUNCTION notify_live_key();
CREATE TRIGGER api_key_live_deleted AFTER DELETE ON api_key
    FOR EACH ROW WHEN (OLD.status <> 'revoked')
    EXECUTE FUNCTION notify_live_key();
