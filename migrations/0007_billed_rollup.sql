-- The billed amount (BRL, after FX and markup) rolls up beside the upstream cost.
ALTER TABLE usage_daily ADD COLUMN cost_billed_brl_micros bigint NOT NULL DEFAULT 0;
