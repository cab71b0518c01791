-- Daily rollup of usage per organization and model, kept by the usage writer in the same
-- statement that inserts the events (from the rows actually inserted, so replays do not count
-- twice). Dashboards read this instead of scanning millions of events: a 30-day stats query
-- reads at most 30 x models rows. Events without an organization (config keys) roll up under
-- the nil uuid.
CREATE TABLE usage_daily (
    organization_id   uuid NOT NULL,
    day               date NOT NULL,          -- UTC
    model             text NOT NULL DEFAULT '',
    requests          bigint NOT NULL,
    successful        bigint NOT NULL,        -- status 200..399
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd_micros   bigint NOT NULL,
    latency_ms_sum    bigint NOT NULL,
    PRIMARY KEY (organization_id, day, model)
);
CREATE INDEX usage_daily_day_idx ON usage_daily (day);

-- windows shorter than a day (model metrics over 1h) read events by time
CREATE INDEX usage_event_time_idx ON usage_event (created_at);
