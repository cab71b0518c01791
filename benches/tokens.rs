//! Cost of the prompt estimate the gateway makes before a call when a token limit or a money
//! reservation applies: parse the body and count its text with the model's tiktoken encoding.
//!
//! `cargo bench --bench tokens`. Prints the median time per estimate for a short chat, a 2 KB
//! chat with a system prompt and history, and a 20 KB document prompt, for o200k_base and
//! cl100k_base. Compare with the gateway's whole request time in `loadtests/README.md`.
//!
//! Then the response side: the SSE scanner over a 200-chunk stream as an OpenAI upstream sends
//! it (every stream pays this; it keeps the chunks by reference in case no usage comes), and,
//! paid only when the upstream reported no usage, extracting the text and counting it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use catraca::sse::SseScanner;
use catraca::tokens::{Encoding, estimate};
use serde_json::json;

fn body(n_turns: usize, words_per_turn: usize) -> Vec<u8> {
    let text = |i: usize| {
        (0..words_per_turn)
            .map(|w| {
                [
                    "olá", "gateway", "tokens", "preço", "reais", "modelo", "chave", "limite",
                ][(i + w) % 8]
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut messages = vec![
        json!({"role": "system", "content": "Você é um assistente útil que responde em português do Brasil."}),
    ];
    for i in 0..n_turns {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": text(i)}));
    }
    serde_json::to_vec(&json!({"model": "gpt-4o-mini", "max_tokens": 256, "messages": messages}))
        .unwrap()
}

fn median_per_call(b: &[u8], enc: Encoding) -> (Duration, u64) {
    let mut samples = Vec::new();
    let mut tokens = 0;
    for _ in 0..31 {
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            tokens = std::hint::black_box(estimate(std::hint::black_box(b), enc)).prompt;
        }
        samples.push(t.elapsed() / n);
    }
    samples.sort();
    (samples[samples.len() / 2], tokens)
}

fn main() {
    let cases = [
        ("short chat", body(1, 12)),
        ("2 KB chat", body(8, 30)),
        ("20 KB prompt", body(2, 1500)),
    ];
    for enc in [Encoding::O200k, Encoding::Cl100k] {
        enc.preload();
        for (name, b) in &cases {
            let (t, tokens) = median_per_call(b, enc);
            println!(
                "{:<12} {:<13} {:>6} bytes {:>5} tokens  {:>8.1} µs/estimate",
                enc.as_str(),
                name,
                b.len(),
                tokens,
                t.as_secs_f64() * 1e6
            );
        }
    }

    // the response side
    let words = [
        "Olá", " do", " gateway", " em", " São", " Paulo", ",", " preço",
    ];
    let events: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000u64,
                    "model": "gpt-4o-mini", "system_fingerprint": "fp_1",
                    "choices": [{"index": 0, "delta": {"content": words[i % 8]}, "logprobs": null, "finish_reason": null}]})
            )
        })
        .collect();
    let chunks: Vec<Bytes> = events.iter().map(|e| Bytes::from(e.clone())).collect();
    let scan = median(|| {
        let mut s = SseScanner::new(false);
        for c in &chunks {
            let _ = std::hint::black_box(s.feed(c.clone()));
        }
        s.events
    });
    let extract = median(|| {
        let mut s = SseScanner::new(false);
        for c in &chunks {
            let _ = std::hint::black_box(s.feed(c.clone()));
        }
        s.take_text().bytes() as u64
    }) - scan;
    let mut s = SseScanner::new(false);
    for c in &chunks {
        let _ = s.feed(c.clone());
    }
    let text = s.take_text();
    let count = median(|| text.tokens(Encoding::O200k));
    println!(
        "SSE 200 chunks ({} bytes): scan {:.1} µs/stream; only without usage: extract text {:.1} µs, count its {} tokens (o200k) {:.1} µs",
        events.iter().map(String::len).sum::<usize>(),
        scan.as_secs_f64() * 1e6,
        extract.as_secs_f64() * 1e6,
        text.tokens(Encoding::O200k),
        count.as_secs_f64() * 1e6
    );
}

fn median(mut f: impl FnMut() -> u64) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..31 {
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(f());
        }
        samples.push(t.elapsed() / n);
    }
    samples.sort();
    samples[samples.len() / 2]
}
