-- Webhook deliveries (SabIA §7): an outbox, one row per event and subscribed webhook, delivered
-- by the admin app with retries. `dedup_key` makes an event fire once per period (e.g.
-- 'usage_limit_reached:2026-11').
CREATE TABLE webhook_delivery (
    webhook_delivery_id bigserial PRIMARY KEY,
    webhook_id          uuid NOT NULL REFERENCES webhook (webhook_id) ON DELETE CASCADE,
    event               text NOT NULL,
    dedup_key           text NOT NULL,
    payload             jsonb NOT NULL,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    last_status         integer,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    delivered_at        timestamptz,
    UNIQUE (webhook_id, dedup_key)
);
CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (next_attempt_at) WHERE status = 'pending';

-- Successful requests per organization and UTC month, for organizations whose plan has a
-- quota: incremented by the usage writer under a row lock, so the batch that crosses the quota
-- is known exactly even when several nodes write at once.
CREATE TABLE quota_usage (
    organization_id uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    month           date NOT NULL,
    successful      bigint NOT NULL,
    PRIMARY KEY (organization_id, month)
);
