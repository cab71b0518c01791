-- What a year of usage costs to read (#14, measured by loadtests/tokia_scale.sh at 1,000,000
-- usage events; before/after in loadtests/README.md "Tokia at 1M usage events"). These reads
-- grew with the organization's whole history (EXPLAIN ANALYZE there):
--   - the wallet (`store::ledger::wallet`: me/usage-summary, usage, …) summed every ledger
--     entry, one `usage` debit per billed request: 0.39 s at 970,000 entries;
--   - usage/by-key grouped every event of the window: 0.43 s over 365 days;
--   - me/sessions read every event of the window to keep the 20 % with a session id and
--     sorted them by session: 0.05 s over 30 days, 0.16 s over 90;
--   - a refund request (`store::refunds`, under the organization's row lock) and the referral
--     credits (`store::account`) read every entry to find the few that are not usage debits:
--     0.17 s and 0.46 s (per invitee).
--
-- 1. ledger_total: an organization's running totals, in the wallet's four buckets. Every entry
--    falls in exactly one (the rules of `store::ledger::wallet`, hold entries of migration 0027
--    included), so topped_up − spent − refunded − held is the sum of the entries, which the
--    balance column equals. A statement-level trigger adds each statement's new entries to
--    the totals in that statement, whichever code (or binary, during a rolling upgrade) wrote
--    them: the usage writer's batch, `store::ledger::post`, the refunds. Entries are
--    append-only (migration 0009); they go only with their organization, and so do its totals.
CREATE TABLE ledger_total (
    organization_id      uuid PRIMARY KEY REFERENCES organization (organization_id) ON DELETE CASCADE,
    topped_up_brl_micros bigint NOT NULL DEFAULT 0,  -- net of every other entry: top-ups, adjustments, refund credits
    spent_brl_micros     bigint NOT NULL DEFAULT 0,  -- −sum of `usage` entries
    refunded_brl_micros  bigint NOT NULL DEFAULT 0,  -- −sum of `refund` debits (payouts)
    held_brl_micros      bigint NOT NULL DEFAULT 0,  -- −sum of `hold` entries (pending refunds)
    topups               bigint NOT NULL DEFAULT 0   -- count of `topup` entries
);

CREATE FUNCTION ledger_total_add() RETURNS trigger AS $$
BEGIN
    -- one row per organization of the statement: its lock is taken after the organization's
    -- row, which every writer of entries locks first
    INSERT INTO ledger_total AS t (organization_id, topped_up_brl_micros, spent_brl_micros,
                                   refunded_brl_micros, held_brl_micros, topups)
    SELECT organization_id,
           coalesce(sum(amount_brl_micros) FILTER (
               WHERE kind NOT IN ('usage', 'hold')
                 AND NOT (kind = 'refund' AND amount_brl_micros < 0)), 0),
           coalesce(-sum(amount_brl_micros) FILTER (WHERE kind = 'usage'), 0),
           coalesce(-sum(amount_brl_micros) FILTER (WHERE kind = 'refund' AND amount_brl_micros < 0), 0),
           coalesce(-sum(amount_brl_micros) FILTER (WHERE kind = 'hold'), 0),
           count(*) FILTER (WHERE kind = 'topup')
    FROM new_entries GROUP BY organization_id ORDER BY organization_id
    ON CONFLICT (organization_id) DO UPDATE SET
        topped_up_brl_micros = t.topped_up_brl_micros + EXCLUDED.topped_up_brl_micros,
        spent_brl_micros = t.spent_brl_micros + EXCLUDED.spent_brl_micros,
        refunded_brl_micros = t.refunded_brl_micros + EXCLUDED.refunded_brl_micros,
        held_brl_micros = t.held_brl_micros + EXCLUDED.held_brl_micros,
        topups = t.topups + EXCLUDED.topups;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- created before the backfill: from here on (the trigger's lock holds off other writers until
-- this migration commits) no entry escapes both
CREATE TRIGGER ledger_total_on_insert AFTER INSERT ON ledger_entry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_total_add();

INSERT INTO ledger_total (organization_id, topped_up_brl_micros, spent_brl_micros,
                          refunded_brl_micros, held_brl_micros, topups)
SELECT organization_id,
       coalesce(sum(amount_brl_micros) FILTER (
           WHERE kind NOT IN ('usage', 'hold')
             AND NOT (kind = 'refund' AND amount_brl_micros < 0)), 0),
       coalesce(-sum(amount_brl_micros) FILTER (WHERE kind = 'usage'), 0),
       coalesce(-sum(amount_brl_micros) FILTER (WHERE kind = 'refund' AND amount_brl_micros < 0), 0),
       coalesce(-sum(amount_brl_micros) FILTER (WHERE kind = 'hold'), 0),
       count(*) FILTER (WHERE kind = 'topup')
FROM ledger_entry GROUP BY organization_id;

-- 2. Two more rollups of the events, kept like ledger_total by one statement-level trigger on
--    usage_event (so from the rows the usage writer's batch actually inserted: a replayed batch
--    counts once), each read in place of a window of events:
--    usage_key_daily     per organization, UTC day, key and model: usage/by-key (windows of
--                        whole UTC days; per key its top models by billed amount and its last
--                        request). A year is at most 365 × keys × models rows.
--    usage_session_daily per organization, UTC day, session and model: me/sessions (the
--                        sessions with events in a window of whole UTC days, totals over those
--                        events). A year is about as many rows as sessions.
--    Model '' stands for events without one, as in usage_daily.
CREATE TABLE usage_key_daily (
    organization_id        uuid NOT NULL,
    day                    date NOT NULL,         -- UTC
    api_key_id             uuid NOT NULL,
    model                  text NOT NULL DEFAULT '',
    requests               bigint NOT NULL,
    prompt_tokens          bigint NOT NULL,
    completion_tokens      bigint NOT NULL,
    cost_usd_micros        bigint NOT NULL,
    cost_billed_brl_micros bigint NOT NULL,
    last_request_at        timestamptz NOT NULL,
    PRIMARY KEY (organization_id, day, api_key_id, model)
);

CREATE TABLE usage_session_daily (
    organization_id        uuid NOT NULL,
    day                    date NOT NULL,         -- UTC
    session_id             text NOT NULL,
    model                  text NOT NULL DEFAULT '',
    requests               bigint NOT NULL,
    prompt_tokens          bigint NOT NULL,
    completion_tokens      bigint NOT NULL,
    cost_billed_brl_micros bigint NOT NULL,
    first_start_at         timestamptz NOT NULL,  -- min(created_at − latency): the first start
    first_request_at       timestamptz NOT NULL,
    last_request_at        timestamptz NOT NULL,
    PRIMARY KEY (organization_id, day, session_id, model)
);

CREATE FUNCTION usage_event_rollups_add() RETURNS trigger AS $$
BEGIN
    INSERT INTO usage_key_daily AS d (organization_id, day, api_key_id, model, requests,
        prompt_tokens, completion_tokens, cost_usd_micros, cost_billed_brl_micros, last_request_at)
    SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, api_key_id,
           coalesce(model, ''), count(*), sum(prompt_tokens), sum(completion_tokens),
           coalesce(sum(cost_upstream_usd_micros), 0), coalesce(sum(cost_billed_brl_micros), 0),
           max(created_at)
    FROM new_events
    WHERE organization_id IS NOT NULL AND api_key_id IS NOT NULL
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (organization_id, day, api_key_id, model) DO UPDATE SET
        requests = d.requests + EXCLUDED.requests,
        prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
        cost_usd_micros = d.cost_usd_micros + EXCLUDED.cost_usd_micros,
        cost_billed_brl_micros = d.cost_billed_brl_micros + EXCLUDED.cost_billed_brl_micros,
        last_request_at = greatest(d.last_request_at, EXCLUDED.last_request_at);
    INSERT INTO usage_session_daily AS s (organization_id, day, session_id, model, requests,
        prompt_tokens, completion_tokens, cost_billed_brl_micros, first_start_at,
        first_request_at, last_request_at)
    SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, session_id,
           coalesce(model, ''), count(*), sum(prompt_tokens), sum(completion_tokens),
           coalesce(sum(cost_billed_brl_micros), 0),
           min(created_at - latency_ms * interval '1 millisecond'), min(created_at), max(created_at)
    FROM new_events
    WHERE organization_id IS NOT NULL AND session_id IS NOT NULL
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (organization_id, day, session_id, model) DO UPDATE SET
        requests = s.requests + EXCLUDED.requests,
        prompt_tokens = s.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
        cost_billed_brl_micros = s.cost_billed_brl_micros + EXCLUDED.cost_billed_brl_micros,
        first_start_at = least(s.first_start_at, EXCLUDED.first_start_at),
        first_request_at = least(s.first_request_at, EXCLUDED.first_request_at),
        last_request_at = greatest(s.last_request_at, EXCLUDED.last_request_at);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- before the backfills, as above
CREATE TRIGGER usage_event_rollups_on_insert AFTER INSERT ON usage_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_event_rollups_add();

INSERT INTO usage_key_daily (organization_id, day, api_key_id, model, requests, prompt_tokens,
    completion_tokens, cost_usd_micros, cost_billed_brl_micros, last_request_at)
SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, api_key_id, coalesce(model, ''),
       count(*), sum(prompt_tokens), sum(completion_tokens),
       coalesce(sum(cost_upstream_usd_micros), 0), coalesce(sum(cost_billed_brl_micros), 0),
       max(created_at)
FROM usage_event
WHERE organization_id IS NOT NULL AND api_key_id IS NOT NULL
GROUP BY 1, 2, 3, 4;

INSERT INTO usage_session_daily (organization_id, day, session_id, model, requests,
    prompt_tokens, completion_tokens, cost_billed_brl_micros, first_start_at, first_request_at,
    last_request_at)
SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, session_id, coalesce(model, ''),
       count(*), sum(prompt_tokens), sum(completion_tokens), coalesce(sum(cost_billed_brl_micros), 0),
       min(created_at - latency_ms * interval '1 millisecond'), min(created_at), max(created_at)
FROM usage_event
WHERE organization_id IS NOT NULL AND session_id IS NOT NULL
GROUP BY 1, 2, 3, 4;

-- 3. The entries that are not usage debits (every one of them has an idempotency key, CHECK of
--    migration 0009; usage debits have none): a few per organization however many requests it
--    made. Serves the refundable funds of a refund request (which asks for `idempotency_key IS
--    NOT NULL`) and the referral credits (keys `referral:<user>…`: equality or prefix, hence
--    text_pattern_ops), both from the index alone.
CREATE INDEX ledger_entry_org_key_idx ON ledger_entry (organization_id, idempotency_key text_pattern_ops)
    INCLUDE (kind, amount_brl_micros)
    WHERE idempotency_key IS NOT NULL;
