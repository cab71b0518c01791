-- The operator API (/admin/v1): organizations get a unique slug (given or derived from the
-- name) and can be disabled; a rotated key's old hash must leave every gateway's cache, so
-- the key trigger now also names the OLD hash when the hash changes.
ALTER TABLE organization ADD COLUMN slug text;
CREATE UNIQUE INDEX organization_slug_key ON organization (slug) WHERE slug IS NOT NULL;
ALTER TABLE organization ADD COLUMN disabled_at timestamptz;

CREATE OR REPLACE FUNCTION notify_api_key_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('catraca_api_key', encode(OLD.key_hash, 'hex'));
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.key_hash <> NEW.key_hash THEN
        PERFORM pg_notify('catraca_api_key', encode(OLD.key_hash, 'hex'));
    END IF;
    PERFORM pg_notify('catraca_api_key', encode(NEW.key_hash, 'hex'));
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
