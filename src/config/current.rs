//! The config now serving, for the admin app's per-request reads (deprecated routes, the
//! vault's provider checks): a cheap-clone handle set at start and by every accepted reload,
//! read without a lock. The gateway reads its own snapshot (`state::Shared::live`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Config;

/// A handle on the config now serving; clones share it.
#[derive(Clone)]
pub struct Current(Arc<ArcSwap<Config>>);

impl Current {
    /// A handle holding `config`.
    pub fn new(config: Arc<Config>) -> Current {
        Current(Arc::new(ArcSwap::new(config)))
    }

    /// Serve `config` from now on (requests under way keep the one they read).
    pub fn set(&self, config: Arc<Config>) {
        self.0.store(config);
    }

    /// The config now serving.
    pub fn get(&self) -> Arc<Config> {
        self.0.load_full()
    }

    /// Read the config now serving without taking a reference count (the per-request path).
    pub fn with<R>(&self, f: impl FnOnce(&Config) -> R) -> R {
        f(&self.0.load())
    }
}
