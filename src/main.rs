//! Entry point: parse the command line, start logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

use catraca::cli::{Cli, Command};

/// mimalloc instead of glibc malloc: the proxy allocates and frees many small buffers per
/// request across threads, where glibc's arenas showed up in profiles (see loadtests/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            catraca::server::serve(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { config } => {
            catraca::server::admin_alone(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { database_url } => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(catraca::server::migrate_once(&database_url))?;
            tracing::info!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { path } => match catraca::config::load_file(&path) {
            Ok(c) => {
                eprintln!(
                    "{}: ok ({} providers, {} deployments, {} models, {} keys)",
                    path.display(),
                    c.providers.len(),
                    c.deployments.len(),
                    c.models.len(),
                    c.keys.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{} problem(s) found", errors.len());
                Ok(ExitCode::FAILURE)
            }
        },
        Command::MockUpstream {
            listen,
            fail_status,
            fail_rate,
            latency_ms,
            threads,
        } => {
            if !(0.0..=1.0).contains(&fail_rate) {
                anyhow::bail!("--fail-rate must be between 0 and 1");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build()?;
            let opts = catraca::mock_upstream::MockOptions {
                fail_status,
                fail_rate,
                latency: std::time::Duration::from_millis(latency_ms),
            };
            rt.block_on(catraca::mock_upstream::run(listen, opts))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
