//! Token counting when the upstream reports no usage, and audio priced by the seconds the
//! upstream reports (#5).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::*;
use catraca::tokens::{Encoding, estimate};

/// A chat model counted with o200k_base at $1/$2 per 1M tokens, and an audio model at $0.0001 a
/// second; FX 5, markup 1.
fn config(mock: &Mock, key: &str) -> String {
    format!(
        "{}pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}
providers:
  - {{name: p, base_url: \"{}\", forward_headers: [x-mock-*]}}
deployments:
  - {{name: dc, provider: p, model: up}}
  - {{name: da, provider: p, model: whisper}}
models:
  - {{name: m, tokenizer: o200k_base, input_usd_per_1m: \"1\", output_usd_per_1m: \"2\", deployments: [dc]}}
  - {{name: a, category: audio, usd_per_audio_second: \"0.0001\", deployments: [da]}}
",
        key_line("tpm", key, "tpm: 100000"),
        mock.base()
    )
}

/// The text of an SSE chat answer, joined from its deltas.
fn streamed_text(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_answers_without_usage_are_counted_with_the_models_tokenizer() {
    let mock = Mock::start().await;
    let key = fresh_key("count");
    let gw = Gateway::start(&config(&mock, &key)).await;
    let req = json!({"model": "m", "stream": true, "max_tokens": 500,
        "messages": [{"role": "user", "content": "Conte uma história sobre a catraca de São Paulo"}]});
    let prompt = estimate(req.to_string().as_bytes(), Encoding::O200k).prompt;
    // both requests below must fall in one tokens-per-minute window
    room_in_window(60, Duration::from_secs(10)).await;

    // a stream of 40 chunks from an upstream that ignores stream_options
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("x-mock-no-usage", "1")
        .header("x-mock-chunks", "40")
        .body(req.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-ratelimit-remaining"],
        (100000 - prompt - 500).to_string()
    );
    let mut body = String::new();
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        body.push_str(std::str::from_utf8(&c.unwrap()).unwrap());
    }
    let text = streamed_text(&body);
    assert!(text.starts_with("Olá do mock"), "{text}");
    let completion = Encoding::O200k.count(&text);
    assert!(
        completion > 40,
        "40 words, some of several tokens: {completion}"
    );

    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["usage_reported"], false);
    assert_eq!(ev[0]["prompt_tokens"], prompt);
    assert_eq!(ev[0]["completion_tokens"], completion);
    // exact price of the counted tokens: (prompt × 1 + completion × 2) µUSD
    assert_eq!(ev[0]["cost_upstream_usd_micros"], prompt + 2 * completion);
    assert_eq!(
        ev[0]["cost_billed_brl_micros"],
        5 * (prompt + 2 * completion)
    );

    // the tokens-per-minute window was corrected to the counted tokens: the next request sees
    // limit − counted − its own estimate
    let plain = json!({"model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": "oi"}]});
    let plain_prompt = estimate(plain.to_string().as_bytes(), Encoding::O200k).prompt;
    let want = (100000 - prompt - completion - plain_prompt - 10).to_string();
    // (the usage event above is recorded after the correction)
    let r = chat(&gw, &key, plain.clone(), &[("x-mock-no-usage", "1")]).await;
    assert_eq!(r.status, 200);
    let got = r.h("x-ratelimit-remaining").unwrap();
    assert_eq!(got, want);

    // a whole answer without usage: the message text is counted
    let ev = gw.wait_events(2).await;
    let answer_text = "Olá do mock da"; // the mock's 4 words
    assert_eq!(ev[1]["usage_reported"], false);
    assert_eq!(ev[1]["prompt_tokens"], plain_prompt);
    assert_eq!(
        ev[1]["completion_tokens"],
        Encoding::O200k.count(answer_text)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_answer_without_usage_counts_nothing() {
    let mock = Mock::start().await;
    let key = fresh_key("count-fail");
    let gw = Gateway::start(&config(&mock, &key)).await;
    let r = chat(
        &gw,
        &key,
        json!({"model": "m", "messages": [{"role": "user", "content": "oi"}]}),
        &[("x-mock-status", "400")],
    )
    .await;
    assert_eq!(r.status, 400);
    let ev = gw.wait_events(1).await;
    assert_eq!(
        (
            ev[0]["prompt_tokens"].as_u64(),
            ev[0]["completion_tokens"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(ev[0]["cost_upstream_usd_micros"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcriptions_are_priced_by_the_seconds_the_upstream_reports() {
    let mock = Mock::start().await;
    let key = fresh_key("audio");
    let gw = Gateway::start(&config(&mock, &key)).await;
    let boundary = "b0undary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF....\r\n--{boundary}--\r\n"
    );
    for secs in ["12.5", "0.2"] {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/audio/transcriptions?model=a"))
            .bearer_auth(&key)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("x-mock-audio-seconds", secs)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ev = gw.wait_events(2).await;
    // usage.seconds (13 and 1, whole seconds as OpenAI bills them) × $0.0001
    assert_eq!(ev[0]["cost_upstream_usd_micros"], 1300);
    assert_eq!(ev[0]["cost_billed_brl_micros"], 6500);
    assert_eq!(ev[1]["cost_upstream_usd_micros"], 100);
}
