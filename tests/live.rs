//! MaxAI's live events (`/socket.io/`) with a real Socket.IO client (python-socketio, from
//! `CATRACA_PYTHON`, see tests/sdk/live_client.py): each customer gets its own usage, key and
//! budget events and never another's, from any node; a bad token is refused, and a socket whose
//! token stops holding is ended; a WebSocket through the gateway port outlives the body
//! timeout; the realtime health counts the clients.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::common::{Gateway, Mock, call, db_url};

const SECRET: &str = "live-secret-live-secret-live-secret-1";

/// One model at $0.01 a request (a $0.05 budget fits five).
fn priced(mock: &Mock) -> String {
    format!(
        "providers:\n  - {{name: p, base_url: \"{}\"}}\ndeployments:\n  - {{name: d, provider: p, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [d]}}\n",
        mock.base()
    )
}

async fn node(pool: &PgPool, mock: &Mock) -> Gateway {
    Gateway::start_with_env(
        &priced(mock),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_JWT_SECRET", SECRET),
        ],
    )
    .await
}

/// The admin app's own listener of a test gateway (`admin_listen` in its config).
fn admin_url(gw: &Gateway) -> String {
    let yaml = std::fs::read_to_string(&gw.config_path).unwrap();
    let line = yaml
        .lines()
        .find_map(|l| l.strip_prefix("admin_listen: "))
        .unwrap();
    format!("http://{}", line.trim().trim_matches('"'))
}

async fn register(gw: &Gateway, email: &str) -> String {
    let (s, v) = call(
        gw,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"email": email, "password": "senha-forte-1", "name": "Cliente"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    crate::common::secret(v["access_token"].as_str().unwrap())
}

/// A running live_client.py: every line it printed, as JSON.
struct Client {
    child: tokio::process::Child,
    rx: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Client {
    async fn start(url: &str, token: Option<&str>, via: &str, transport: &str) -> Client {
        let python = std::env::var("CATRACA_PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = std::process::Command::new(&python)
            .args(["-c", "import socketio, websocket"])
            .output();
        assert!(
            probe.is_ok_and(|o| o.status.success()),
            "python-socketio is missing for {python}: run scripts/test.sh, or pip install -r tests/sdk/requirements.txt"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/live_client.py");
        let mut cmd = tokio::process::Command::new(&python);
        cmd.arg(script)
            .arg(url)
            .args(["--via", via, "--transport", transport]);
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&l) {
                    let _ = tx.send(v);
                }
            }
        });
        Client {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// The first line (seen or to come within `secs`) that `pred` accepts.
    async fn wait_for(&mut self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                _ => panic!("no {what} within {secs} s; lines: {:#?}", self.seen),
            }
        }
    }

    /// Take every line printed so far.
    fn drain(&mut self) {
        while let Ok(v) = self.rx.try_recv() {
            self.seen.push(v);
        }
    }

    /// Data of the events named `ev` so far.
    fn events(&mut self, ev: &str) -> Vec<Value> {
        self.drain();
        self.seen
            .iter()
            .filter(|v| v["ev"] == ev)
            .map(|v| v["data"].clone())
            .collect()
    }

    async fn connected(&mut self) -> Value {
        self.wait_for(45, "connection", |v| {
            assert_ne!(v["ev"], "connect_error", "refused: {v}");
            v["ev"] == "connected"
        })
        .await
    }

    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

async fn chat(gw: &Gateway, key: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(
            json!({"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "oi"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    (r.status().as_u16(), id)
}

async fn health(url: &str) -> Value {
    reqwest::get(format!("{url}/api/realtime/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn each_customer_gets_its_own_usage_key_and_budget_events_on_every_node(pool: PgPool) {
    let mock = Mock::start().await;
    let gw1 = node(&pool, &mock).await;
    let gw2 = node(&pool, &mock).await;
    let (admin1, admin2) = (admin_url(&gw1), admin_url(&gw2));
    let alice = register(&gw1, "alice@example.com").await;
    let bob = register(&gw1, "bob@example.com").await;

    // Alice on node 2's admin listener (websocket, token in the auth payload) and on node 1's
    // (token in the query); Bob through node 1's gateway port (polling, Authorization header)
    let mut a2 = Client::start(&admin2, Some(&alice), "auth", "websocket").await;
    let mut a1 = Client::start(&admin1, Some(&alice), "query", "websocket").await;
    let mut b = Client::start(&gw1.url(""), Some(&bob), "header", "polling").await;
    assert_eq!(a2.connected().await["transport"], "websocket");
    assert_eq!(a1.connected().await["transport"], "websocket");
    assert_eq!(b.connected().await["transport"], "polling");

    let h2 = health(&admin2).await;
    assert_eq!(
        (h2["status"].as_str(), h2["connected_clients"].as_u64()),
        (Some("ok"), Some(1)),
        "{h2}"
    );
    assert_eq!(h2["feed"]["live"], true, "{h2}");
    let h1 = health(&gw1.url("")).await;
    assert_eq!(h1["connected_clients"], 2, "{h1}");

    // keys: made through MaxAI, seen by their customer only
    let (s, ka) = call(
        &gw1,
        "POST",
        "/api/keys",
        Some(&alice),
        Some(json!({"name": "alice-key", "budget": 0.05})),
    )
    .await;
    assert_eq!(s, 201, "{ka}");
    let (s, kb) = call(
        &gw2,
        "POST",
        "/api/keys",
        Some(&bob),
        Some(json!({"name": "bob-key"})),
    )
    .await;
    assert_eq!(s, 201, "{kb}");
    let (ka_id, kb_id) = (ka["id"].as_i64().unwrap(), kb["id"].as_i64().unwrap());
    let (ka_key, kb_key) = (
        crate::common::secret(ka["key"].as_str().unwrap()),
        crate::common::secret(kb["key"].as_str().unwrap()),
    );
    for c in [&mut a1, &mut a2] {
        let v = c
            .wait_for(5, "key.created", |v| v["ev"] == "key.created")
            .await;
        assert_eq!(v["data"]["id"], ka_id, "{v}");
        assert_eq!(v["data"]["name"], "alice-key");
        assert_eq!(v["data"]["budget"], json!(0.05));
        assert_eq!(v["data"]["key_prefix"], ka["key_prefix"]);
    }
    let v = b
        .wait_for(5, "key.created", |v| v["ev"] == "key.created")
        .await;
    assert_eq!(v["data"]["id"], kb_id, "{v}");

    // usage through node 1: five fit the $0.05 budget, then 402s; 80 % and 100 % once each
    let mut alice_reqs = Vec::new();
    for _ in 0..7 {
        alice_reqs.push(chat(&gw1, &ka_key).await);
    }
    let statuses: Vec<u16> = alice_reqs.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 402, 402]);
    let mut bob_reqs = Vec::new();
    for _ in 0..2 {
        bob_reqs.push(chat(&gw2, &kb_key).await);
    }
    let alice_ids: HashSet<String> = alice_reqs.iter().map(|r| r.1.clone()).collect();
    let bob_ids: HashSet<String> = bob_reqs.iter().map(|r| r.1.clone()).collect();
    for c in [&mut a1, &mut a2] {
        for id in &alice_ids {
            let v = c
                .wait_for(5, "alice's usage", |v| {
                    v["ev"] == "usage" && v["data"]["request_id"] == id.as_str()
                })
                .await;
            let d = &v["data"];
            assert_eq!(d["key_id"], ka_id, "{v}");
            assert_eq!(d["model"], "m");
            assert!(d["tokens_in"].is_i64() && d["cost"].is_number(), "{v}");
            assert!(d["timestamp"].is_string() && d["completed_at"].is_string());
        }
        c.wait_for(5, "100 % of the budget", |v| {
            v["ev"] == "budget.threshold" && v["data"]["threshold"] == 100
        })
        .await;
    }
    for id in &bob_ids {
        let v = b
            .wait_for(5, "bob's usage", |v| {
                v["ev"] == "usage" && v["data"]["request_id"] == id.as_str()
            })
            .await;
        assert_eq!(v["data"]["key_id"], kb_id);
        assert_eq!(v["data"]["cost"], json!(0.01));
    }

    // revoked through MaxAI (Alice) and by any other path, here plain SQL as the operator
    // API and the CLI end in it (Bob)
    let (s, v) = call(
        &gw2,
        "DELETE",
        &format!("/api/keys/{ka_id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    sqlx::query("UPDATE api_key SET status = 'revoked', revoked_at = now() WHERE serial_id = $1")
        .bind(kb_id)
        .execute(&pool)
        .await
        .unwrap();
    for c in [&mut a1, &mut a2] {
        let v = c
            .wait_for(5, "key.revoked", |v| v["ev"] == "key.revoked")
            .await;
        assert_eq!(
            (v["data"]["id"].as_i64(), v["data"]["status"].as_str()),
            (Some(ka_id), Some("revoked"))
        );
        assert!(v["data"]["revoked_at"].is_string(), "{v}");
    }
    let v = b
        .wait_for(5, "key.revoked", |v| v["ev"] == "key.revoked")
        .await;
    assert_eq!(v["data"]["id"], kb_id);

    // late duplicates would show now
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for c in [&mut a1, &mut a2] {
        let usage = c.events("usage");
        assert_eq!(usage.len(), 7, "{usage:#?}");
        assert!(usage.iter().all(|u| u["key_id"] == ka_id));
        let mut th: Vec<i64> = c
            .events("budget.threshold")
            .iter()
            .map(|t| t["threshold"].as_i64().unwrap())
            .collect();
        // two crossings in one batch may come in two notifications whose order Postgres does
        // not promise: each once is the rule
        th.sort_unstable();
        assert_eq!(th, [80, 100], "each crossing once");
        // the spend after the batch that crossed 80 % (the fifth request may share its batch)
        let t80 = c
            .events("budget.threshold")
            .into_iter()
            .find(|t| t["threshold"] == 80)
            .unwrap();
        let t80 = &t80;
        assert_eq!(
            (t80["key_id"].as_i64(), &t80["budget"]),
            (Some(ka_id), &json!(0.05))
        );
        assert!(
            [json!(0.04), json!(0.05)].contains(&t80["budget_used"]),
            "{t80}"
        );
        assert_eq!(c.events("key.created").len(), 1);
        assert_eq!(c.events("key.revoked").len(), 1);
        assert!(
            c.seen.iter().all(|v| !bob_ids
                .contains(v["data"]["request_id"].as_str().unwrap_or(""))
                && v["data"]["id"] != kb_id
                && v["data"]["key_id"] != kb_id),
            "Alice saw Bob's events: {:#?}",
            c.seen
        );
    }
    let usage = b.events("usage");
    assert_eq!(usage.len(), 2, "{usage:#?}");
    assert!(b.events("budget.threshold").is_empty());
    assert_eq!(b.events("key.created").len(), 1);
    assert_eq!(b.events("key.revoked").len(), 1);
    assert!(
        b.seen.iter().all(
            |v| !alice_ids.contains(v["data"]["request_id"].as_str().unwrap_or(""))
                && v["data"]["id"] != ka_id
                && v["data"]["key_id"] != ka_id
        ),
        "Bob saw Alice's events: {:#?}",
        b.seen
    );

    // a client that leaves is no longer counted
    a2.stop().await;
    let mut n = None;
    for _ in 0..50 {
        n = health(&admin2).await["connected_clients"].as_u64();
        if n == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, Some(0));
    a1.stop().await;
    b.stop().await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_missing_or_bad_token_is_refused(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = node(&pool, &mock).await;
    let admin = admin_url(&gw);
    let token = register(&gw, "carol@example.com").await;
    // a well-formed token of another secret, and a refresh token where an access token goes
    let (_, v) = call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "carol@example.com", "password": "senha-forte-1"})),
    )
    .await;
    let refresh = crate::common::secret(v["refresh_token"].as_str().unwrap());
    let mut forged: Vec<char> = token.chars().collect();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    for (t, via) in [
        (None, "auth"),
        (Some("not-a-token"), "auth"),
        (Some(forged.as_str()), "auth"),
        (Some(forged.as_str()), "header"),
        (Some(forged.as_str()), "query"),
        (Some(refresh.as_str()), "auth"),
    ] {
        let mut c = Client::start(&admin, t, via, "websocket").await;
        let v = c
            .wait_for(45, "a refusal", |v| {
                assert_ne!(v["ev"], "connected", "{t:?} via {via} was admitted");
                v["ev"] == "connect_error"
            })
            .await;
        assert!(
            v["data"].to_string().contains("unauthorized"),
            "{t:?} via {via}: {v}"
        );
        let status = tokio::time::timeout(Duration::from_secs(10), c.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(2), "{t:?} via {via}");
    }
    assert_eq!(health(&admin).await["connected_clients"], 0);
    // the good token, each way, is admitted
    for via in ["auth", "header", "query"] {
        let mut c = Client::start(&admin, Some(&token), via, "websocket").await;
        c.connected().await;
        c.stop().await;
    }
}

/// The usage writer's notifications: a batch far over one notification's 8000 bytes arrives
/// whole, in chunks under the limit; a row whose item could never fit is left out of the feed
/// and still stored (a notification never fails the insert).
#[sqlx::test(migrations = "./migrations")]
async fn a_large_batch_is_notified_in_chunks_under_the_limit(pool: PgPool) {
    use catraca::live::{Kind, parse};
    use catraca::usage::UsageEvent;

    let (org, key) = crate::common::insert_key(&pool, "sk-live-chunks-0123456789").await;
    sqlx::query("UPDATE api_key SET name = $2 WHERE api_key_id = $1")
        .bind(key)
        .bind("ñ".repeat(200))
        .execute(&pool)
        .await
        .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen(catraca::live::CHANNEL).await.unwrap();
    let event = |i: usize, wide: &str| UsageEvent {
        request_id: format!("req_chunk_{i:05}"),
        ts: time::OffsetDateTime::now_utc(),
        key: Some("k".into()),
        organization_id: Some(org),
        api_key_id: Some(key),
        route: "chat.completions".into(),
        model: Some(wide.repeat(200).into()),
        deployment: Some("d".into()),
        provider: Some("p".into()),
        status: 200,
        error: Some(wide.repeat(300)),
        attempts: 1,
        stream: false,
        prompt_tokens: 10,
        completion_tokens: 20,
        usage_reported: true,
        cached_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        cost_upstream_usd_micros: Some(30),
        cost_billed_brl_micros: Some(150),
        latency_ms: 5,
        ttft_ms: None,
        session_id: None,
        client_disconnected: false,
        client_request_id: Some(wide.repeat(200)),
    };
    let mut batch: Vec<UsageEvent> = (0..1000).map(|i| event(i, "é")).collect();
    // 4-byte characters everywhere: over what one notification may hold
    let mut huge = event(1000, "𝄞");
    huge.request_id = format!("req_chunk_huge_{}", "𝄞".repeat(190));
    batch.push(huge);
    catraca::usage::pg::insert(&pool, &batch).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_event")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1001);

    let mut ids = HashSet::new();
    let (mut notes, mut biggest) = (0, 0);
    while ids.len() < 1000 {
        let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of 1000 events notified", ids.len()))
            .unwrap();
        notes += 1;
        biggest = biggest.max(n.payload().len());
        for e in parse(n.payload()) {
            assert_eq!(e.organization_id, org);
            if let Kind::Usage(u) = e.kind {
                assert_eq!(u.model.as_deref(), Some("é".repeat(200).as_str()));
                assert!(ids.insert(u.request_id), "a duplicate");
            }
        }
    }
    // whatever else came (nothing should): the huge row is not among it
    while let Ok(n) = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await {
        let n = n.unwrap();
        biggest = biggest.max(n.payload().len());
        for e in parse(n.payload()) {
            if let Kind::Usage(u) = e.kind {
                ids.insert(u.request_id);
            }
        }
    }
    assert_eq!(ids.len(), 1000);
    assert!(biggest < 8000, "{biggest} bytes");
    assert!(notes > 100, "{notes} notifications");
    assert!(ids.iter().all(|id| !id.starts_with("req_chunk_huge")));
}

/// A node whose LISTEN connection dies says so in its health, connects again, and its sockets
/// get the events that follow.
#[sqlx::test(migrations = "./migrations")]
async fn the_feed_reconnects_after_its_connection_is_killed(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = node(&pool, &mock).await;
    let admin = admin_url(&gw);
    let token = register(&gw, "dora@example.com").await;
    let mut c = Client::start(&admin, Some(&token), "auth", "websocket").await;
    c.connected().await;
    let h = health(&admin).await;
    assert_eq!(
        (h["feed"]["live"].as_bool(), h["feed"]["connects"].as_u64()),
        (Some(true), Some(1)),
        "{h}"
    );

    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND query ILIKE 'LISTEN%catraca_live%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    let mut h = Value::Null;
    for _ in 0..100 {
        h = health(&admin).await;
        if h["feed"]["connects"] == 2 && h["feed"]["live"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (h["feed"]["live"].as_bool(), h["feed"]["connects"].as_u64()),
        (Some(true), Some(2)),
        "{h}"
    );
    assert_eq!(h["status"], "ok");

    let (s, k) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "after"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let v = c
        .wait_for(5, "key.created", |v| v["ev"] == "key.created")
        .await;
    assert_eq!(v["data"]["id"], k["id"]);
    assert!(health(&admin).await["feed"]["last_event_at"].is_string());
    c.stop().await;
}

/// A gateway node with `extra` config lines and environment.
async fn node_with(pool: &PgPool, mock: &Mock, extra: &str, env: &[(&str, &str)]) -> Gateway {
    let url = db_url(pool, None);
    let mut all = vec![
        ("DATABASE_URL", url.as_str()),
        ("CATRACA_JWT_SECRET", SECRET),
    ];
    all.extend_from_slice(env);
    Gateway::start_with_env(&format!("{extra}{}", priced(mock)), &all).await
}

/// A request head (and the start of its body) sent raw to the gateway port, never finished:
/// what came back and after how long.
async fn stalled(gw: &Gateway, head: &str) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let t0 = std::time::Instant::now();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

/// A WebSocket through the gateway's port is not a request body: it outlives
/// `client.body_timeout_ms` (and the per-read body timeout), idle, and still gets its events;
/// a body trickled to an admin route is still cut at that deadline, even one whose request
/// names a WebSocket upgrade.
#[sqlx::test(migrations = "./migrations")]
async fn a_websocket_through_the_gateway_outlives_the_body_timeout(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = node_with(&pool, &mock, "client: {body_timeout_ms: 2000}\n", &[]).await;
    let token = register(&gw, "erin@example.com").await;
    let mut c = Client::start(&gw.url(""), Some(&token), "auth", "websocket").await;
    assert_eq!(c.connected().await["transport"], "websocket");

    // idle (the first Socket.IO ping is 25 s away) well past the 2 s deadline
    tokio::time::sleep(Duration::from_secs(5)).await;
    c.drain();
    assert!(
        c.seen.iter().all(|v| v["ev"] != "disconnected"),
        "cut: {:#?}\n{}",
        c.seen,
        gw.log()
    );
    let (s, k) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "late"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let v = c
        .wait_for(5, "key.created", |v| v["ev"] == "key.created")
        .await;
    assert_eq!(v["data"]["id"], k["id"]);
    assert_eq!(health(&gw.url("")).await["connected_clients"], 1);
    c.drain();
    assert!(c.seen.iter().all(|v| v["ev"] != "disconnected"));

    // a stalled admin body: 408 at the deadline, also when the request asks for an upgrade
    // (only a bodiless GET handshake is let through)
    for extra in ["", "Upgrade: websocket\r\nConnection: Upgrade\r\n"] {
        let (got, took) = stalled(
            &gw,
            &format!(
                "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}Content-Length: 500\r\n\r\n{{\"email\":"
            ),
        )
        .await;
        assert!(got.starts_with("HTTP/1.1 408"), "{extra:?}: {got}");
        assert!(took < Duration::from_secs(5), "{extra:?}: {took:?}");
    }
    c.stop().await;
}

/// Seconds since the epoch, now.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The user, organization and token generation behind an email.
async fn who(pool: &PgPool, email: &str) -> (uuid::Uuid, uuid::Uuid, i32) {
    sqlx::query_as(
        "SELECT u.user_id, m.organization_id, u.token_generation
         FROM app_user u JOIN membership m USING (user_id) WHERE lower(u.email) = $1",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A socket stays only while its token holds: a password change, a disabled user and an
/// expired token each end it (`session.expired`, then a server disconnect) within the recheck
/// period, and nothing reaches it after; a socket of a token that still holds is untouched.
#[sqlx::test(migrations = "./migrations")]
async fn a_socket_is_ended_when_its_token_no_longer_holds(pool: PgPool) {
    const MASTER: &str = "live-master-key-0123456789";
    let mock = Mock::start().await;
    // node 1 rechecks every second; node 2 keeps the default 15 s (its sockets end at `exp`)
    let gw = node_with(
        &pool,
        &mock,
        "",
        &[
            ("CATRACA_LIVE_RECHECK_MS", "1000"),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;
    let gw2 = node(&pool, &mock).await;
    let (admin, admin2) = (admin_url(&gw), admin_url(&gw2));
    let fay = register(&gw, "fay@example.com").await;
    let gil = register(&gw, "gil@example.com").await;
    register(&gw, "hal@example.com").await;
    let (fay_user, fay_org, _) = who(&pool, "fay@example.com").await;
    let (gil_user, gil_org, _) = who(&pool, "gil@example.com").await;
    let (hal_user, hal_org, hal_gen) = who(&pool, "hal@example.com").await;
    // a token of Hal's that lives 4 s
    let issued = unix_now().floor();
    let short = catraca::domain::accounts::Jwt::new(SECRET.as_bytes())
        .issue_ttl(hal_user, hal_org, hal_gen, Duration::from_secs(4))
        .unwrap();

    let mut f = Client::start(&admin, Some(&fay), "auth", "websocket").await;
    let mut g = Client::start(&gw.url(""), Some(&gil), "header", "websocket").await;
    let mut h = Client::start(&admin2, Some(&short), "auth", "websocket").await;
    // Fay's second socket, with the same token, stays until her password changes
    let mut f2 = Client::start(&admin, Some(&fay), "query", "polling").await;
    for c in [&mut f, &mut g, &mut h, &mut f2] {
        c.connected().await;
    }
    // rechecks that pass change nothing
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for c in [&mut f, &mut g, &mut f2] {
        c.drain();
        assert!(
            c.seen.iter().all(|v| v["ev"] == "connected"),
            "{:#?}",
            c.seen
        );
    }

    // Fay's password changes; Gil is disabled by the operator
    let t0 = unix_now();
    catraca::domain::accounts::set_password(
        &pool,
        fay_user,
        &catraca::domain::accounts::Password::parse("outra-senha-forte-2").unwrap(),
    )
    .await
    .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/v1/users/{gil_user}/disable"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for (c, who) in [(&mut f, "fay"), (&mut g, "gil"), (&mut f2, "fay (polling)")] {
        let v = c
            .wait_for(5, "session.expired", |v| v["ev"] == "session.expired")
            .await;
        assert!(
            v["data"]["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{who}: {v}"
        );
        let d = c
            .wait_for(5, "a disconnect", |v| v["ev"] == "disconnected")
            .await;
        assert_eq!(d["reason"], "server disconnect", "{who}: {d}");
        // within the period (1 s) and slack: the client's clock, the same box's
        let after = d["t"].as_f64().unwrap() - t0;
        assert!(after < 4.5, "{who} ended {after:.2} s after the change");
    }

    // Hal's short token: ended at its expiry, long before node 2's 15 s recheck
    let v = h
        .wait_for(10, "session.expired", |v| v["ev"] == "session.expired")
        .await;
    assert!(
        v["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("expired")),
        "{v}"
    );
    h.wait_for(5, "a disconnect", |v| v["ev"] == "disconnected")
        .await;
    // `exp` is `issued` + 4 s (+ 1 s if the second turned meanwhile): never before it
    let at = v["t"].as_f64().unwrap() - issued;
    assert!((3.9..8.0).contains(&at), "ended {at:.2} s after issue");

    // events of their customers now reach nobody of the ended sockets; a fresh login of Fay
    // does get hers (after the ones before it, which come in order)
    let (s, v) = call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "fay@example.com", "password": "outra-senha-forte-2"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let fay_new = crate::common::secret(v["access_token"].as_str().unwrap());
    let mut f3 = Client::start(&admin, Some(&fay_new), "auth", "websocket").await;
    f3.connected().await;
    for org in [gil_org, hal_org, fay_org] {
        sqlx::query(
            "INSERT INTO api_key (organization_id, name, prefix, key_hash)
             VALUES ($1, 'after', 'sk-after', sha256(gen_random_uuid()::text::bytea))",
        )
        .bind(org)
        .execute(&pool)
        .await
        .unwrap();
    }
    f3.wait_for(5, "key.created", |v| v["ev"] == "key.created")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (c, who) in [
        (&mut f, "fay"),
        (&mut g, "gil"),
        (&mut h, "hal"),
        (&mut f2, "fay 2"),
    ] {
        c.drain();
        let end = c
            .seen
            .iter()
            .position(|v| v["ev"] == "disconnected")
            .unwrap();
        // nothing came after the disconnect; an event the server sent just before it may be
        // recorded after it (the client's callbacks run on two threads), so it is told by its
        // own time
        let ended = c.seen[end]["t"].as_f64().unwrap();
        for v in &c.seen[end + 1..] {
            assert!(
                v["t"].as_f64().is_some_and(|t| t <= ended),
                "{who} got more: {:#?}",
                c.seen
            );
        }
        assert!(c.events("key.created").is_empty(), "{who}");
    }
    assert_eq!(health(&admin).await["connected_clients"], 1);
    assert_eq!(health(&admin2).await["connected_clients"], 0);
    // a disabled user's token is refused from the start, as before
    let mut g2 = Client::start(&admin, Some(&gil), "auth", "websocket").await;
    g2.wait_for(45, "a refusal", |v| v["ev"] == "connect_error")
        .await;
    f3.stop().await;
}
