-- Tokia's `GET /v1/upstream-health` and breaker incidents (#14 item 10).
--
-- upstream_health_hour: each gateway adds its attempt counts per provider every few seconds
-- (an upsert that adds), so the route sums at most 24 × days rows per provider instead of
-- scanning usage. `latency_counts[i]` counts answered attempts whose latency (attempt start to
-- response head) fell in bucket i of `gateway::health::LATENCY_BOUNDS_MS` (+ overflow).
CREATE TABLE upstream_health_hour (
    hour            timestamptz NOT NULL,
    provider        text NOT NULL CHECK (length(provider) BETWEEN 1 AND 200),
    attempts        bigint NOT NULL CHECK (attempts >= 0),
    failures        bigint NOT NULL CHECK (failures >= 0),
    latency_counts  bigint[] NOT NULL,
    PRIMARY KEY (hour, provider)
);

-- An incident is the operator's or opened by a gateway while a provider's circuit breaker
-- stays open: one open breaker incident per provider, kept alive by `last_seen_at` (any
-- gateway that sees the breaker open touches it) and resolved once no gateway has for a while.
ALTER TABLE incident
    ADD COLUMN source text NOT NULL DEFAULT 'operator' CHECK (source IN ('operator', 'breaker')),
    ADD COLUMN provider text,
    ADD COLUMN last_seen_at timestamptz,
    ADD CONSTRAINT incident_breaker_provider CHECK ((source = 'breaker') = (provider IS NOT NULL));
CREATE UNIQUE INDEX incident_breaker_open_idx ON incident (provider)
    WHERE source = 'breaker' AND resolved_at IS NULL;
