-- Tokia's webhook attempts (#14 item 7): every delivery row gets a public attempt id (a UUID,
-- sent as `X-Catraca-Delivery` and taken by `POST /v1/webhooks/attempts/{attemptId}/replay`),
-- and a replay points at the original it clones. At most one replay of an original is queued
-- at a time.
ALTER TABLE webhook_delivery ADD COLUMN attempt_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX webhook_delivery_attempt_id_key ON webhook_delivery (attempt_id);
ALTER TABLE webhook_delivery
    ADD COLUMN replay_of bigint REFERENCES webhook_delivery (webhook_delivery_id) ON DELETE CASCADE;
CREATE UNIQUE INDEX webhook_delivery_one_queued_replay
    ON webhook_delivery (replay_of) WHERE replay_of IS NOT NULL AND status = 'pending';
