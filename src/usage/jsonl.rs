//! Append-only JSONL usage sink: a bounded queue in front of one writer task.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use super::{UsageEvent, UsageSink};

/// Sender half, held by the gateway.
pub struct JsonlSink {
    tx: mpsc::Sender<UsageEvent>,
    queued: Arc<AtomicU64>,
}

/// Writer half, run as a background service; it drains the queue on shutdown.
pub struct JsonlWriter {
    path: PathBuf,
    rx: tokio::sync::Mutex<Option<mpsc::Receiver<UsageEvent>>>,
    queued: Arc<AtomicU64>,
}

/// A sink and its writer sharing one queue of `capacity` events.
pub fn channel(path: PathBuf, capacity: usize) -> (JsonlSink, JsonlWriter) {
    let (tx, rx) = mpsc::channel(capacity);
    let queued = Arc::new(AtomicU64::new(0));
    (
        JsonlSink {
            tx,
            queued: queued.clone(),
        },
        JsonlWriter {
            path,
            rx: tokio::sync::Mutex::new(Some(rx)),
            queued,
        },
    )
}

impl JsonlSink {
    /// Events waiting to be written.
    pub fn depth(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl UsageSink for JsonlSink {
    async fn record(&self, event: UsageEvent) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(event).await.is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("usage writer is gone; usage event lost");
        }
    }
}

impl JsonlWriter {
    /// Write events until shutdown, then drain what is queued and return.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(mut rx) = self.rx.lock().await.take() else {
            return;
        };
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await;
        let mut file = match file {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot open usage file");
                return;
            }
        };
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            // Shutdown does not stop the writer: requests still finishing in the grace period
            // keep sending events, and every batch is flushed as soon as it is written.
            let first = if *shutdown.borrow() {
                rx.recv().await
            } else {
                tokio::select! {
                    ev = rx.recv() => ev,
                    _ = shutdown.changed() => continue,
                }
            };
            let Some(first) = first else { break };
            let mut n = 1u64;
            push_line(&mut buf, &first);
            while buf.len() < 1024 * 1024 {
                match rx.try_recv() {
                    Ok(ev) => {
                        push_line(&mut buf, &ev);
                        n += 1;
                    }
                    Err(_) => break,
                }
            }
            if let Err(e) = file.write_all(&buf).await {
                tracing::error!(path = %self.path.display(), error = %e, "usage write failed");
            }
            let _ = file.flush().await;
            buf.clear();
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
        let _ = file.sync_data().await;
    }
}

fn push_line(buf: &mut Vec<u8>, ev: &UsageEvent) {
    if serde_json::to_writer(&mut *buf, ev).is_ok() {
        buf.push(b'\n');
    }
}
