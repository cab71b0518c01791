-- Tokia's spending alerts (issue 14 item 6): an organization's rules "tell me when the balance
-- goes below X / today's or this month's spend goes above X", checked after each usage batch
-- settles and after each ledger entry (src/domain/alerts.rs). An alert fires once per crossing:
-- firing clears `armed` in one conditional UPDATE, and only a check that finds the condition
-- false again (or, for a spend alert, a new day or month) arms it again.
CREATE TABLE alert (
    alert_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id      uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    kind                 text NOT NULL
        CHECK (kind IN ('balance_below', 'daily_spend_above', 'monthly_spend_above')),
    -- exact micro-BRL, > 0
    threshold_brl_micros bigint NOT NULL CHECK (threshold_brl_micros > 0),
    channel              text NOT NULL CHECK (channel IN ('email', 'webhook')),
    -- false from a firing until the condition is seen false again
    armed                boolean NOT NULL DEFAULT true,
    last_fired_at        timestamptz,
    -- a spend alert's period of its last firing, in America/Sao_Paulo ('2026-05-14' for a
    -- daily one, '2026-05' for a monthly one): a later period arms it again without a check
    -- having seen the spend go back; NULL for balance alerts and alerts never fired
    fired_period         text,
    created_by           uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- One rule once per organization (a duplicate would notify twice). Its leading column also
-- serves the usage writer's "which of these organizations have alerts" lookup and the per-
-- organization lists.
CREATE UNIQUE INDEX alert_org_rule_key ON alert (organization_id, kind, threshold_brl_micros, channel);
CREATE TRIGGER alert_updated_at BEFORE UPDATE ON alert FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- Every firing, never updated: what crossed, the value that crossed it, and how many
-- notifications were queued (mails to the owners, or webhook deliveries).
CREATE TABLE alert_firing (
    alert_firing_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id             uuid NOT NULL REFERENCES alert (alert_id) ON DELETE CASCADE,
    organization_id      uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    kind                 text NOT NULL,
    threshold_brl_micros bigint NOT NULL,
    channel              text NOT NULL,
    -- the balance or the period's spend when it fired, micro-BRL
    value_brl_micros     bigint NOT NULL,
    period               text,
    notifications        integer NOT NULL,
    fired_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_firing_alert_idx ON alert_firing (alert_id, fired_at DESC);
CREATE INDEX alert_firing_org_idx ON alert_firing (organization_id, fired_at DESC);
