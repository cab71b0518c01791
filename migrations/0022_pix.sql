-- PIX top-ups (#14 item 11): a charge is a dynamic, one-use BR Code for an organization's
-- prepaid balance. The PSP's payment webhook credits the ledger once per endToEndId: the
-- ledger entry's idempotency key is the endToEndId, and a charge is paid by at most one of
-- them (unique here too, so no payment id is credited on two charges).

CREATE TABLE pix_charge (
    pix_charge_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    amount_brl_micros bigint NOT NULL
                      CHECK (amount_brl_micros BETWEEN 1000000 AND 100000000000
                             AND amount_brl_micros % 10000 = 0),      -- R$ 1.00 .. 100,000.00, whole centavos
    txid              text NOT NULL UNIQUE CHECK (txid ~ '^[A-Za-z0-9]{26,35}$'),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'expired')),
    br_code           text NOT NULL,
    expires_at        timestamptz NOT NULL,
    paid_at           timestamptz,
    end_to_end_id     text UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'paid') = (end_to_end_id IS NOT NULL AND paid_at IS NOT NULL))
);
CREATE INDEX pix_charge_org_idx ON pix_charge (organization_id, created_at DESC);
CREATE TRIGGER pix_charge_updated_at BEFORE UPDATE ON pix_charge
    FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();
