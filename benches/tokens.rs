//! Cost of the prompt estimate the gateway makes before a call when a token limit or a money
//! reservation applies: parse the body and count its text with the model's tiktoken encoding.
//!
//! `cargo bench --bench tokens`. Prints the median time per estimate for a short chat, a 2 KB
//! chat with a system prompt and history, and a 20 KB document prompt, for o200k_base and
//! cl100k_base. Compare with the gateway's whole request time in `loadtests/README.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

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
}
