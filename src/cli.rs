//! Command line: `catraca serve | admin | migrate | check-config | ledger | org | key |
//! mock-upstream`. `org` and `key` call the domain core on `DATABASE_URL` and print what the
//! operator API (`/admin/v1`) answers, as JSON.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
