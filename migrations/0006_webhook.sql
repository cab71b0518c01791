-- Webhooks of an organization (SabIA §7). The signing secret is stored encrypted
-- (AES-256-GCM, key from CATRACA_SECRET_KEY): nonce (12 bytes) || ciphertext+tag.
CREATE TABLE webhook (
    webhook_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    url               text NOT NULL CHECK (url ~ '^https?://'),
    events            text[] NOT NULL CHECK (cardinality(events) > 0),
    secret_sealed     bytea,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    last_triggered_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_org_idx ON webhook (organization_id);
CREATE TRIGGER webhook_updated_at BEFORE UPDATE ON webhook FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();
