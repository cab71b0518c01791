//! Test support: the mock upstream in-process on an ephemeral port, and the real `catraca`
//! binary spawned per test with inline YAML.

#![allow(dead_code)]

pub mod bradax;
pub mod dialect;
pub mod pytake;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use catraca::mock_upstream::{MockOptions, router};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Key accepted by every test gateway.
pub const KEY: &str = "sk-test-key";

/// Every key, token and password the suite hands a gateway; each gateway's log is searched
/// for all of them when it stops (see `Drop for Gateway`).
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Note `s` as a secret no log may contain; returns it.
pub fn secret(s: &str) -> String {
    SECRETS.lock().unwrap().push(s.to_string());
    s.to_string()
}

/// The secrets found in `text`.
pub fn leaked(text: &str) -> Vec<String> {
    let mut all = SECRETS.lock().unwrap().clone();
    all.extend([KEY.to_string(), DISABLED_KEY.to_string()]);
    all.into_iter()
        .filter(|s| text.contains(s.as_str()))
        .collect()
}
/// Key declared disabled.
pub const DISABLED_KEY: &str = "sk-test-disabled";

/// A mock provider running in the test's runtime.
pub struct Mock {
    pub addr: SocketAddr,
}

impl Mock {
    pub async fn start() -> Mock {
        Self::start_with(MockOptions::default()).await
    }

    pub async fn start_with(opts: MockOptions) -> Mock {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, router(opts)).await });
        Mock { addr }
    }

    /// Base URL for a provider entry.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub async fn stats(&self) -> Value {
        reqwest::get(format!("http://{}/mock/stats", self.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn requests(&self) -> u64 {
        self.stats().await["requests"].as_u64().unwrap()
    }

    /// Change the mock's process knobs (fail_status, fail_rate, latency_ms).
    pub async fn set(&self, v: Value) {
        let r = reqwest::Client::new()
            .post(format!("http://{}/mock/config", self.addr))
            .body(v.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh scratch directory.
pub fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "catraca-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running gateway process.
pub struct Gateway {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    child: Child,
}

/// The part of the config every test gateway shares: listeners, usage file, keys.
pub fn header(dir: &std::path::Path, port: u16, mport: u16) -> String {
    let aport = free_port();
    format!(
        r#"listen: ["127.0.0.1:{port}"]
metrics_listen: "127.0.0.1:{mport}"
admin_listen: "127.0.0.1:{aport}"
threads: 2
grace_period_secs: 1
upgrade_sock: "{sock}"
usage: {{jsonl_path: "{usage}"}}
keys:
  - {{name: test, sha256: "{k}"}}
  - {{name: off, sha256: "{d}", disabled: true}}
"#,
        usage = dir.join("usage.jsonl").display(),
        sock = dir.join("upgrade.sock").display(),
        k = sha(KEY),
        d = sha(DISABLED_KEY),
    )
}

impl Gateway {
    /// Start `catraca serve` with the shared header plus `body` (providers, deployments, models),
    /// in the no-database mode.
    pub async fn start(body: &str) -> Gateway {
        Self::start_with_env(body, &[]).await
    }

    /// Same, with extra environment (e.g. `DATABASE_URL` for the Postgres mode).
    pub async fn start_with_env(body: &str, env: &[(&str, &str)]) -> Gateway {
        Self::start_edited(body, env, |yaml| yaml).await
    }

    /// Same, with the whole file passed through `edit` first (to change a header line).
    pub async fn start_edited(
        body: &str,
        env: &[(&str, &str)],
        edit: impl FnOnce(String) -> String,
    ) -> Gateway {
        let dir = scratch();
        let port = free_port();
        let mport = free_port();
        let config_path = dir.join("catraca.yaml");
        std::fs::write(
            &config_path,
            edit(format!("{}{}", header(&dir, port, mport), body)),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_catraca"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(&dir)
            .env_remove("CATRACA_LISTEN")
            .env_remove("CATRACA_METRICS_LISTEN")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let g = Gateway {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            metrics_addr: format!("127.0.0.1:{mport}").parse().unwrap(),
            dir,
            config_path,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = reqwest::get(g.url("/healthz")).await
                && r.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not start:\n{}",
                g.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // with a database the admin app starts beside the gateway: its first call must not race
        // the app's listener (a 502 "admin app unreachable" was seen once on a loaded machine)
        if env.iter().any(|(k, _)| *k == "DATABASE_URL") {
            loop {
                if let Ok(r) = reqwest::get(g.url("/openapi.json")).await
                    && r.status() != 502
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "admin app did not start:\n{}",
                    g.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        g
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    /// The log without terminal colours, for matching `field=value`.
    pub fn plain_log(&self) -> String {
        let log = self.log();
        let mut out = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Usage events written so far.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("usage.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Wait until at least `n` usage events are written; returns them all.
    pub async fn wait_events(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ev = self.events();
            if ev.len() >= n {
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} usage events, have {}: {ev:?}",
                ev.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POST JSON with the test key.
    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut rb = reqwest::Client::new()
            .post(self.url(path))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.unwrap()
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Start a second process on the same config with `--upgrade`: it takes the listening
    /// sockets over once this one gets SIGQUIT. Its log goes to `gateway-new.log`.
    pub fn spawn_upgrade(&self) -> Child {
        let log = std::fs::File::create(self.dir.join("gateway-new.log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_catraca"))
            .arg("serve")
            .arg("--upgrade")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(&self.dir)
            .env_remove("CATRACA_LISTEN")
            .env_remove("CATRACA_METRICS_LISTEN")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Send a signal with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let log = format!(
                "{}{}",
                self.log(),
                std::fs::read_to_string(self.dir.join("gateway-new.log")).unwrap_or_default()
            );
            let found = leaked(&log);
            assert!(
                found.is_empty(),
                "secrets in the gateway log ({}): {found:?}",
                self.dir.display()
            );
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("gateway log ({}):\n{}", self.dir.display(), self.log());
        }
    }
}

/// Two providers, each with one deployment of the public model `chat-model`; `a` is tried first.
pub fn two_deployments(a: &str, b: &str, extra: &str) -> String {
    format!(
        r#"failover: {{max_attempts: 3, failures_to_trip: 2, cooldown_ms: 3000}}
providers:
  - {{name: pa, base_url: "{a}", connect_timeout_ms: 500, read_timeout_ms: 1000, forward_headers: [x-mock-*]}}
  - {{name: pb, base_url: "{b}", connect_timeout_ms: 500, read_timeout_ms: 1000, forward_headers: [x-mock-*]}}
deployments:
  - {{name: da, provider: pa, model: upstream-a, priority: 0}}
  - {{name: db, provider: pb, model: upstream-b, priority: 1}}
models:
  - {{name: chat-model, deployments: [da, db]}}
{extra}"#
    )
}

/// Read a whole SSE response as text.
pub async fn text(r: reqwest::Response) -> String {
    r.text().await.unwrap()
}

/// A TCP forwarder the test can cut and restore, to take Postgres away from a gateway without
/// stopping the server other tests share.
pub struct TcpCut {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl TcpCut {
    pub async fn start(target: SocketAddr) -> TcpCut {
        use std::sync::atomic::AtomicBool;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let up = std::sync::Arc::new(AtomicBool::new(true));
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let up2 = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = l.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let mut rx = cut_rx.clone();
                rx.borrow_and_update(); // only cuts after this connection count
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut upstream) => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        });
        TcpCut { port, up, cut }
    }

    /// Drop every open connection and refuse new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// URL of the database behind `pool`, optionally through another local port.
pub fn db_url(pool: &sqlx::PgPool, port: Option<u16>) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        if port.is_some() {
            "127.0.0.1"
        } else {
            o.get_host()
        },
        port.unwrap_or(o.get_port()),
        o.get_database().unwrap_or("postgres")
    )
}

/// An organization and a key in it; returns (organization_id, api_key_id).
pub async fn insert_key(pool: &sqlx::PgPool, key: &str) -> (uuid::Uuid, uuid::Uuid) {
    let org: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO organization (name) VALUES ('Org') RETURNING organization_id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (org, add_key(pool, org, key).await)
}

/// Another key (named `k`) in organization `org`; returns its id.
pub async fn add_key(pool: &sqlx::PgPool, org: uuid::Uuid, key: &str) -> uuid::Uuid {
    secret(key);
    sqlx::query_scalar(
        "INSERT INTO api_key (organization_id, key_hash, prefix, name) VALUES ($1, $2, $3, 'k') RETURNING api_key_id",
    )
    .bind(org)
    .bind(Sha256::digest(key.as_bytes()).to_vec())
    .bind(&key[..8])
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Put organization `org` on the plan with this `code`.
pub async fn set_plan(pool: &sqlx::PgPool, org: uuid::Uuid, code: &str) {
    sqlx::query(
        "UPDATE organization SET plan_id = (SELECT plan_id FROM plan WHERE code = $2)
         WHERE organization_id = $1",
    )
    .bind(org)
    .bind(code)
    .execute(pool)
    .await
    .unwrap();
}

/// One provider (the mock), one deployment `d` (upstream model `up`) serving the public model
/// `model`, then `extra` (more `models:` entries).
pub fn single_model(mock: &Mock, model: &str, extra: &str) -> String {
    format!(
        "providers:\n  - {{name: p, base_url: \"{}\", forward_headers: [x-mock-*]}}\ndeployments:\n  - {{name: d, provider: p, model: up}}\nmodels:\n  - {{name: {model}, deployments: [d]}}\n{extra}",
        mock.base()
    )
}

/// One JSON call: (status, body as JSON, or the text as a JSON string).
pub async fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut rb = c.request(method.parse().unwrap(), gw.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Status of one chat request for `model` with `key` through the gateway.
pub async fn chat_status(gw: &Gateway, key: &str, model: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": "oi"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A key no other test (or earlier run) has used: its counters start at zero.
pub fn fresh_key(tag: &str) -> String {
    secret(&format!("sk-{tag}-{}", uuid::Uuid::new_v4().simple()))
}

pub fn key_line(name: &str, key: &str, limits: &str) -> String {
    format!(
        "  - {{name: {name}, sha256: \"{}\", {limits}}}\n",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()))
    )
}

/// A gateway answer: status, headers and JSON body (null when not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn h(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// POST a chat completion with `key`, `body` and extra `headers`.
pub async fn chat(gw: &Gateway, key: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut rb = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// Sleep until at least `margin` of the current `len`-second window is left, so a burst of
/// requests cannot straddle two windows.
pub async fn room_in_window(len: u64, margin: Duration) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_millis((now.as_millis() % (u128::from(len) * 1000)) as u64);
    let left = Duration::from_secs(len) - into;
    if left < margin {
        tokio::time::sleep(left + Duration::from_millis(20)).await;
    }
}

/// A Tokia-style tenant made through the operator API (authenticated by `master`): a
/// prepaid organization, its owner and one `sk-tokia-` key of the owner's.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Organization id.
    pub org: String,
    /// The owner's user id.
    pub user: String,
    /// The owner's email.
    pub email: String,
    /// The key's id.
    pub key_id: String,
    /// The key's plaintext.
    pub key: String,
}

impl Tenant {
    /// Make `name`'s organization, owner (`<name>@example.com`, lower case, spaces as dots)
    /// and key; `topup_brl` (a decimal string) is credited first when given.
    pub async fn make(gw: &Gateway, master: &str, name: &str, topup_brl: Option<&str>) -> Tenant {
        let (s, org) = call(
            gw,
            "POST",
            "/admin/v1/organizations",
            Some(master),
            Some(serde_json::json!({"name": name, "prepaid": true})),
        )
        .await;
        assert_eq!(s, 201, "{org}");
        let org = org["id"].as_str().unwrap().to_string();
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        let (s, user) = call(
            gw,
            "POST",
            "/admin/v1/users",
            Some(master),
            Some(serde_json::json!({"email": email, "name": name,
                                    "organization_id": org, "role": "owner"})),
        )
        .await;
        assert_eq!(s, 201, "{user}");
        let user = user["id"].as_str().unwrap().to_string();
        let (s, k) = call(
            gw,
            "POST",
            "/admin/v1/keys",
            Some(master),
            Some(serde_json::json!({"organization_id": org, "user_id": user,
                                    "prefix": "sk-tokia-", "name": "k"})),
        )
        .await;
        assert_eq!(s, 201, "{k}");
        let t = Tenant {
            key_id: k["id"].as_str().unwrap().to_string(),
            key: secret(k["key"].as_str().unwrap()),
            org,
            user,
            email,
        };
        if let Some(amount) = topup_brl {
            t.topup(gw, master, amount, &format!("topup-{}", t.org))
                .await;
        }
        t
    }

    /// Credit `amount` (a decimal string) to the organization with `idempotency_key`.
    pub async fn topup(&self, gw: &Gateway, master: &str, amount: &str, idempotency_key: &str) {
        let r = reqwest::Client::new()
            .post(gw.url(&format!("/admin/v1/organizations/{}/ledger", self.org)))
            .bearer_auth(master)
            .header("Idempotency-Key", idempotency_key)
            .header("content-type", "application/json")
            .body(serde_json::json!({"kind": "topup", "amount_brl": amount}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
}
