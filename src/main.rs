//! Entry point: parse the command line, start logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

use catraca::cli::{Cli, Command, KeyAction, LedgerAction, OrgAction};

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

async fn ledger(url: &str, action: LedgerAction) -> anyhow::Result<serde_json::Value> {
    use catraca::store::ledger;
    let pool = sqlx::PgPool::connect(url).await?;
    catraca::store::pg::migrate(&pool).await?;
    match action {
        LedgerAction::Post {
            org,
            kind,
            amount,
            idempotency_key,
            description,
        } => {
            let (sign, digits) = match amount.trim().strip_prefix('-') {
                Some(rest) => (-1, rest),
                None => (1, amount.trim()),
            };
            let micros = catraca::config::resolve::parse_decimal_micros(digits)
                .map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
            let e = ledger::post(
                &pool,
                org,
                &kind,
                sign * micros,
                &idempotency_key,
                description.as_deref(),
            )
            .await?;
            Ok(serde_json::json!({
                "ledger_entry_id": e.ledger_entry_id,
                "kind": e.kind,
                "amount_brl": ledger::brl(e.amount_brl_micros),
                "balance_after_brl": ledger::brl(e.balance_after_brl_micros),
            }))
        }
        LedgerAction::Show { org, limit } => Ok(ledger::statement(&pool, org, limit).await?),
    }
}

/// `catraca org|key …`: the operator API's calls, made on the database directly.
async fn operator(url: &str, cmd: OperatorCmd) -> anyhow::Result<serde_json::Value> {
    use catraca::domain::{Entity, keys, money::Micros, orgs, usage::Page};
    use catraca::surfaces::operator::wire;
    let pool = sqlx::PgPool::connect(url).await?;
    catraca::store::pg::migrate(&pool).await?;
    let id = |raw: &str, what: Entity| -> anyhow::Result<uuid::Uuid> {
        raw.parse()
            .map_err(|_| anyhow::anyhow!("not a valid {} id: {raw}", what.as_str()))
    };
    Ok(match cmd {
        OperatorCmd::Org(OrgAction::Create {
            name,
            slug,
            kind,
            plan,
            prepaid,
        }) => {
            let o = orgs::create(
                &pool,
                orgs::NewOrg {
                    name,
                    slug,
                    kind,
                    plan,
                    prepaid,
                },
            )
            .await?;
            wire::org(&o)
        }
        OperatorCmd::Org(OrgAction::List {
            kind,
            page,
            per_page,
        }) => {
            let page = Page::new(page, per_page)?;
            let (rows, total) = orgs::list(&pool, kind.as_deref(), page).await?;
            serde_json::json!({"data": rows.iter().map(wire::org).collect::<Vec<_>>(),
                "page": page.page, "per_page": page.per_page, "total": total})
        }
        OperatorCmd::Org(OrgAction::Get { id: raw }) => {
            wire::org(&orgs::get(&pool, id(&raw, Entity::Organization)?).await?)
        }
        OperatorCmd::Key(KeyAction::Create {
            org,
            prefix,
            name,
            rps,
            rpm,
            rpd,
            tpm,
            concurrency,
            budget_usd,
            models,
        }) => {
            let budget = budget_usd
                .as_deref()
                .map(|b| catraca::config::resolve::parse_decimal_micros(b).map(Micros))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--budget-usd: {e}"))?;
            let (k, plaintext) = keys::create_for_operator(
                &pool,
                keys::NewOperatorKey {
                    organization_id: Some(id(&org, Entity::Organization)?),
                    prefix,
                    name,
                    rps,
                    rpm,
                    rpd,
                    tpm,
                    concurrency,
                    budget,
                    models,
                    ..Default::default()
                },
            )
            .await?;
            let mut v = wire::key(&k);
            v["key"] = serde_json::Value::String(plaintext);
            v
        }
        OperatorCmd::Key(KeyAction::Revoke { id: raw }) => {
            wire::key(&keys::revoke_any(&pool, id(&raw, Entity::Key)?).await?)
        }
        OperatorCmd::Key(KeyAction::Rotate { id: raw }) => {
            let (k, plaintext) = keys::rotate(&pool, id(&raw, Entity::Key)?).await?;
            serde_json::json!({"id": k.api_key_id.to_string(), "key": plaintext, "prefix": k.prefix})
        }
    })
}

/// The operator commands of the CLI.
enum OperatorCmd {
    Org(OrgAction),
    Key(KeyAction),
}

/// Run a database command on `database_url` and print its JSON result (the command's output).
fn print_json<F: std::future::Future<Output = anyhow::Result<serde_json::Value>>>(
    database_url: Option<String>,
    what: &str,
    command: impl FnOnce(String) -> F,
) -> anyhow::Result<ExitCode> {
    let Some(url) = database_url else {
        anyhow::bail!("{what} needs a database: set DATABASE_URL or --database-url");
    };
    let out = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command(url))?;
    use std::io::Write;
    writeln!(std::io::stdout(), "{out}")?;
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, upgrade } => {
            catraca::server::serve(&config, upgrade)?;
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
        Command::Ledger {
            database_url,
            action,
        } => print_json(database_url, "the ledger", |url| async move {
            ledger(&url, action).await
        }),
        Command::Org {
            database_url,
            action,
        } => print_json(database_url, "this command", |url| async move {
            operator(&url, OperatorCmd::Org(action)).await
        }),
        Command::Key {
            database_url,
            action,
        } => print_json(database_url, "this command", |url| async move {
            operator(&url, OperatorCmd::Key(action)).await
        }),
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
