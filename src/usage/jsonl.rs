//! Append-only JSONL usage sink: a bounded queue in front of one writer task.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use std::io::Write;
use tokio::sync::watch;

use super::{QueueRx, QueueSink, UsageEvent};

/// Writer half, run as a background service.
pub struct JsonlWriter {
    path: PathBuf,
    queue: QueueRx,
}

/// A sink and its writer sharing one queue of `capacity` events.
pub fn channel(path: PathBuf, capacity: usize) -> (QueueSink, JsonlWriter) {
    let (sink, queue) = super::queue(capacity);
    (sink, JsonlWriter { path, queue })
}

impl JsonlWriter {
    /// Write events until the process ends. Events are collected for up to [`FLUSH_EVERY`] and
    /// written in one `write` call, so a busy gateway costs the writer a few wake-ups a second
    /// instead of one per request. Shutdown does not stop the writer: requests still finishing
    /// in the grace period keep sending events.
    pub async fn run(&self, _shutdown: watch::Receiver<bool>) {
        let Some(mut rx) = self.queue.rx.lock().await.take() else {
            return;
        };
        // This task has its own runtime thread (a Pingora background service), so plain
        // blocking file writes are fine here and avoid a blocking-pool hop per write.
        let mut file = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot open usage file");
                return;
            }
        };
        let mut buf = Vec::with_capacity(256 * 1024);
        let mut batch = Vec::with_capacity(1024);
        loop {
            // wait for the first event, then give the rest of the batch a moment to arrive
            if rx.recv_many(&mut batch, 4096).await == 0 {
                break;
            }
            tokio::time::sleep(FLUSH_EVERY).await;
            while batch.len() < 16 * 1024 {
                match rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            for ev in &batch {
                push_line(&mut buf, ev);
            }
            if let Err(e) = file.write_all(&buf) {
                tracing::error!(path = %self.path.display(), error = %e, "usage write failed");
            }
            self.queue
                .queued
                .fetch_sub(batch.len() as u64, Ordering::Relaxed);
            buf.clear();
            batch.clear();
        }
        let _ = file.sync_data();
    }
}

/// Longest time an event waits in memory before it is written.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

fn push_line(buf: &mut Vec<u8>, ev: &UsageEvent) {
    if serde_json::to_writer(&mut *buf, ev).is_ok() {
        buf.push(b'\n');
    }
}
