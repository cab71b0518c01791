-- Prepaid balances (#5): an organization with a non-NULL balance is prepaid; every change of
-- its balance is an append-only ledger entry written in the same statement/transaction as the
-- balance update, so the balance always equals the sum of its entries.

ALTER TABLE organization ADD COLUMN balance_brl_micros bigint;  -- NULL = postpaid, no balance enforced

CREATE TABLE ledger_entry (
    ledger_entry_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id          uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    kind                     text NOT NULL CHECK (kind IN ('topup', 'adjustment', 'usage', 'refund')),
    amount_brl_micros        bigint NOT NULL,   -- credit > 0, debit < 0
    balance_after_brl_micros bigint NOT NULL,
    request_id               text UNIQUE,       -- usage entries: at most one per request
    idempotency_key          text,              -- top-ups and adjustments: at most one per key
    description              text,
    created_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, idempotency_key),
    CHECK ((kind = 'usage') = (request_id IS NOT NULL)),
    CHECK (kind = 'usage' OR idempotency_key IS NOT NULL)
);
CREATE INDEX ledger_entry_org_idx ON ledger_entry (organization_id, ledger_entry_id);

-- append-only (an organization's deletion still cascades to its entries)
CREATE OR REPLACE FUNCTION ledger_entry_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ledger entries are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_immutable();

-- a key's new budget: gateways read the key's account again (payload delta 0 = reload)
CREATE OR REPLACE FUNCTION notify_key_budget() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('catraca_funds', 'k:' || NEW.api_key_id || ':0:db');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER api_key_budget_notify AFTER UPDATE OF budget_usd_micros ON api_key
    FOR EACH ROW EXECUTE FUNCTION notify_key_budget();
