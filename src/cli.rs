//! Command line: `catraca serve | admin | migrate | check-config | ledger | mock-upstream`.

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
