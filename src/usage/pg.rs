//! Usage events into Postgres: a bounded queue, batched inserts, and a spill file for outages.
//!
//! The writer takes up to `usage.batch_size` events at a time and inserts them in one statement. If the
//! insert fails (Postgres down, network cut), the batch is appended to the spill file (JSONL,
//! flushed and synced) and the writer carries on. While the spill file has content, the writer
//! tries every [`REPLAY_EVERY`] to insert it; `request_id` is unique and the insert skips rows
//! already present, so a replay that is cut half way and run again still stores each event
//! exactly once. Key totals are updated from the rows the insert actually added.
//!
//! A row Postgres refuses for what it holds (SQLSTATE class 22 or 23: a number out of range,
//! say) would fail its batch on every retry and block everything queued behind it. Such a
//! batch is bisected until the poison rows are alone; they go to `<spill>.quarantine` (one JSON
//! line each, with the reason, logged as an error) and every other row is stored.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use super::{QueueRx, QueueSink, UsageEvent};
use crate::store::pg::LazyPool;
/// The batch statement lives with every other statement, in `crate::store`.
pub use crate::store::usage_events::insert;

/// How often a non-empty spill file is retried.
pub const REPLAY_EVERY: Duration = Duration::from_secs(1);

/// Writer half, run as a background service.
pub struct PgWriter {
    pool: LazyPool,
    spill: PathBuf,
    queue: QueueRx,
    /// Most events per insert (`usage.batch_size`).
    batch: usize,
    /// How long a batch fills before it is inserted (`usage.flush_ms`).
    linger: Duration,
    /// Events written to Postgres (inserted or found present), for metrics and tests.
    pub written: Arc<AtomicU64>,
    /// Events currently waiting in the spill file.
    pub spilled: Arc<AtomicU64>,
    /// Events set aside because they can never be written (see [`insert_isolating`]).
    pub quarantined: Arc<AtomicU64>,
    /// The spending alerts of the organizations each stored batch billed, checked beside the
    /// writer (`domain::alerts`).
    alerts: crate::domain::alerts::Checker,
}

/// A sink and its writer sharing one queue of `capacity` events.
pub fn channel(
    pool: LazyPool,
    spill: PathBuf,
    usage: &crate::config::UsageConfig,
) -> (QueueSink, PgWriter) {
    let (sink, queue) = super::queue(usage.queue_capacity);
    (
        sink,
        PgWriter {
            pool,
            spill,
            queue,
            batch: usage.batch_size,
            linger: usage.flush,
            written: Arc::new(AtomicU64::new(0)),
            spilled: Arc::new(AtomicU64::new(0)),
            quarantined: Arc::new(AtomicU64::new(0)),
            alerts: Default::default(),
        },
    )
}

impl PgWriter {
    /// Write until the process ends (shutdown does not stop it: requests finishing in the grace
    /// period still send events; once it begins, batches no longer linger), checking the
    /// spending alerts of what was stored beside it, off its path.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) {
        let write = async {
            self.write(shutdown).await;
            self.alerts.close();
        };
        tokio::join!(write, self.alerts.run(self.pool.get()));
    }

    async fn write(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(mut rx) = self.queue.rx.lock().await.take() else {
            return;
        };
        let pool = self.pool.get();
        self.spilled
            .store(count_lines(&self.spill), Ordering::Relaxed);
        let mut batch = Vec::with_capacity(self.batch.min(4096));
        let mut replay = tokio::time::interval(REPLAY_EVERY);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, self.batch) => {
                    if n == 0 {
                        break;
                    }
                    if batch.len() < self.batch {
                        super::linger(self.linger, &mut shutdown).await;
                        while batch.len() < self.batch {
                            match rx.try_recv() {
                                Ok(ev) => batch.push(ev),
                                Err(_) => break,
                            }
                        }
                    }
                    let n = batch.len() as u64;
                    match insert_isolating(pool, &batch).await {
                        Ok(bad) => {
                            self.written.fetch_add(n - bad.len() as u64, Ordering::Relaxed);
                            self.quarantine(&batch, &bad);
                            self.alerts.settled(&batch);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, events = n, "usage insert failed; spilling to {}", self.spill.display());
                            self.spill_batch(&batch);
                        }
                    }
                    self.queue.queued.fetch_sub(n, Ordering::Relaxed);
                    batch.clear();
                }
                _ = replay.tick() => {
                    if self.spilled.load(Ordering::Relaxed) > 0 {
                        self.replay(pool).await;
                    }
                }
            }
        }
    }

    fn spill_batch(&self, batch: &[UsageEvent]) {
        let mut buf = Vec::with_capacity(batch.len() * 256);
        for ev in batch {
            if serde_json::to_writer(&mut buf, ev).is_ok() {
                buf.push(b'\n');
            }
        }
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spill)
            .and_then(|mut f| {
                f.write_all(&buf)?;
                f.sync_data()
            });
        match result {
            Ok(()) => {
                self.spilled
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(path = %self.spill.display(), error = %e, events = batch.len(), "cannot write the spill file; usage events lost");
            }
        }
    }

    /// Insert everything in the spill file, then empty it. Stops at the first failure and tries
    /// again later; rows inserted before the failure are skipped next time.
    async fn replay(&self, pool: &PgPool) {
        let events = match read_spill(&self.spill) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::error!(path = %self.spill.display(), error = %e, "cannot read the spill file");
                return;
            }
        };
        let mut quarantined = 0u64;
        for chunk in events.chunks(self.batch) {
            match insert_isolating(pool, chunk).await {
                Ok(bad) => {
                    quarantined += bad.len() as u64;
                    self.quarantine(chunk, &bad);
                    self.alerts.settled(chunk);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "replay of spilled usage failed; will retry");
                    return;
                }
            }
        }
        if let Err(e) = std::fs::write(&self.spill, b"") {
            tracing::error!(path = %self.spill.display(), error = %e, "cannot empty the spill file");
            return;
        }
        self.written
            .fetch_add(events.len() as u64 - quarantined, Ordering::Relaxed);
        self.spilled.store(0, Ordering::Relaxed);
        tracing::info!(
            events = events.len(),
            "spilled usage events replayed into Postgres"
        );
    }
}

impl PgWriter {
    /// Where rows that can never be written go: the spill file's name plus `.quarantine`.
    pub fn quarantine_path(&self) -> PathBuf {
        let mut p = self.spill.clone().into_os_string();
        p.push(".quarantine");
        PathBuf::from(p)
    }

    /// Set aside the rows of `batch` at `bad` (index, reason), one JSON line each with the
    /// reason, so they stop blocking the queue and an operator can look at them.
    fn quarantine(&self, batch: &[UsageEvent], bad: &[(usize, String)]) {
        if bad.is_empty() {
            return;
        }
        let mut buf = Vec::new();
        for (i, reason) in bad {
            let Some(ev) = batch.get(*i) else { continue };
            tracing::error!(request_id = %ev.request_id, reason = %reason,
                "usage event cannot be stored; quarantined");
            let line = serde_json::json!({"reason": reason, "event": ev});
            if serde_json::to_writer(&mut buf, &line).is_ok() {
                buf.push(b'\n');
            }
        }
        let path = self.quarantine_path();
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(&buf)?;
                f.sync_data()
            });
        if let Err(e) = result {
            tracing::error!(path = %path.display(), error = %e, "cannot write the quarantine file");
        }
        self.quarantined
            .fetch_add(bad.len() as u64, Ordering::Relaxed);
    }
}

/// Whether an insert failed because of what a row holds (a number out of range, a value the
/// column refuses), which no retry can fix, rather than because Postgres was unreachable.
fn is_poison(e: &sqlx::Error) -> bool {
    match e {
        // class 22: data exception; class 23: integrity constraint violation
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

/// Insert `batch`; when a row can never be written, bisect the batch so every other row is
/// stored, and return the poison rows (index, reason). Rows already stored are skipped by a
/// retry, so halves that went in before a later failure are not written twice. An outage is
/// returned as the error (the caller spills or retries the whole batch).
pub async fn insert_isolating(
    pool: &PgPool,
    batch: &[UsageEvent],
) -> Result<Vec<(usize, String)>, sqlx::Error> {
    let mut bad = Vec::new();
    let mut todo = vec![(0, batch.len())];
    while let Some((a, b)) = todo.pop() {
        match insert(pool, &batch[a..b]).await {
            Ok(()) => {}
            Err(e) if is_poison(&e) => {
                if b - a == 1 {
                    bad.push((a, e.to_string()));
                } else {
                    let m = (a + b) / 2;
                    todo.push((m, b));
                    todo.push((a, m));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(bad)
}

fn count_lines(path: &PathBuf) -> u64 {
    std::fs::File::open(path)
        .map(|f| std::io::BufReader::new(f).lines().count() as u64)
        .unwrap_or(0)
}

fn read_spill(path: &PathBuf) -> std::io::Result<Vec<UsageEvent>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(ev) => out.push(ev),
            // a line torn by a crash mid-write cannot be recovered; say so and go on
            Err(e) => tracing::error!(error = %e, "unreadable line in the spill file skipped"),
        }
    }
    Ok(out)
}
