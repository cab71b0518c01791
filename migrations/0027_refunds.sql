-- Refund requests (#14 item 6): an organization asks for part of its prepaid balance back
-- (Tokia `POST /v1/me/refunds`); the operator approves or rejects it
-- (`POST /admin/v1/refunds/{id}/approve|reject`).
--
-- Money moves only through the append-only ledger:
--   request   → a `hold` entry of −amount (the balance drops: gateways can no longer spend it)
--   approval  → in one transaction a `hold` entry of +amount (the hold released) and a
--               `refund` entry of −amount (the payout; never `usage`), so the balance is
--               unchanged by the approval itself
--   rejection → a `hold` entry of +amount (the balance is restored)
-- so an organization's held amount is −sum(its `hold` entries), and the balance column still
-- equals the sum of all its entries.

ALTER TABLE ledger_entry DROP CONSTRAINT ledger_entry_kind_check;
ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_kind_check
    CHECK (kind IN ('topup', 'adjustment', 'usage', 'refund', 'hold'));

CREATE TABLE refund (
    refund_id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    amount_brl_micros bigint NOT NULL
                      CHECK (amount_brl_micros >= 5000000 AND amount_brl_micros % 10000 = 0),  -- ≥ R$ 5.00, whole centavos
    reason            text CHECK (char_length(reason) <= 500),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    idempotency_key   text CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),  -- the client's Idempotency-Key
    requested_by      uuid REFERENCES app_user (user_id) ON DELETE SET NULL,        -- the key's user
    api_key_id        uuid REFERENCES api_key (api_key_id) ON DELETE SET NULL,      -- the key that asked
    created_at        timestamptz NOT NULL DEFAULT now(),
    decided_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, idempotency_key),
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
-- at most one open request per organization (the request also locks the organization's row,
-- so this is the backstop that makes a second concurrent request a 409, never a second hold)
CREATE UNIQUE INDEX refund_one_pending_idx ON refund (organization_id) WHERE status = 'pending';
CREATE INDEX refund_org_idx ON refund (organization_id, created_at DESC);
-- the operator's queue
CREATE INDEX refund_status_idx ON refund (status, created_at DESC);
CREATE TRIGGER refund_updated_at BEFORE UPDATE ON refund
    FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();
