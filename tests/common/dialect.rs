//! Helpers shared by the provider-dialect tests (`tests/dialect_{anthropic,azure,gemini,
//! bedrock}.rs`) and the inbound-surface tests that run an official Python SDK: the request
//! pieces every dialect is driven with, reading the client's SSE stream (timed or not), the
//! checks every translated stream must pass, failover both ways, and running an SDK script.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Gateway, KEY, Mock, chat, text};

/// One `weather` function tool, OpenAI's shape.
pub fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "description": "the weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

/// A 1×1 PNG as a data URL.
pub const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// The JSON `data:` events of an OpenAI SSE stream (`[DONE]` left out).
pub fn sse_events(t: &str) -> Vec<Value> {
    t.split("\n\n")
        .filter(|e| e.starts_with("data: {"))
        .map(|e| serde_json::from_str(&e[6..]).unwrap())
        .collect()
}

/// Reads a streamed answer to its end: the whole text, when (since `t0`) the first translated
/// text (`"content":"Olá"`) arrived, and when the stream ended.
pub async fn timed_stream(r: reqwest::Response, t0: Instant) -> (String, Duration, Duration) {
    let mut s = r.bytes_stream();
    let mut all = String::new();
    let mut first_text: Option<Duration> = None;
    while let Some(c) = s.next().await {
        all.push_str(std::str::from_utf8(&c.unwrap()).unwrap());
        if first_text.is_none() && all.contains("\"content\":\"Olá\"") {
            first_text = Some(t0.elapsed());
        }
    }
    let end = t0.elapsed();
    (all, first_text.expect("no first chunk"), end)
}

/// The checks every translated chat stream of the mock's five-word answer passes: the text
/// whole, OpenAI's chunk object with the public `model`, one `chatcmpl-` id throughout, the
/// role first, and exactly one `finish_reason`, `stop`.
pub fn assert_translated_stream(events: &[Value], model: &str) {
    let said: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(said, "Olá do mock da catraca");
    assert!(
        events
            .iter()
            .all(|e| e["model"] == model && e["object"] == "chat.completion.chunk")
    );
    let id = events[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && events.iter().all(|e| e["id"] == id));
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let fin: Vec<&Value> = events
        .iter()
        .filter(|e| !e["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0]["choices"][0]["finish_reason"], "stop");
}

/// With `upstream` failing with each of `statuses`, `model` (that dialect's deployment first,
/// the OpenAI mock's second) is answered by the OpenAI deployment. Leaves the last failure set.
pub async fn assert_fails_over_to_openai(
    gw: &Gateway,
    upstream: &Mock,
    model: &str,
    statuses: &[u16],
    msg: &Value,
) {
    for &status in statuses {
        upstream
            .set(json!({"fail_status": status, "fail_rate": 1.0}))
            .await;
        let r = chat(gw, KEY, json!({"model": model, "messages": msg}), &[]).await;
        assert_eq!(r.status, 200, "{status}: {:?}", r.body);
        assert_eq!(r.body["model"], "openai-up", "{status}");
    }
}

/// `model` (the failing OpenAI deployment first, the dialect's second) answers whole and
/// streamed from the dialect, translated, under its public name.
pub async fn assert_fails_over_from_openai(gw: &Gateway, model: &str, msg: &Value) {
    let r = chat(gw, KEY, json!({"model": model, "messages": msg}), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["model"], model);
    assert_eq!(r.body["choices"][0]["message"]["content"], "Olá do mock da");
    let t = text(
        gw.post_with(
            "/v1/chat/completions",
            json!({"model": model, "stream": true, "messages": msg}),
            &[],
        )
        .await,
    )
    .await;
    assert!(
        t.contains("\"content\":\"Olá\"") && t.ends_with("data: [DONE]\n\n"),
        "{t}"
    );
}

/// The Python interpreter for the SDK checks (`CATRACA_PYTHON`, else `python3`), after making
/// sure it can import `package`.
pub fn sdk_python(package: &str) -> String {
    let python = std::env::var("CATRACA_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", &format!("import {package}")])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the {package} package is missing for {python}: run scripts/test.sh, or pip install -r tests/sdk/requirements.txt"
    );
    python
}

/// Runs `tests/sdk/<script>` with `python` against `base_url` with the test key and `env`;
/// asserts it exited successfully and returns its stdout.
pub async fn run_sdk_script(
    python: &str,
    script: &str,
    base_url: &str,
    env: &[(&str, &str)],
) -> String {
    let script = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(script)
        .env("CATRACA_BASE_URL", base_url)
        .env("CATRACA_KEY", KEY)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "SDK check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The checks of a whole answer that is one tool call: OpenAI's shape, the public `model`, the
/// gateway's id, the `weather` call with `id` and these arguments, `finish_reason` tool_calls.
/// Returns the call.
pub fn assert_tool_call_answer<'a>(b: &'a Value, model: &str, id: &str, args: Value) -> &'a Value {
    assert_eq!(b["object"], "chat.completion");
    assert_eq!(b["model"], model);
    assert!(b["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let call = &b["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], id);
    assert_eq!(call["function"]["name"], "weather");
    let got: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(got, args);
    assert_eq!(b["choices"][0]["finish_reason"], "tool_calls");
    call
}

/// Streams `model` the question "weather?" with `tools`: the client's text and its events.
pub async fn stream_with_tools(gw: &Gateway, model: &str, tools: Value) -> (String, Vec<Value>) {
    let t = text(
        gw.post_with(
            "/v1/chat/completions",
            json!({"model": model, "stream": true, "tools": tools,
                "messages": [{"role": "user", "content": "weather?"}]}),
            &[],
        )
        .await,
    )
    .await;
    let events = sse_events(&t);
    (t, events)
}

/// The first tool-call delta of each chunk that has one.
pub fn tool_call_deltas(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"].get(0))
        .collect()
}
