//! The usage writer's statement (`crate::usage::pg` runs the queue, the spill file and the
//! replays): one batch of usage events in, with everything that follows from them in the same
//! statement (daily rollup, key totals, prepaid debits, quota webhooks, live-feed notices).

use sqlx::PgPool;

use crate::usage::UsageEvent;

/// Insert a batch in one statement; rows whose `request_id` exists are skipped, and only the
/// rows actually added count towards their key's totals.
pub async fn insert(pool: &PgPool, batch: &[UsageEvent]) -> Result<(), sqlx::Error> {
    let mut request_id = Vec::with_capacity(batch.len());
    let mut organization_id = Vec::with_capacity(batch.len());
    let mut api_key_id = Vec::with_capacity(batch.len());
    let mut key_name = Vec::with_capacity(batch.len());
    let mut route = Vec::with_capacity(batch.len());
    let mut model = Vec::with_capacity(batch.len());
    let mut deployment = Vec::with_capacity(batch.len());
    let mut provider = Vec::with_capacity(batch.len());
    let mut status = Vec::with_capacity(batch.len());
    let mut error = Vec::with_capacity(batch.len());
    let mut attempts = Vec::with_capacity(batch.len());
    let mut stream = Vec::with_capacity(batch.len());
    let mut prompt = Vec::with_capacity(batch.len());
    let mut completion = Vec::with_capacity(batch.len());
    let mut reported = Vec::with_capacity(batch.len());
    let mut latency = Vec::with_capacity(batch.len());
    let mut ttft = Vec::with_capacity(batch.len());
    let mut session = Vec::with_capacity(batch.len());
    let mut disconnected = Vec::with_capacity(batch.len());
    let mut created = Vec::with_capacity(batch.len());
    let mut cost_usd = Vec::with_capacity(batch.len());
    let mut cost_brl = Vec::with_capacity(batch.len());
    let mut client_request_id = Vec::with_capacity(batch.len());
    let mut cached = Vec::with_capacity(batch.len());
    let mut cache_write = Vec::with_capacity(batch.len());
    let mut reasoning = Vec::with_capacity(batch.len());
    for e in batch {
        cached.push(e.cached_tokens.min(i64::MAX as u64) as i64);
        cache_write.push(e.cache_write_tokens.min(i64::MAX as u64) as i64);
        reasoning.push(e.reasoning_tokens.min(i64::MAX as u64) as i64);
        client_request_id.push(e.client_request_id.as_deref());
        request_id.push(e.request_id.as_str());
        organization_id.push(e.organization_id);
        api_key_id.push(e.api_key_id);
        key_name.push(e.key.as_deref());
        route.push(e.route.as_ref());
        model.push(e.model.as_deref());
        deployment.push(e.deployment.as_deref());
        provider.push(e.provider.as_deref());
        status.push(e.status as i16);
        error.push(e.error.as_deref());
        attempts.push(e.attempts.min(i16::MAX as u32) as i16);
        stream.push(e.stream);
        prompt.push(e.prompt_tokens.min(i64::MAX as u64) as i64);
        completion.push(e.completion_tokens.min(i64::MAX as u64) as i64);
        reported.push(e.usage_reported);
        latency.push(e.latency_ms.min(i32::MAX as u64) as i32);
        ttft.push(e.ttft_ms.map(|t| t.min(i32::MAX as u64) as i32));
        session.push(e.session_id.as_deref());
        disconnected.push(e.client_disconnected);
        created.push(e.ts);
        cost_usd.push(e.cost_upstream_usd_micros);
        cost_brl.push(e.cost_billed_brl_micros);
    }
    sqlx::query(
        r#"
        WITH ins AS (
            INSERT INTO usage_event (
                request_id, organization_id, api_key_id, key_name, route, model, deployment,
                provider, status, error, attempts, stream, prompt_tokens, completion_tokens,
                usage_reported, latency_ms, ttft_ms, session_id, client_disconnected, created_at,
                cost_upstream_usd_micros, cost_billed_brl_micros, client_request_id,
                cached_tokens, cache_write_tokens, reasoning_tokens)
            SELECT * FROM UNNEST(
                $1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::int2[], $10::text[], $11::int2[], $12::bool[], $13::int8[], $14::int8[],
                $15::bool[], $16::int4[], $17::int4[], $18::text[], $19::bool[], $20::timestamptz[],
                $21::int8[], $22::int8[], $24::text[], $25::int8[], $26::int8[], $27::int8[])
            ON CONFLICT (request_id) DO NOTHING
            RETURNING request_id, organization_id, api_key_id, model, status, prompt_tokens, completion_tokens,
                      cost_upstream_usd_micros, cost_billed_brl_micros, latency_ms, created_at,
                      route, error, stream, ttft_ms, client_request_id
        ), daily AS (
            INSERT INTO usage_daily AS d (organization_id, day, model, requests, successful,
                prompt_tokens, completion_tokens, cost_usd_micros, latency_ms_sum, cost_billed_brl_micros)
            SELECT coalesce(organization_id, '00000000-0000-0000-0000-000000000000'::uuid),
                   (created_at AT TIME ZONE 'UTC')::date, coalesce(model, ''), count(*),
                   count(*) FILTER (WHERE status BETWEEN 200 AND 399), sum(prompt_tokens),
                   sum(completion_tokens), coalesce(sum(cost_upstream_usd_micros), 0), sum(latency_ms),
                   coalesce(sum(cost_billed_brl_micros), 0)
            FROM ins GROUP BY 1, 2, 3
            ON CONFLICT (organization_id, day, model) DO UPDATE SET
                requests = d.requests + EXCLUDED.requests,
                successful = d.successful + EXCLUDED.successful,
                prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
                completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
                cost_usd_micros = d.cost_usd_micros + EXCLUDED.cost_usd_micros,
                latency_ms_sum = d.latency_ms_sum + EXCLUDED.latency_ms_sum,
                cost_billed_brl_micros = d.cost_billed_brl_micros + EXCLUDED.cost_billed_brl_micros
        ), per_key AS (
            SELECT api_key_id, count(*) AS n, sum(prompt_tokens) AS p,
                   sum(completion_tokens) AS c, max(created_at) AS last,
                   coalesce(sum(cost_upstream_usd_micros), 0) AS usd
            FROM ins WHERE api_key_id IS NOT NULL GROUP BY api_key_id
        ), upd_key AS (
            UPDATE api_key k SET
                total_requests = k.total_requests + per_key.n,
                total_prompt_tokens = k.total_prompt_tokens + per_key.p,
                total_completion_tokens = k.total_completion_tokens + per_key.c,
                last_used_at = greatest(k.last_used_at, per_key.last),
                total_cost_usd_micros = k.total_cost_usd_micros + per_key.usd
            FROM per_key WHERE k.api_key_id = per_key.api_key_id
            RETURNING k.api_key_id, per_key.usd, k.budget_usd_micros IS NOT NULL AS budgeted,
                      k.organization_id, k.serial_id, k.prefix, k.name,
                      k.budget_usd_micros AS budget, k.total_cost_usd_micros AS spent
        ), charge AS (
            -- prepaid organizations pay from their balance, one ledger entry per request
            SELECT i.organization_id, i.request_id, i.cost_billed_brl_micros AS cost, i.created_at
            FROM ins i JOIN organization o ON o.organization_id = i.organization_id
            WHERE o.balance_brl_micros IS NOT NULL AND i.cost_billed_brl_micros > 0
        ), per_org AS (
            SELECT organization_id, sum(cost) AS total FROM charge GROUP BY organization_id
        ), upd_org AS (
            UPDATE organization o SET balance_brl_micros = o.balance_brl_micros - per_org.total
            FROM per_org WHERE o.organization_id = per_org.organization_id
            RETURNING o.organization_id, o.balance_brl_micros AS after, per_org.total
        ), ledger AS (
            INSERT INTO ledger_entry (organization_id, kind, amount_brl_micros,
                                      balance_after_brl_micros, request_id, created_at)
            SELECT c.organization_id, 'usage', -c.cost,
                   u.after + u.total - sum(c.cost) OVER (PARTITION BY c.organization_id
                                                        ORDER BY c.request_id),
                   c.request_id, c.created_at
            FROM charge c JOIN upd_org u USING (organization_id)
        ), quota AS (
            -- successful requests of organizations whose plan has a monthly quota
            SELECT i.organization_id, count(*) AS n, min(p.monthly_request_quota) AS quota
            FROM ins i JOIN organization o ON o.organization_id = i.organization_id
                       JOIN plan p ON p.plan_id = o.plan_id
            WHERE p.monthly_request_quota IS NOT NULL AND i.status BETWEEN 200 AND 399
            GROUP BY i.organization_id
        ), month_count AS (
            -- the month's running count, under the row's lock (first batch of a month starts
            -- from the rollup as it was before this statement)
            INSERT INTO quota_usage AS qu (organization_id, month, successful)
            SELECT q.organization_id, date_trunc('month', now() AT TIME ZONE 'UTC')::date,
                   q.n + (SELECT coalesce(sum(successful), 0) FROM usage_daily d
                          WHERE d.organization_id = q.organization_id
                            AND d.day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date)
            FROM quota q
            ON CONFLICT (organization_id, month) DO UPDATE
                SET successful = qu.successful
                    + (SELECT q.n FROM quota q WHERE q.organization_id = EXCLUDED.organization_id)
            RETURNING qu.organization_id, qu.successful AS after
        ), reached AS (
            -- the batch that reaches the quota notifies the organization's webhooks, once a month
            INSERT INTO webhook_delivery (webhook_id, event, dedup_key, payload)
            SELECT w.webhook_id, 'usage_limit_reached',
                   'usage_limit_reached:' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'),
                   jsonb_build_object(
                       'event', 'usage_limit_reached',
                       'teamId', q.organization_id,
                       'usage', jsonb_build_object(
                           'current', m.after, 'limit', q.quota,
                           'resetDate', to_char(date_trunc('month', now() AT TIME ZONE 'UTC')
                                                + interval '1 month', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                       'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
            FROM quota q JOIN month_count m USING (organization_id)
                 JOIN webhook w ON w.organization_id = q.organization_id
            WHERE m.after >= q.quota AND m.after - q.n < q.quota
              AND w.status = 'active' AND 'usage_limit_reached' = ANY (w.events)
            ON CONFLICT (webhook_id, dedup_key) DO NOTHING
        ), live_item AS MATERIALIZED (
            -- the live feed (src/live.rs): each stored event of an organization (its fields in
            -- the order of live::UsageLine), then each budget threshold (80 %, 100 %) a key's
            -- spend crossed in this batch; text cut so one item always fits a notification;
            -- materialized so each item is built once
            SELECT 0 AS kind, i.created_at AS at, 0 AS seq, json_build_object('o', i.organization_id,
                'ev', 'usage', 'd', json_build_array(
                    left(i.request_id, 200), left(i.client_request_id, 200), k.serial_id,
                    left(k.prefix, 64), left(k.name, 200), left(i.route, 64), left(i.model, 200),
                    i.status, left(i.error, 300), i.prompt_tokens, i.completion_tokens,
                    i.cost_upstream_usd_micros, i.latency_ms, i.ttft_ms, i.stream,
                    (extract(epoch FROM i.created_at) * 1000000)::int8))::text AS item
            FROM ins i LEFT JOIN api_key k ON k.api_key_id = i.api_key_id
            WHERE i.organization_id IS NOT NULL
            UNION ALL
            SELECT 1, now(), t.pct, json_build_object('o', u.organization_id,
                'ev', 'budget.threshold', 'd', json_build_object(
                    'key_id', u.serial_id, 'key_prefix', left(u.prefix, 64),
                    'key_name', left(u.name, 200), 'threshold', t.pct,
                    'budget_usd_micros', u.budget, 'spent_usd_micros', u.spent,
                    'ts_us', (extract(epoch FROM now()) * 1000000)::int8))::text
            FROM upd_key u CROSS JOIN (VALUES (80), (100)) AS t(pct)
            WHERE u.budget > 0 AND u.usd > 0
              AND (u.spent - u.usd)::numeric * 100 < u.budget::numeric * t.pct
              AND u.spent::numeric * 100 >= u.budget::numeric * t.pct
        ), live_chunk AS (
            -- notifications hold under 8000 bytes: items (each at most 3800) go into chunks by
            -- where they start in the running total, so a chunk is under 4000 + 3800 + 2
            SELECT item, kind, at, seq,
                   (sum(octet_length(item) + 1) OVER (ORDER BY kind, at, seq
                        ROWS UNBOUNDED PRECEDING) - octet_length(item) - 1) / 4000 AS chunk
            FROM live_item WHERE octet_length(item) <= 3800
                )
        -- other gateway nodes learn what this node spent (each node counts its own spend)
        SELECT (SELECT count(pg_notify('catraca_funds',
                        'o:' || organization_id || ':' || (-total) || ':' || $23))
                FROM upd_org)
             + (SELECT count(pg_notify('catraca_funds',
                        'k:' || api_key_id || ':' || (-usd) || ':' || $23))
                FROM upd_key WHERE budgeted AND usd > 0)
             + (SELECT count(pg_notify('catraca_funds',
                        'q:' || organization_id || ':' || (-n) || ':' || $23))
                FROM quota)
             + (SELECT count(pg_notify('catraca_live', payload))
                FROM (SELECT '[' || string_agg(item, ',' ORDER BY kind, at, seq) || ']' AS payload
                      FROM live_chunk GROUP BY chunk ORDER BY chunk) c)
        "#,
    )
    .bind(&request_id)
    .bind(&organization_id)
    .bind(&api_key_id)
    .bind(&key_name)
    .bind(&route)
    .bind(&model)
    .bind(&deployment)
    .bind(&provider)
    .bind(&status)
    .bind(&error)
    .bind(&attempts)
    .bind(&stream)
    .bind(&prompt)
    .bind(&completion)
    .bind(&reported)
    .bind(&latency)
    .bind(&ttft)
    .bind(&session)
    .bind(&disconnected)
    .bind(&created)
    .bind(&cost_usd)
    .bind(&cost_brl)
    .bind(crate::funds::node_id())
    .bind(&client_request_id)
    .bind(&cached)
    .bind(&cache_write)
    .bind(&reasoning)
    .execute(pool)
    .await?;
    Ok(())
}
