//! Entry point: parse the command line, start logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

use catraca::cli::{
    Cli, Command, KeyAction, LedgerAction, OrgAction, PlanAction, UsageAction, UserAction,
};

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

/// What a database command prints: JSON, or text as it is (a CSV report).
enum Output {
    Json(serde_json::Value),
    Text(String),
}

impl From<serde_json::Value> for Output {
    fn from(v: serde_json::Value) -> Self {
        Output::Json(v)
    }
}

/// The database at `url`, migrated.
async fn connect(url: &str) -> anyhow::Result<sqlx::PgPool> {
    let pool = sqlx::PgPool::connect(url).await?;
    catraca::store::pg::migrate(&pool).await?;
    Ok(pool)
}

/// A UUID given on the command line, or a clear error naming what it should be.
fn id(raw: &str, what: catraca::domain::Entity) -> anyhow::Result<uuid::Uuid> {
    raw.parse()
        .map_err(|_| anyhow::anyhow!("not a valid {} id: {raw:?}", what.as_str()))
}

/// `{"data": [...]}`, as the operator API lists.
fn data(rows: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "data": rows })
}

/// `catraca ledger …`: amounts as exact decimals (`Micros::decimal`).
async fn ledger(url: &str, action: LedgerAction) -> anyhow::Result<Output> {
    use catraca::domain::{ledger, money::Micros};
    let pool = connect(url).await?;
    Ok(match action {
        LedgerAction::Post {
            org,
            kind,
            amount,
            idempotency_key,
            description,
        } => {
            let amount = ledger::parse_amount(&amount)?;
            let e = ledger::post(
                &pool,
                org,
                &kind,
                amount,
                &idempotency_key,
                description.as_deref(),
            )
            .await?;
            serde_json::json!({
                "ledger_entry_id": e.ledger_entry_id,
                "kind": e.kind,
                "amount_brl": Micros(e.amount_brl_micros).decimal(),
                "balance_after_brl": Micros(e.balance_after_brl_micros).decimal(),
            })
        }
        LedgerAction::Show { org, limit } => {
            let st = ledger::statement(&pool, org, limit).await?;
            catraca::surfaces::operator::wire::ledger_statement(org, &st)
        }
    }
    .into())
}

/// `catraca org …`: the operator API's calls, made on the database directly.
async fn org(url: &str, action: OrgAction) -> anyhow::Result<Output> {
    use catraca::domain::{Entity, accounts, orgs, roles::Role, usage::Page};
    use catraca::surfaces::operator::wire;
    let pool = connect(url).await?;
    let org_id = |raw: &str| id(raw, Entity::Organization);
    Ok(match action {
        OrgAction::Create {
            name,
            slug,
            kind,
            plan,
            prepaid,
        } => {
            let o = orgs::create(
                &pool,
                orgs::NewOrg {
                    name,
                    slug,
                    kind,
                    tier: None,
                    plan,
                    prepaid,
                    limits: Default::default(),
                },
            )
            .await?;
            wire::org(&o)
        }
        OrgAction::List {
            kind,
            page,
            per_page,
        } => {
            let page = Page::new(page, per_page)?;
            let (rows, total) = orgs::list(&pool, kind.as_deref(), page).await?;
            serde_json::json!({"data": rows.iter().map(wire::org).collect::<Vec<_>>(),
                "page": page.page, "per_page": page.per_page, "total": total})
        }
        OrgAction::Get { id: raw } => wire::org(&orgs::get(&pool, org_id(&raw)?).await?),
        OrgAction::Update {
            id: raw,
            name,
            plan,
            no_plan,
            limits,
        } => {
            let org = org_id(&raw)?;
            let plan = match (plan, no_plan) {
                (Some(code), _) => Some(Some(code)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let update = orgs::OrgUpdate {
                name,
                plan,
                limits: limits.patch(),
            };
            wire::org(&orgs::update(&pool, org, update).await?)
        }
        OrgAction::Disable { id: raw } => {
            wire::org(&orgs::set_disabled(&pool, org_id(&raw)?, true).await?)
        }
        OrgAction::Enable { id: raw } => {
            wire::org(&orgs::set_disabled(&pool, org_id(&raw)?, false).await?)
        }
        OrgAction::Members { id: raw } => {
            let rows = accounts::members(&pool, org_id(&raw)?).await?;
            data(
                rows.iter()
                    .map(|r| wire::user(std::slice::from_ref(r)))
                    .collect(),
            )
        }
        OrgAction::AddMember { org, user, role } => {
            let (org, user, role) = (org_id(&org)?, id(&user, Entity::User)?, Role::parse(&role)?);
            orgs::add_member_by_id(&pool, org, user, role).await?;
            member(org, user, role)
        }
        OrgAction::SetRole { org, user, role } => {
            let (org, user, role) = (org_id(&org)?, id(&user, Entity::User)?, Role::parse(&role)?);
            refused(orgs::set_role(&pool, None, org, user, role).await?, org, user)?;
            member(org, user, role)
        }
        OrgAction::RemoveMember { org, user } => {
            let (org, user) = (org_id(&org)?, id(&user, Entity::User)?);
            refused(orgs::remove_member(&pool, None, org, user).await?, org, user)?;
            serde_json::json!({"organization_id": org.to_string(), "user_id": user.to_string(), "removed": true})
        }
    }
    .into())
}

/// A membership as the operator API answers its change.
fn member(
    org: uuid::Uuid,
    user: uuid::Uuid,
    role: catraca::domain::roles::Role,
) -> serde_json::Value {
    serde_json::json!({"organization_id": org.to_string(), "user_id": user.to_string(), "role": role.as_str()})
}

/// A membership change refused: a clear error.
fn refused(
    r: catraca::domain::orgs::Removal,
    org: uuid::Uuid,
    user: uuid::Uuid,
) -> anyhow::Result<()> {
    use catraca::domain::orgs::Removal;
    match r {
        Removal::Done => Ok(()),
        Removal::NotMember => anyhow::bail!("user {user} is not a member of organization {org}"),
        Removal::LastOwner => anyhow::bail!(
            "user {user} is the last owner of organization {org}: make another member owner first"
        ),
    }
}

/// `catraca user …`
async fn user(url: &str, action: UserAction) -> anyhow::Result<Output> {
    use catraca::domain::{Entity, accounts, usage::Page};
    use catraca::surfaces::operator::wire;
    Ok(match action {
        UserAction::Create {
            email,
            name,
            org,
            role,
            password_stdin,
        } => {
            let org = id(&org, Entity::Organization)?;
            let password = if password_stdin {
                let text = std::io::read_to_string(std::io::stdin())?;
                let line = text.lines().next().unwrap_or_default().to_string();
                Some(line)
            } else {
                None
            };
            let pool = connect(url).await?;
            let rows = accounts::create_user(
                &pool,
                accounts::NewUser {
                    email,
                    name,
                    password,
                    organization_id: org,
                    role,
                },
            )
            .await?;
            wire::user(&rows)
        }
        UserAction::List {
            org,
            email,
            page,
            per_page,
        } => {
            let org = org
                .as_deref()
                .map(|o| id(o, Entity::Organization))
                .transpose()?;
            let page = Page::new(page, per_page)?;
            let pool = connect(url).await?;
            let (rows, total) = accounts::list_users(&pool, org, email.as_deref(), page).await?;
            serde_json::json!({"data": rows.iter().map(wire::listed_user).collect::<Vec<_>>(),
                "page": page.page, "per_page": page.per_page, "total": total})
        }
        UserAction::Get { id: raw } => {
            let user = id(&raw, Entity::User)?;
            let pool = connect(url).await?;
            wire::user(&accounts::get_user(&pool, user).await?)
        }
        UserAction::Disable { id: raw } => {
            let user = id(&raw, Entity::User)?;
            let pool = connect(url).await?;
            wire::user(&accounts::disable_user(&pool, user).await?)
        }
    }
    .into())
}

/// `catraca plan …`
async fn plan(url: &str, action: PlanAction) -> anyhow::Result<Output> {
    use catraca::domain::plans;
    use catraca::surfaces::operator::wire;
    Ok(match action {
        PlanAction::Create { code, fields } => {
            let input = fields.input()?;
            let pool = connect(url).await?;
            wire::plan(&plans::create(&pool, &code, input).await?)
        }
        PlanAction::List => {
            let pool = connect(url).await?;
            data(plans::list(&pool).await?.iter().map(wire::plan).collect())
        }
        PlanAction::Get { code } => {
            let pool = connect(url).await?;
            wire::plan(&plans::get(&pool, &code).await?)
        }
        PlanAction::Update { code, fields } => {
            let input = fields.input()?;
            let pool = connect(url).await?;
            wire::plan(&plans::update(&pool, &code, input).await?)
        }
    }
    .into())
}

/// `catraca usage …`
async fn usage(url: &str, action: UsageAction) -> anyhow::Result<Output> {
    use catraca::domain::{DomainError, Entity, usage};
    use catraca::surfaces::operator::wire;
    let UsageAction::Report {
        group_by,
        from,
        to,
        org,
        key,
        model,
        csv,
    } = action;
    let day = |raw: &str, field: &'static str| {
        time::Date::parse(
            raw,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| DomainError::invalid(field, format!("{raw:?} is not a YYYY-MM-DD day")))
    };
    let query = usage::ReportQuery {
        group: usage::GroupBy::parse(&group_by)?,
        from: day(&from, "from")?,
        to: day(&to, "to")?,
        org: org
            .as_deref()
            .map(|o| id(o, Entity::Organization))
            .transpose()?,
        key: key.as_deref().map(|k| id(k, Entity::Key)).transpose()?,
        model: model.as_deref(),
    };
    let pool = connect(url).await?;
    let rows = usage::report(&pool, &query).await?;
    let group = query.group.as_str();
    if csv {
        let mut out = String::from(wire::REPORT_CSV_HEADER);
        for r in &rows {
            out.push_str(&wire::report_csv(group, r));
        }
        return Ok(Output::Text(out));
    }
    Ok(serde_json::json!({
        "group_by": group,
        "from": from,
        "to": to,
        "data": rows.iter().map(wire::report_row).collect::<Vec<_>>(),
    })
    .into())
}

/// `catraca key …`
async fn key(url: &str, action: KeyAction) -> anyhow::Result<Output> {
    use catraca::domain::{Entity, keys, money::Micros};
    use catraca::surfaces::operator::wire;
    let pool = connect(url).await?;
    Ok(match action {
        KeyAction::Create {
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
        } => {
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
        KeyAction::List { org } => {
            let rows = keys::of_org(&pool, id(&org, Entity::Organization)?).await?;
            data(rows.iter().map(wire::key).collect())
        }
        KeyAction::Revoke { id: raw } => {
            wire::key(&keys::revoke_any(&pool, id(&raw, Entity::Key)?).await?)
        }
        KeyAction::Rotate { id: raw } => {
            let (k, plaintext) = keys::rotate(&pool, id(&raw, Entity::Key)?).await?;
            serde_json::json!({"id": k.api_key_id.to_string(), "key": plaintext, "prefix": k.prefix})
        }
    }
    .into())
}

/// Run a database command on `database_url` as the audit actor `cli` and print its result
/// (JSON on one line, or text as it is) on stdout.
fn print_json<F: std::future::Future<Output = anyhow::Result<Output>>>(
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
        .block_on(catraca::domain::audit::scoped(
            catraca::domain::audit::Context {
                actor: Some("cli"),
                source_ip: None,
            },
            command(url),
        ))?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match out {
        Output::Json(v) => writeln!(stdout, "{v}")?,
        Output::Text(t) => write!(stdout, "{t}")?,
    }
    stdout.flush()?;
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
            org(&url, action).await
        }),
        Command::User {
            database_url,
            action,
        } => print_json(database_url, "this command", |url| async move {
            user(&url, action).await
        }),
        Command::Plan {
            database_url,
            action,
        } => print_json(database_url, "this command", |url| async move {
            plan(&url, action).await
        }),
        Command::Usage {
            database_url,
            action,
        } => print_json(database_url, "this command", |url| async move {
            usage(&url, action).await
        }),
        Command::Key {
            database_url,
            action,
        } => print_json(database_url, "this command", |url| async move {
            key(&url, action).await
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
            graph_webhook_url,
            graph_app_secret,
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
                graph_webhook_url,
                graph_app_secret,
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
