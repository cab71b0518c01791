//! Money before the call: prepaid BRL balances of organizations and USD budgets of keys, and
//! the monthly request quotas of plans (counted the same way, one unit per request).
//!
//! A request whose organization is prepaid, or whose key has a budget, **reserves** its
//! largest possible cost before any upstream call (prompt estimate + `max_tokens`, or
//! `pricing.reserve_output_tokens` when the client sets none, plus per-image/per-request fees)
//! and is refused with 402 when the reservation does not fit. When it ends it **settles**: the
//! reservation is released and the real cost counted. Failover retries happen inside one
//! request, so they are reserved and charged once.
//!
//! Each gateway node keeps, per account, the amount available when it was loaded from
//! Postgres (`base`), what this node has spent since (`spent`) and what its requests in flight
//! hold (`reserved`): `available = base − spent − reserved`, checked and reserved under one
//! lock, with no database round trip per request. The usage writer debits the balance and
//! appends the ledger entries in the same statement that stores the usage events, and
//! notifies `catraca_funds` with the amount; other nodes subtract it from their `base`, this
//! node ignores its own. Top-ups and adjustments notify the same way.
//!
//! **Bound.** On one node the balance never goes below zero unless a request costs more than
//! it reserved (an upstream exceeding `max_tokens`, an audio file longer than nothing, which is
//! reserved as zero seconds); then by at most that excess. Across nodes, add what other nodes
//! spend during one notification's delay (milliseconds), and after a lost LISTEN connection
//! (accounts are reloaded) what this node had spent but not yet written.
//!
//! **Plan quotas.** An organization whose plan has a `monthly_request_quota` holds one more
//! account, in requests: the quota minus this UTC month's successful requests (2xx/3xx, from
//! the `usage_daily` rollup, the same count SabIA's `usage.current` shows). A request reserves 1
//! and settles 1 when it succeeds, 0 otherwise; refusals and upstream failures never consume
//! quota. The account is read again when the month changes. The same cross-node bound holds,
//! in requests instead of money.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::ApiError;
use crate::pricing::Cost;
use crate::store::pg::LazyPool;

/// The notification channel of balance and budget changes.
pub const CHANNEL: &str = "catraca_funds";

/// This process's id in `catraca_funds` payloads (its own spend is already counted).
pub fn node_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// Whose money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountId {
    /// An organization's prepaid BRL balance (micro-BRL).
    Org(Uuid),
    /// A key's USD budget (micro-USD).
    Key(Uuid),
    /// An organization's monthly request quota (requests).
    Quota(Uuid),
}

pub use crate::store::funds::MONTH_USED_SQL;

#[derive(Debug, Default)]
struct Account {
    base: i64,
    spent: i64,
    reserved: i64,
    /// Quota accounts: the month (`year * 12 + month`) they count.
    month: i32,
}

impl Account {
    fn available(&self) -> i64 {
        self.base - self.spent - self.reserved
    }
}

/// What a request holds until it ends.
#[derive(Debug, Clone, Default)]
pub struct Reservation {
    org: Option<(Uuid, i64)>,
    key: Option<(Uuid, i64)>,
    quota: Option<(Uuid, i32)>,
}

/// What a request may spend: the accounts that apply to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Payer {
    /// A prepaid organization (BRL balance).
    pub org: Option<Uuid>,
    /// A key with a USD budget.
    pub key: Option<Uuid>,
    /// An organization whose plan has a monthly request quota.
    pub quota: Option<Uuid>,
}

/// The current UTC month as `year * 12 + month`, and the Unix time the next one starts.
pub fn month_now() -> (i32, i64) {
    let now = time::OffsetDateTime::now_utc();
    let (y, m) = (now.year(), now.month());
    let next = match m {
        time::Month::December => time::Date::from_calendar_date(y + 1, time::Month::January, 1),
        _ => time::Date::from_calendar_date(y, m.next(), 1),
    }
    .map(|d| d.midnight().assume_utc().unix_timestamp())
    .unwrap_or(now.unix_timestamp());
    (y * 12 + m as i32, next)
}

/// The accounts this node has seen.
pub struct Funds {
    pool: LazyPool,
    accounts: DashMap<AccountId, Arc<Mutex<Account>>>,
}

impl Funds {
    /// Accounts are loaded on first use.
    pub fn new(pool: LazyPool) -> Self {
        Funds {
            pool,
            accounts: DashMap::new(),
        }
    }

    async fn account(&self, id: AccountId) -> Result<Arc<Mutex<Account>>, ApiError> {
        let month = match id {
            AccountId::Quota(_) => month_now().0,
            _ => 0,
        };
        if let Some(a) = self.accounts.get(&id) {
            // only quota accounts age; balances and budgets are returned without a lock
            if !matches!(id, AccountId::Quota(_)) || a.lock().month == month {
                return Ok(a.clone());
            }
            // a quota account of last month: count the new month from the database
            drop(a);
            self.accounts.remove(&id);
        }
        let pool = self.pool.get();
        let base: Option<i64> = match id {
            AccountId::Org(org) => crate::store::funds::org_balance(pool, org).await,
            AccountId::Key(key) => crate::store::funds::key_budget_left(pool, key).await,
            AccountId::Quota(org) => crate::store::funds::quota_left(pool, org).await,
        }
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot load a balance; refusing prepaid requests");
            ApiError::KeyStoreUnavailable
        })?;
        let fresh = Arc::new(Mutex::new(Account {
            base: base.unwrap_or(0),
            month,
            ..Default::default()
        }));
        // a concurrent first use may have loaded it too: keep one
        Ok(self.accounts.entry(id).or_insert(fresh).clone())
    }

    /// Reserve `cost` (BRL from the prepaid organization's balance, USD from the key's budget)
    /// and one request of the plan's monthly quota, all or nothing.
    pub async fn reserve(&self, payer: Payer, cost: Cost) -> Result<Reservation, ApiError> {
        let org_acc = match payer.org {
            Some(o) => Some(self.account(AccountId::Org(o)).await?),
            None => None,
        };
        let key_acc = match payer.key {
            Some(k) => Some(self.account(AccountId::Key(k)).await?),
            None => None,
        };
        let quota_acc = match payer.quota {
            Some(o) => Some(self.account(AccountId::Quota(o)).await?),
            None => None,
        };
        // lock order: organization, key, quota
        let mut og = org_acc.as_ref().map(|a| a.lock());
        let mut kg = key_acc.as_ref().map(|a| a.lock());
        let mut qg = quota_acc.as_ref().map(|a| a.lock());
        if let Some(a) = &qg
            && a.available() < 1
        {
            return Err(ApiError::UsageLimitExceeded {
                retry_after: (month_now().1 - time::OffsetDateTime::now_utc().unix_timestamp())
                    .max(1) as u64,
            });
        }
        if let Some(a) = &og
            && a.available() < cost.brl_micros.max(1)
        {
            return Err(ApiError::InsufficientBalance);
        }
        if let Some(a) = &kg
            && a.available() < cost.usd_micros.max(1)
        {
            return Err(ApiError::BudgetExceeded);
        }
        if let Some(a) = og.as_mut() {
            a.reserved += cost.brl_micros;
        }
        if let Some(a) = kg.as_mut() {
            a.reserved += cost.usd_micros;
        }
        let quota = match qg.as_mut() {
            Some(a) => {
                a.reserved += 1;
                payer.quota.map(|o| (o, a.month))
            }
            None => None,
        };
        Ok(Reservation {
            org: payer.org.map(|o| (o, cost.brl_micros)),
            key: payer.key.map(|k| (k, cost.usd_micros)),
            quota,
        })
    }

    /// Release a reservation and count what the request really cost; `succeeded` requests
    /// consume quota.
    pub fn settle(&self, r: Reservation, actual: Cost, succeeded: bool) {
        let apply = |id: AccountId, held: i64, spent: i64| {
            if let Some(a) = self.accounts.get(&id).map(|a| a.clone()) {
                let mut a = a.lock();
                a.reserved -= held;
                a.spent += spent;
            }
        };
        if let Some((o, held)) = r.org {
            apply(AccountId::Org(o), held, actual.brl_micros);
        }
        if let Some((k, held)) = r.key {
            apply(AccountId::Key(k), held, actual.usd_micros);
        }
        if let Some((o, month)) = r.quota
            && let Some(a) = self.accounts.get(&AccountId::Quota(o)).map(|a| a.clone())
        {
            let mut a = a.lock();
            // a reservation of last month is gone with last month's account
            if a.month == month {
                a.reserved -= 1;
                a.spent += i64::from(succeeded);
            }
        }
    }

    fn apply_notification(&self, payload: &str) {
        if payload == "*" {
            // a plan's quota changed: every account is read again
            self.accounts.clear();
            return;
        }
        let mut parts = payload.splitn(4, ':');
        let (Some(kind), Some(id), Some(delta), Some(node)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if node == node_id() {
            return; // already counted as `spent`
        }
        let (Ok(id), Ok(delta)) = (id.parse::<Uuid>(), delta.parse::<i64>()) else {
            return;
        };
        let id = match kind {
            "o" => AccountId::Org(id),
            "k" => AccountId::Key(id),
            "q" => AccountId::Quota(id),
            _ => return,
        };
        if delta == 0 {
            // an account changed in a way only a reload shows (e.g. a new budget)
            self.accounts.remove(&id);
        } else if let Some(a) = self.accounts.get(&id).map(|a| a.clone()) {
            a.lock().base += delta;
        }
    }

    /// Follow `catraca_funds` until shutdown; after a lost connection every account is read
    /// again, since changes may have been missed.
    pub async fn listen(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let mut listener = match PgListener::connect_with(self.pool.get()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "funds listener cannot connect; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            if listener.listen(CHANNEL).await.is_err() {
                continue;
            }
            self.accounts.clear();
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    n = listener.try_recv() => match n {
                        Ok(Some(n)) => self.apply_notification(n.payload()),
                        Ok(None) => self.accounts.clear(),
                        Err(e) => {
                            tracing::warn!(error = %e, "funds listener error; reconnecting");
                            break;
                        }
                    }
                }
            }
        }
    }
}
