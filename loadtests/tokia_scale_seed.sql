-- Seed for loadtests/tokia_scale.sh: :events usage events of organization :'org' spread over
-- the last 365 days, with everything the usage writer (src/store/usage_events.rs) and the
-- ledger (src/store/ledger.rs) would have left for them, so the routes read what a year of
-- real traffic leaves:
--   usage_event   one row per request, in time order (usage_event_id follows created_at, as
--                 the writer appends them), request ids shaped like the gateway's;
--   usage_daily   the rollup per (organization, UTC day, model);
--   api_key       each key's totals and last_used_at;
--   ledger_entry  one 'usage' debit per billed request, and a monthly 'topup' (with its
--                 audit row) that covers the month, every balance_after_brl_micros the
--                 running sum in entry order;
--   organization  balance_brl_micros = the sum of the entries.
-- Mix: 5 models (one of them an embedding model), the organization's keys (those revoked
-- only before their revocation), ~3 % upstream errors (no tokens, no charge), ~30 % streamed,
-- ~20 % of the events in sessions of 1 to 50 requests a few seconds to a minute apart.
-- Variables: org (uuid), events (count). Runs in one transaction; random but fixed by setseed.

\set ON_ERROR_STOP on
BEGIN;
SELECT setseed(0.14);

CREATE TEMP TABLE seed_model (i int, name text, route text, in_1m bigint, out_1m bigint,
                              lo int, hi int) ON COMMIT DROP;
-- micro-USD per 1M tokens, as the gateway's config prices them (loadtests/tokia_scale.sh);
-- a model is picked by the share of [lo, hi) out of 100
INSERT INTO seed_model VALUES
    (0, 'gpt-4o-mini',            'chat.completions',   150000,   600000,  0,  40),
    (1, 'gpt-4o',                 'chat.completions',  2500000, 10000000, 40,  60),
    (2, 'claude-3-5-haiku',       'chat.completions',   800000,  4000000, 60,  75),
    (3, 'llama-3.1-70b',          'chat.completions',   590000,   790000, 75,  90),
    (4, 'text-embedding-3-small', 'embeddings',          20000,        0, 90, 100);

-- the organization's keys in creation order; a revoked key is used only before revoked_at
CREATE TEMP TABLE seed_key ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY serial_id) - 1)::int AS i, api_key_id, name, revoked_at
FROM api_key WHERE organization_id = :'org';
CREATE TEMP TABLE seed_active ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY i) - 1)::int AS j, i FROM seed_key WHERE revoked_at IS NULL;

-- the requests: first those in sessions (one key and model per session, requests 5 to 60 s
-- apart), then the rest at uniformly random times
CREATE TEMP TABLE seed_req ON COMMIT DROP AS
WITH sess AS (
    SELECT s, 1 + floor(random() * 50)::int AS len,
           now() - random() * interval '365 days' AS start_at,
           floor(random() * 100)::int AS pick, floor(random() * 1000)::int AS key_pick
    FROM generate_series(1, (:events * 0.2 / 25.5 * 1.2)::int) s
), in_sess AS (
    SELECT 'sess-' || substr(md5('seed' || s), 1, 20) AS session_id,
           least(start_at + j * (5 + random() * 55) * interval '1 second', now()) AS at,
           pick, key_pick
    FROM sess, generate_series(1, len) j
    LIMIT (:events * 0.2)::int
), alone AS (
    SELECT NULL::text AS session_id, now() - random() * interval '365 days' AS at,
           floor(random() * 100)::int AS pick, floor(random() * 1000)::int AS key_pick
    FROM generate_series(1, :events - (:events * 0.2)::int)
)
SELECT * FROM in_sess UNION ALL SELECT * FROM alone;

CREATE TEMP TABLE seed_ev ON COMMIT DROP AS
SELECT r.at, r.session_id, m.name AS model, m.route, m.in_1m, m.out_1m,
       coalesce(kk.api_key_id, ka.api_key_id) AS api_key_id,
       coalesce(kk.name, ka.name) AS key_name,
       (random() < 0.03) AS failed,
       (m.route = 'chat.completions' AND random() < 0.3) AS stream,
       20 + floor(random() * 4000)::int8 AS p,
       CASE WHEN m.route = 'embeddings' THEN 0 ELSE floor(random() * 1000)::int8 END AS c,
       200 + floor(random() * 2800)::int AS latency
FROM seed_req r
JOIN seed_model m ON r.pick >= m.lo AND r.pick < m.hi
LEFT JOIN seed_key k0 ON k0.i = r.key_pick % (SELECT count(*) FROM seed_key)
LEFT JOIN seed_key kk ON kk.i = k0.i AND (k0.revoked_at IS NULL OR r.at < k0.revoked_at)
LEFT JOIN seed_active a ON a.j = r.key_pick % (SELECT count(*) FROM seed_active)
LEFT JOIN seed_key ka ON ka.i = a.i;

INSERT INTO usage_event (
    request_id, organization_id, api_key_id, key_name, route, model, deployment, provider,
    status, error, attempts, stream, prompt_tokens, completion_tokens, usage_reported,
    cost_upstream_usd_micros, cost_billed_brl_micros, latency_ms, ttft_ms, session_id,
    client_disconnected, created_at)
SELECT 'req_5eed' || lpad(to_hex(row_number() OVER (ORDER BY at)), 20, '0'),
       :'org', api_key_id, key_name, route, model, 'mock-' || model, 'mock',
       CASE WHEN failed THEN 500 ELSE 200 END, NULL, 1, stream,
       CASE WHEN failed THEN 0 ELSE p END, CASE WHEN failed THEN 0 ELSE c END, NOT failed,
       CASE WHEN failed THEN 0 ELSE round((p * in_1m + c * out_1m) / 1e6)::int8 END,
       -- FX 5.0, markup 1.0: the exact upstream cost in BRL, rounded to the micro-real
       CASE WHEN failed THEN 0 ELSE round((p * in_1m + c * out_1m) * 5 / 1e6)::int8 END,
       latency, CASE WHEN stream THEN latency / 4 ELSE latency END, session_id, false, at
FROM seed_ev ORDER BY at;

-- the rollup, as the writer keeps it
INSERT INTO usage_daily (organization_id, day, model, requests, successful, prompt_tokens,
                         completion_tokens, cost_usd_micros, latency_ms_sum, cost_billed_brl_micros)
SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, coalesce(model, ''), count(*),
       count(*) FILTER (WHERE status BETWEEN 200 AND 399), sum(prompt_tokens),
       sum(completion_tokens), coalesce(sum(cost_upstream_usd_micros), 0), sum(latency_ms),
       coalesce(sum(cost_billed_brl_micros), 0)
FROM usage_event WHERE organization_id = :'org'
GROUP BY 1, 2, 3
ON CONFLICT (organization_id, day, model) DO UPDATE SET
    requests = usage_daily.requests + EXCLUDED.requests,
    successful = usage_daily.successful + EXCLUDED.successful,
    prompt_tokens = usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = usage_daily.completion_tokens + EXCLUDED.completion_tokens,
    cost_usd_micros = usage_daily.cost_usd_micros + EXCLUDED.cost_usd_micros,
    latency_ms_sum = usage_daily.latency_ms_sum + EXCLUDED.latency_ms_sum,
    cost_billed_brl_micros = usage_daily.cost_billed_brl_micros + EXCLUDED.cost_billed_brl_micros;

-- each key's totals
UPDATE api_key k SET
    total_requests = k.total_requests + t.n, total_prompt_tokens = k.total_prompt_tokens + t.p,
    total_completion_tokens = k.total_completion_tokens + t.c,
    total_cost_usd_micros = k.total_cost_usd_micros + t.usd,
    last_used_at = greatest(k.last_used_at, t.last)
FROM (SELECT api_key_id, count(*) AS n, sum(prompt_tokens) AS p, sum(completion_tokens) AS c,
             sum(cost_upstream_usd_micros) AS usd, max(created_at) AS last
      FROM usage_event WHERE organization_id = :'org' GROUP BY api_key_id) t
WHERE k.api_key_id = t.api_key_id;

-- the ledger: a top-up at the start of each month of the year (that month's spend rounded up
-- to R$ 500, plus R$ 500, so the balance never goes below zero) and one debit per billed request
CREATE TEMP TABLE seed_topup ON COMMIT DROP AS
SELECT date_trunc('month', created_at) AS at,
       ((floor(sum(cost_billed_brl_micros) / 500000000) + 2) * 500000000)::int8 AS amount
FROM usage_event WHERE organization_id = :'org' GROUP BY 1;
UPDATE seed_topup SET at = (SELECT min(created_at) - interval '1 minute' FROM usage_event
                            WHERE organization_id = :'org')
WHERE at = (SELECT min(at) FROM seed_topup);

INSERT INTO ledger_entry (organization_id, kind, amount_brl_micros, balance_after_brl_micros,
                          request_id, idempotency_key, created_at)
SELECT :'org', kind, amount,
       coalesce((SELECT sum(amount_brl_micros) FROM ledger_entry WHERE organization_id = :'org'), 0)
       + sum(amount) OVER (ORDER BY at, seq ROWS UNBOUNDED PRECEDING),
       request_id, idem, at
FROM (SELECT 'topup' AS kind, amount, NULL AS request_id,
             'seed-topup-' || to_char(at, 'YYYY-MM') AS idem, at, 0 AS seq
      FROM seed_topup
      UNION ALL
      SELECT 'usage', -cost_billed_brl_micros, request_id, NULL, created_at, usage_event_id
      FROM usage_event
      WHERE organization_id = :'org' AND cost_billed_brl_micros > 0) e
ORDER BY at, seq;

INSERT INTO audit_log (organization_id, action, target, actor, before, after, created_at)
SELECT :'org', 'ledger.topup', e.ledger_entry_id::text, 'operator',
       jsonb_build_object('balance_brl', ((e.balance_after_brl_micros - e.amount_brl_micros) / 1e6)::text),
       jsonb_build_object('balance_brl', (e.balance_after_brl_micros / 1e6)::text,
                          'amount_brl', (e.amount_brl_micros / 1e6)::text,
                          'idempotency_key', e.idempotency_key),
       e.created_at
FROM ledger_entry e WHERE e.organization_id = :'org' AND e.idempotency_key LIKE 'seed-topup-%';

UPDATE organization SET balance_brl_micros =
    (SELECT sum(amount_brl_micros) FROM ledger_entry WHERE organization_id = :'org')
WHERE organization_id = :'org';

COMMIT;
