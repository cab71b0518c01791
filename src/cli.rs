//! Command line: `catraca serve | admin | migrate | check-config | ledger | org | user | plan |
//! key | usage | mock-upstream`. The database commands call the domain core on `DATABASE_URL`
//! and print what the operator API (`/admin/v1`) answers, as JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

use crate::domain::DomainError;
use crate::domain::plans::{LimitsPatch, PlanInput};

/// catraca: AI API gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "CATRACA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Config file.
        #[arg(
            long,
            short,
            env = "CATRACA_CONFIG",
            default_value = "conf/catraca.yaml"
        )]
        config: PathBuf,
        /// Take the listening sockets over from a running catraca (graceful upgrade): start
        /// this, then send SIGQUIT to the old process within 5 seconds.
        #[arg(long, short)]
        upgrade: bool,
    },
    /// Run the admin app alone (needs a database).
    Admin {
        /// Config file.
        #[arg(
            long,
            short,
            env = "CATRACA_CONFIG",
            default_value = "conf/catraca.yaml"
        )]
        config: PathBuf,
    },
    /// Apply the database migrations (`DATABASE_URL`) and exit.
    Migrate {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Prepaid balances: post a top-up, refund or adjustment, or show a statement.
    Ledger {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL", global = true)]
        database_url: Option<String>,
        /// What to do.
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Organizations, as the operator API makes them; prints JSON.
    Org {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL", global = true)]
        database_url: Option<String>,
        /// What to do.
        #[command(subcommand)]
        action: OrgAction,
    },
    /// Users, as the operator API makes them; prints JSON.
    User {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL", global = true)]
        database_url: Option<String>,
        /// What to do.
        #[command(subcommand)]
        action: UserAction,
    },
    /// Plans: prices, quotas, limits and features; prints JSON.
    Plan {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL", global = true)]
        database_url: Option<String>,
        /// What to do.
        #[command(subcommand)]
        action: PlanAction,
    },
    /// Usage reports, as JSON or CSV.
    Usage {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL", global = true)]
        database_url: Option<String>,
        /// What to do.
        #[command(subcommand)]
        action: UsageAction,
    },
    /// API keys, as the operator API makes them; prints JSON (a new key's plaintext once).
    Key {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL", global = true)]
        database_url: Option<String>,
        /// What to do.
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Validate a config file; print every problem with file:line:col.
    CheckConfig {
        /// Config file.
        #[arg(default_value = "conf/catraca.yaml")]
        path: PathBuf,
    },
    /// Run the OpenAI-compatible mock provider.
    MockUpstream {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// Status for randomly failed requests.
        #[arg(long, default_value_t = 500)]
        fail_status: u16,
        /// Share of requests (0..=1) that fail with --fail-status.
        #[arg(long, default_value_t = 0.0)]
        fail_rate: f64,
        /// Latency added to every response, ms.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Where the Graph API stand-in posts signed status webhooks of the messages it
        /// accepts (e.g. `http://127.0.0.1:8080/api/v1/whatsapp/webhook`).
        #[arg(long)]
        graph_webhook_url: Option<String>,
        /// The app secret those webhooks are signed with.
        #[arg(long, env = "MOCK_GRAPH_APP_SECRET")]
        graph_app_secret: Option<String>,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

/// `catraca ledger …`
#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Credit or debit an organization's BRL balance (one entry, idempotent by key). Prints
    /// the entry as JSON. The first entry of a postpaid organization makes it prepaid.
    Post {
        /// Organization id (UUID).
        #[arg(long)]
        org: uuid::Uuid,
        /// `topup`, `refund` (credits) or `adjustment` (either sign).
        #[arg(long, value_parser = ["topup", "refund", "adjustment"])]
        kind: String,
        /// Amount in BRL, at most 6 decimal places (`150`, `0.50`; `-10` for a debit
        /// adjustment).
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The caller's unique reference (e.g. the Pix transaction id): posting again with it
        /// changes nothing.
        #[arg(long)]
        idempotency_key: String,
        /// Free text kept with the entry.
        #[arg(long)]
        description: Option<String>,
    },
    /// Print an organization's balance and its latest entries as JSON.
    Show {
        /// Organization id (UUID).
        #[arg(long)]
        org: uuid::Uuid,
        /// How many entries, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// `catraca org …`
#[derive(Debug, Subcommand)]
pub enum OrgAction {
    /// Create an organization.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Unique slug (derived from the name when absent).
        #[arg(long)]
        slug: Option<String>,
        /// `customer` (default), `team` or `project`.
        #[arg(long)]
        kind: Option<String>,
        /// Plan code.
        #[arg(long)]
        plan: Option<String>,
        /// Prepaid: a BRL balance, starting at zero, debited per request.
        #[arg(long)]
        prepaid: bool,
    },
    /// List organizations.
    List {
        /// Only of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: i64,
        /// Per page, 1 to 500.
        #[arg(long, default_value_t = 50)]
        per_page: i64,
    },
    /// One organization.
    Get {
        /// Organization id.
        id: String,
    },
    /// Change an organization's name, plan or limits (audited with before and after).
    Update {
        /// Organization id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// Put it on this plan (code).
        #[arg(long, conflicts_with = "no_plan")]
        plan: Option<String>,
        /// Take it off its plan.
        #[arg(long)]
        no_plan: bool,
        /// Its own limits (over its plan's).
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Disable an organization: its keys are refused by every gateway at once.
    Disable {
        /// Organization id.
        id: String,
    },
    /// Enable an organization again.
    Enable {
        /// Organization id.
        id: String,
    },
    /// An organization's members.
    Members {
        /// Organization id.
        id: String,
    },
    /// Add an existing user to an organization.
    AddMember {
        /// Organization id.
        org: String,
        /// User id.
        user: String,
        /// `owner`, `admin`, `member` or `viewer`.
        #[arg(long)]
        role: String,
    },
    /// Change a member's role (the last owner cannot be demoted).
    SetRole {
        /// Organization id.
        org: String,
        /// User id.
        user: String,
        /// `owner`, `admin`, `member` or `viewer`.
        #[arg(long)]
        role: String,
    },
    /// Remove a member (the last owner cannot be removed).
    RemoveMember {
        /// Organization id.
        org: String,
        /// User id.
        user: String,
    },
}

/// `catraca user …`
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user in an organization; without `--password-stdin` an invitation mail (a
    /// 7-day code to set the password) is queued.
    Create {
        /// Email.
        #[arg(long)]
        email: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Organization id.
        #[arg(long)]
        org: String,
        /// `owner`, `admin`, `member` or `viewer`.
        #[arg(long, default_value = "member")]
        role: String,
        /// Read the password from standard input (its first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users, oldest first.
    List {
        /// Only members of this organization (id).
        #[arg(long)]
        org: Option<String>,
        /// Only emails containing this (case-insensitive).
        #[arg(long)]
        email: Option<String>,
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: i64,
        /// Per page, 1 to 500.
        #[arg(long, default_value_t = 50)]
        per_page: i64,
    },
    /// One user and their memberships.
    Get {
        /// User id.
        id: String,
    },
    /// Disable a user: logins refused and every session ended at once.
    Disable {
        /// User id.
        id: String,
    },
}

/// `catraca plan …`
#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Create a plan.
    Create {
        /// Code: 1 to 40 lowercase letters, digits, `-` or `_`.
        code: String,
        /// Its fields (absent: the defaults).
        #[command(flatten)]
        fields: PlanArgs,
    },
    /// Every plan, in display order.
    List,
    /// One plan.
    Get {
        /// Code.
        code: String,
    },
    /// Change a plan; every organization on it gets the new limits and quota at once.
    Update {
        /// Code.
        code: String,
        /// The fields to change (absent: kept).
        #[command(flatten)]
        fields: PlanArgs,
    },
}

/// A plan's fields on the command line.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Display name (a new plan: default the code).
    #[arg(long)]
    pub name: Option<String>,
    /// Monthly price in BRL (decimal, e.g. `49.90`).
    #[arg(long, allow_hyphen_values = true)]
    pub price_brl: Option<String>,
    /// Annual price in BRL (decimal).
    #[arg(long, allow_hyphen_values = true)]
    pub annual_price_brl: Option<String>,
    /// Successful requests per month, or `none` for unlimited.
    #[arg(long)]
    pub quota: Option<Limit<i64>>,
    /// Limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// A feature shown with the plan (repeat; replaces the list).
    #[arg(long = "feature")]
    pub features: Vec<String>,
    /// Empty the feature list.
    #[arg(long, conflicts_with = "features")]
    pub no_features: bool,
    /// Highlighted (`--popular`, or `--popular false`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub popular: Option<bool>,
}

impl PlanArgs {
    /// The domain's input; a bad price names its field.
    pub fn input(&self) -> Result<PlanInput, DomainError> {
        let price = |v: &Option<String>, field: &'static str| {
            v.as_deref()
                .map(crate::config::resolve::parse_decimal_micros)
                .transpose()
                .map_err(|e| DomainError::invalid(field, e))
        };
        Ok(PlanInput {
            name: self.name.clone(),
            price_brl_micros: price(&self.price_brl, "price_brl")?,
            annual_price_brl_micros: price(&self.annual_price_brl, "annual_price_brl")?,
            monthly_request_quota: self.quota.map(|q| q.0),
            limits: self.limits.patch(),
            features: if self.no_features {
                Some(Vec::new())
            } else if self.features.is_empty() {
                None
            } else {
                Some(
                    self.features
                        .iter()
                        .map(|t| crate::domain::plans::Feature::Text(t.clone()))
                        .collect(),
                )
            },
            popular: self.popular,
        })
    }
}

/// A number on the command line, or `none` (no limit, unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit<T>(pub Option<T>);

impl<T: FromStr> FromStr for Limit<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(Limit(None));
        }
        s.parse()
            .map(|n| Limit(Some(n)))
            .map_err(|_| format!("{s:?} is neither a positive integer nor `none`"))
    }
}

/// Request limits on the command line: absent keeps a limit, `none` clears it.
#[derive(Debug, Clone, Copy, Args)]
pub struct LimitArgs {
    /// Requests per second, or `none`.
    #[arg(long)]
    pub rps: Option<Limit<i32>>,
    /// Requests per minute, or `none`.
    #[arg(long)]
    pub rpm: Option<Limit<i32>>,
    /// Requests per day, or `none`.
    #[arg(long)]
    pub rpd: Option<Limit<i32>>,
    /// Tokens per minute, or `none`.
    #[arg(long)]
    pub tpm: Option<Limit<i32>>,
    /// Requests at once, or `none`.
    #[arg(long)]
    pub concurrency: Option<Limit<i32>>,
}

impl LimitArgs {
    /// The domain's patch (values are checked there).
    pub fn patch(&self) -> LimitsPatch {
        LimitsPatch {
            rps: self.rps.map(|l| l.0),
            rpm: self.rpm.map(|l| l.0),
            rpd: self.rpd.map(|l| l.0),
            tpm: self.tpm.map(|l| l.0),
            concurrency: self.concurrency.map(|l| l.0),
        }
    }
}

/// `catraca usage …`
#[derive(Debug, Subcommand)]
pub enum UsageAction {
    /// Usage per UTC day and organization, key or model: requests, tokens, cost and billed
    /// amounts, as JSON (or CSV with a header line).
    Report {
        /// `organization`, `key` or `model`.
        #[arg(long, value_parser = ["organization", "key", "model"])]
        group_by: String,
        /// First UTC day, `YYYY-MM-DD`.
        #[arg(long)]
        from: String,
        /// Last UTC day (inclusive), `YYYY-MM-DD`, at most 366 days after `--from`.
        #[arg(long)]
        to: String,
        /// Only this organization (id).
        #[arg(long)]
        org: Option<String>,
        /// Only this key (id).
        #[arg(long)]
        key: Option<String>,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
        /// CSV (RFC 4180, a header line) instead of JSON.
        #[arg(long)]
        csv: bool,
    },
}

/// `catraca key …`
#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Create a key for an organization; prints it with its plaintext (shown this once).
    Create {
        /// Organization id.
        #[arg(long)]
        org: String,
        /// Literal start, e.g. `sk-tokia-` (default `sk-`).
        #[arg(long)]
        prefix: Option<String>,
        /// Name.
        #[arg(long)]
        name: Option<String>,
        /// Requests per second.
        #[arg(long)]
        rps: Option<i64>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<i64>,
        /// Requests per day.
        #[arg(long)]
        rpd: Option<i64>,
        /// Tokens per minute.
        #[arg(long)]
        tpm: Option<i64>,
        /// Requests at once.
        #[arg(long)]
        concurrency: Option<i64>,
        /// Spend cap in USD (decimal).
        #[arg(long)]
        budget_usd: Option<String>,
        /// A model the key may use (repeat; none = every model).
        #[arg(long = "model")]
        models: Vec<String>,
    },
    /// An organization's keys (never their plaintext), newest first.
    List {
        /// Organization id.
        #[arg(long)]
        org: String,
    },
    /// Revoke a key.
    Revoke {
        /// Key id.
        id: String,
    },
    /// Rotate a key: a new plaintext with the same prefix, printed once.
    Rotate {
        /// Key id.
        id: String,
    },
}
