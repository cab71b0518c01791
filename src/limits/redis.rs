//! The shared back end: one Lua script per request on a Redis that every gateway node uses.
//!
//! The script reads the server's clock (`TIME`), so nodes with skewed clocks still share the
//! same windows; it checks every limit of the request's scopes and counts in all of them or in
//! none, atomically. Counters are plain integers under `<prefix>:s|m|d|t:<window>` with an
//! expiry just past their window; requests in flight are a sorted set `<prefix>:c` of request
//! ids scored by a lease deadline, so a node that dies cannot leak slots for longer than the
//! lease. Counter names are built inside the script from the prefixes passed as `KEYS`: this
//! is for a standalone Redis (or a primary with replicas), not Redis Cluster.
//!
//! The end of a request (release of its concurrency slot, tokens-per-minute correction) is
//! queued and sent by [`RedisLimiter::run_settler`] in one script call per batch of whatever is
//! queued, off the request path.
//!
//! Connections: each thread that talks to Redis (each proxy thread, the settler's) keeps one
//! multiplexed connection, made on its first call and dropped after an error (the next call
//! makes a new one). Concurrent requests of a thread pipeline on it, and its driver task runs
//! on that thread's own runtime: a check costs no connection checkout, no lock and no wake-up
//! of another thread. The round trip itself stays the limiter's main cost (loadtests/README.md,
//! per-feature breakdown).

use std::time::Duration;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::MultiplexedConnection;
use redis::{RedisError, Script};
use tokio::sync::mpsc;

use super::{Decision, Kind, LimiterMetrics, Scope, Ticket};

const CHECK: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1])
local nowms = now * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = tonumber(ARGV[1])
local member = ARGV[2]
local lease = tonumber(ARGV[3])
local minute = math.floor(now / 60)
local day = math.floor(now / 86400)
local wins = { {1, 's', now, 1}, {2, 'm', minute, 60}, {3, 'd', day, 86400} }
local used = {}
-- 1. check every limit of every scope
for i, p in ipairs(KEYS) do
  local b = 3 + (i - 1) * 5
  used[i] = {}
  for w = 1, 3 do
    local limit = tonumber(ARGV[b + w])
    if limit > 0 then
      local c = tonumber(redis.call('GET', p .. ':' .. wins[w][2] .. ':' .. wins[w][3]) or '0')
      used[i][w] = c
      if c + 1 > limit then
        local reset = (wins[w][3] + 1) * wins[w][4]
        return {0, wins[w][1], limit, math.max(limit - c, 0), reset, wins[w][4], reset - now, minute}
      end
    end
  end
  local tpm = tonumber(ARGV[b + 4])
  if tpm > 0 then
    local c = tonumber(redis.call('GET', p .. ':t:' .. minute) or '0')
    used[i][4] = c
    if c + tokens > tpm then
      local reset = (minute + 1) * 60
      return {0, 4, tpm, math.max(tpm - c, 0), reset, 60, reset - now, minute}
    end
  end
  local conc = tonumber(ARGV[b + 5])
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', p .. ':c', '-inf', nowms)
    local c = redis.call('ZCARD', p .. ':c')
    if c + 1 > conc then
      return {0, 5, conc, 0, now + 1, 1, 1, minute}
    end
  end
end
-- 2. count in every scope
local best = nil
for i, p in ipairs(KEYS) do
  local b = 3 + (i - 1) * 5
  for w = 1, 3 do
    local limit = tonumber(ARGV[b + w])
    -- a window is counted when it is limited; the minute always (usage reports read it)
    if limit > 0 or w == 2 then
      local k = p .. ':' .. wins[w][2] .. ':' .. wins[w][3]
      if redis.call('INCR', k) == 1 then
        redis.call('EXPIRE', k, wins[w][4] + 5)
      end
    end
    if limit > 0 then
      local left = limit - used[i][w] - 1
      if best == nil or left < best[4] then
        local reset = (wins[w][3] + 1) * wins[w][4]
        best = {1, wins[w][1], limit, left, reset, wins[w][4], 0, minute}
      end
    end
  end
  local tpm = tonumber(ARGV[b + 4])
  if tpm > 0 then
    local k = p .. ':t:' .. minute
    if redis.call('INCRBY', k, tokens) == tokens then
      redis.call('EXPIRE', k, 125)
    end
    if best == nil then
      best = {1, 4, tpm, math.max(tpm - used[i][4] - tokens, 0), (minute + 1) * 60, 60, 0, minute}
    end
  end
  local conc = tonumber(ARGV[b + 5])
  if conc > 0 then
    redis.call('ZADD', p .. ':c', nowms + lease * 1000, member)
    redis.call('PEXPIRE', p .. ':c', lease * 1000 + 1000)
    if best == nil then
      best = {1, 5, conc, 0, now + 1, 1, 0, minute}
    end
  end
end
return best
"#;

/// ARGV: groups of (kind, prefix-index, minute, delta or 0, member) for KEYS[prefix-index].
const SETTLE: &str = r#"
local n = 0
for j = 1, #ARGV, 4 do
  local p = KEYS[tonumber(ARGV[j])]
  local minute = ARGV[j + 1]
  local delta = tonumber(ARGV[j + 2])
  local member = ARGV[j + 3]
  if delta ~= 0 then
    local k = p .. ':t:' .. minute
    if redis.call('EXISTS', k) == 1 then
      redis.call('INCRBY', k, delta)
      n = n + 1
    end
  end
  if member ~= '' then
    n = n + redis.call('ZREM', p .. ':c', member)
  end
end
return n
"#;

/// One settlement waiting to be sent.
struct Pending {
    ticket: Ticket,
    delta: i64,
}

/// Redis connection settings.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://host:port/db`
    pub url: String,
    /// A check that takes longer fails over to the fallback.
    pub timeout: Duration,
    /// Accepted for old configs; unused (one multiplexed connection per thread).
    pub pool_size: u32,
    /// Longest a request holds a concurrency slot if its node never releases it.
    pub lease_secs: u64,
}

/// The Redis back end.
pub struct RedisLimiter {
    settings: RedisSettings,
    client: redis::Client,
    /// Tells this limiter's connections from another's in the threads' caches.
    id: u64,
    check: Script,
    settle: Script,
    tx: mpsc::Sender<Pending>,
    rx: parking_lot::Mutex<Option<mpsc::Receiver<Pending>>>,
}

thread_local! {
    /// This thread's connection per limiter (a process normally has one limiter).
    static CONNECTIONS: RefCell<Vec<(u64, MultiplexedConnection)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl RedisLimiter {
    /// Validate the URL; connections are made on first use.
    pub fn new(settings: RedisSettings) -> Result<Self, RedisError> {
        let client = redis::Client::open(settings.url.as_str())?;
        let (tx, rx) = mpsc::channel(65_536);
        Ok(RedisLimiter {
            settings,
            client,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            check: Script::new(CHECK),
            settle: Script::new(SETTLE),
            tx,
            rx: parking_lot::Mutex::new(Some(rx)),
        })
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let call = async { inv.invoke_async::<T>(&mut self.connection().await?).await };
        self.bounded(call).await
    }

    /// `call` within the timeout; after a failure this thread's connection is made anew.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        let r = match tokio::time::timeout(self.settings.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(timeout_error()),
        };
        if r.is_err() {
            self.forget_connection();
        }
        r
    }

    /// This thread's connection, made on first use.
    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let cached = CONNECTIONS.with_borrow(|c| {
            c.iter()
                .find(|(id, _)| *id == self.id)
                .map(|(_, c)| c.clone())
        });
        if let Some(c) = cached {
            return Ok(c);
        }
        let c = self.client.get_multiplexed_async_connection().await?;
        CONNECTIONS.with_borrow_mut(|all| {
            all.retain(|(id, _)| *id != self.id);
            all.push((self.id, c.clone()));
        });
        Ok(c)
    }

    fn forget_connection(&self) {
        let _ = CONNECTIONS.try_with(|c| c.borrow_mut().retain(|(id, _)| *id != self.id));
    }

    /// One check; `Ok((decision, minute))`.
    pub async fn check(
        &self,
        scopes: &[Option<Scope>; 2],
        tokens: u64,
        request_id: &str,
    ) -> Result<(Decision, u64), RedisError> {
        let mut inv = self.check.prepare_invoke();
        inv.arg(tokens)
            .arg(request_id)
            .arg(self.settings.lease_secs);
        for s in scopes.iter().flatten() {
            let l = &s.limits;
            inv.key(s.id.redis_prefix())
                .arg(l.rps.unwrap_or(0))
                .arg(l.rpm.unwrap_or(0))
                .arg(l.rpd.unwrap_or(0))
                .arg(l.tpm.unwrap_or(0))
                .arg(l.concurrency.unwrap_or(0));
        }
        let r: Vec<i64> = self.run(&inv).await?;
        let [
            allowed,
            kind,
            limit,
            remaining,
            reset,
            window,
            retry_after,
            minute,
        ] = r[..]
        else {
            return Err(RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected limiter script reply",
            )));
        };
        let clamp = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
        Ok((
            Decision {
                allowed: allowed == 1,
                kind: Kind::from_code(kind),
                limit: clamp(limit),
                remaining: clamp(remaining),
                reset: reset.max(0) as u64,
                window_secs: window.max(0) as u64,
                retry_after: retry_after.max(0) as u64,
            },
            minute.max(0) as u64,
        ))
    }

    /// Queue the end of a request (never blocks; a full queue drops the correction, and the
    /// slot then frees itself when its lease ends).
    pub fn settle(&self, ticket: Ticket, delta: i64) {
        if self.tx.try_send(Pending { ticket, delta }).is_err() {
            tracing::warn!("limiter settlement queue full; a concurrency slot waits for its lease");
        }
    }

    /// Send queued settlements: whatever is queued goes in one script call.
    pub async fn run_settler(
        &self,
        metrics: &LimiterMetrics,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let Some(mut rx) = self.rx.lock().take() else {
            return;
        };
        let mut batch = Vec::with_capacity(256);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, 512) => if n == 0 { return },
                _ = shutdown.changed() => {
                    // a last flush of what is queued
                    while let Ok(p) = rx.try_recv() { batch.push(p); }
                    if !batch.is_empty() { let _ = self.flush(&batch, metrics).await; }
                    return;
                }
            }
            if let Err(e) = self.flush(&batch, metrics).await {
                tracing::debug!(error = %e, n = batch.len(), "limiter settlements not sent");
            }
            batch.clear();
        }
    }

    async fn flush(&self, batch: &[Pending], metrics: &LimiterMetrics) -> Result<(), RedisError> {
        let mut inv = self.settle.prepare_invoke();
        let mut keys = 0usize;
        for p in batch {
            for s in p.ticket.scopes.iter().flatten() {
                let tpm = s.limits.tpm.is_some() && p.delta != 0;
                let conc = s.limits.concurrency.is_some();
                if !tpm && !conc {
                    continue;
                }
                keys += 1;
                inv.key(s.id.redis_prefix())
                    .arg(keys)
                    .arg(p.ticket.minute)
                    .arg(if tpm { p.delta } else { 0 })
                    .arg(match (&p.ticket.request_id, conc) {
                        (Some(id), true) => &**id,
                        _ => "",
                    });
            }
        }
        if keys == 0 {
            return Ok(());
        }
        metrics.round_trips.with_label_values(&["settle"]).inc();
        self.run::<i64>(&inv).await.map(|_| ())
    }

    /// Requests and tokens counted for the scope with key prefix `prefix` in `minute` (one
    /// `MGET`; for reports, never on the request path).
    pub async fn usage_in_minute(
        &self,
        prefix: &str,
        minute: u64,
    ) -> Result<(u64, u64), RedisError> {
        let call = async {
            redis::cmd("MGET")
                .arg(format!("{prefix}:m:{minute}"))
                .arg(format!("{prefix}:t:{minute}"))
                .query_async::<(Option<i64>, Option<i64>)>(&mut self.connection().await?)
                .await
        };
        let (r, t) = self.bounded(call).await?;
        let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
        Ok((n(r), n(t)))
    }

    /// PING on a new connection (this thread's broken one, if any, is dropped first).
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.forget_connection();
        let call = async {
            redis::cmd("PING")
                .query_async::<String>(&mut self.connection().await?)
                .await
        };
        match tokio::time::timeout(self.settings.timeout.max(Duration::from_millis(200)), call)
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                self.forget_connection();
                Err(e)
            }
            Err(_) => {
                self.forget_connection();
                Err(timeout_error())
            }
        }
    }
}

fn timeout_error() -> RedisError {
    RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}
