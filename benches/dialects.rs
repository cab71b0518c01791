//! Translation cost per stream chunk, one bench per dialect decoder: a provider's stream of
//! 200 text events (as it sends them) fed in network-sized pieces to the decoder, which writes
//! OpenAI chunks. Prints the median µs per translated chunk over 31 runs.
//!
//! `cargo bench --bench dialects`. Compare with the OpenAI pass-through, which translates
//! nothing (its SSE scan is in `benches/tokens.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use catraca::dialect::{Meta, StreamDecoder};

const EVENTS: usize = 200;

fn meta() -> Meta {
    Meta {
        id: "chatcmpl-bench".into(),
        model: Arc::from("bench-model"),
        created: 1_700_000_000,
        include_usage: true,
        base64: false,
    }
}

/// Median time per translated chunk of `stream`, fed in 1400-byte pieces to fresh decoders.
fn per_chunk(stream: &[u8], make: &dyn Fn() -> Box<dyn StreamDecoder>) -> Duration {
    let mut samples = Vec::new();
    let mut out = BytesMut::with_capacity(stream.len() * 2);
    for _ in 0..31 {
        let t = Instant::now();
        for _ in 0..10 {
            let mut d = make();
            out.clear();
            for piece in stream.chunks(1400) {
                d.feed(std::hint::black_box(piece), &mut out).unwrap();
            }
            d.finish(&mut out).unwrap();
            std::hint::black_box(d.usage());
        }
        samples.push(t.elapsed() / (10 * EVENTS as u32));
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// Gemini's `streamGenerateContent?alt=sse`: one text part per event, usage on each, the last
/// with `finishReason`.
fn gemini_stream() -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..EVENTS {
        let fin = if i + 1 == EVENTS {
            r#","finishReason":"STOP""#
        } else {
            ""
        };
        s.extend_from_slice(
            format!(
                "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \" palavra{i} do mock\"}}],\"role\": \"model\"}}{fin},\"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": 12,\"candidatesTokenCount\": {i},\"totalTokenCount\": {}}},\"modelVersion\": \"gemini-2.0-flash\"}}\r\n\r\n",
                12 + i
            )
            .as_bytes(),
        );
    }
    s
}

/// Anthropic's Messages SSE stream as it sends it: message_start (usage), a text block with
/// one `content_block_delta` per piece (a `ping` early), the block's stop, message_delta
/// (stop_reason, output tokens) and message_stop.
fn anthropic_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n");
    s.extend_from_slice(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n");
    for i in 0..EVENTS {
        s.extend_from_slice(
            format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" palavra{i} do mock\"}}}}\n\n"
            )
            .as_bytes(),
        );
    }
    s.extend_from_slice(b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":200}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s
}

/// Bedrock's ConverseStream: binary event-stream frames (prelude, headers, JSON payload,
/// CRCs), messageStart, one contentBlockDelta per text piece, then contentBlockStop,
/// messageStop and metadata (usage).
fn bedrock_stream() -> Vec<u8> {
    use catraca::dialect::bedrock::encode_frame;
    let mut s = encode_frame(
        "event",
        "messageStart",
        br#"{"p":"abcd","role":"assistant"}"#,
    );
    for i in 0..EVENTS {
        s.extend(encode_frame(
            "event",
            "contentBlockDelta",
            format!(r#"{{"contentBlockIndex":0,"delta":{{"text":" palavra{i} do mock"}},"p":"abcdefgh"}}"#)
                .as_bytes(),
        ));
    }
    s.extend(encode_frame(
        "event",
        "contentBlockStop",
        br#"{"contentBlockIndex":0}"#,
    ));
    s.extend(encode_frame(
        "event",
        "messageStop",
        br#"{"stopReason":"end_turn"}"#,
    ));
    s.extend(encode_frame(
        "event",
        "metadata",
        br#"{"usage":{"inputTokens":12,"outputTokens":200,"totalTokens":212},"metrics":{"latencyMs":5}}"#,
    ));
    s
}

/// The other direction (`/v1/messages` inbound): OpenAI chunks as an OpenAI provider sends
/// them (200 text deltas, the finish chunk, the usage chunk, `[DONE]`) re-encoded as
/// Anthropic's events, fed in 1400-byte pieces.
fn messages_inbound() -> Duration {
    let mut stream = Vec::new();
    for i in 0..EVENTS {
        stream.extend_from_slice(
            format!(
                "data: {{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_x\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" palavra{i} do mock\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
            )
            .as_bytes(),
        );
    }
    stream.extend_from_slice(b"data: {\"id\":\"chatcmpl-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"chatcmpl-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":200,\"total_tokens\":212}}\n\ndata: [DONE]\n\n");
    let model: Arc<str> = Arc::from("bench-model");
    let mut samples = Vec::new();
    let mut out = BytesMut::with_capacity(stream.len() * 2);
    for _ in 0..31 {
        let t = Instant::now();
        for _ in 0..10 {
            let mut s = catraca::dialect::messages::Stream::new("msg_bench".into(), model.clone());
            out.clear();
            for piece in stream.chunks(1400) {
                s.feed(std::hint::black_box(piece), None, &mut out);
            }
            assert!(s.finished);
        }
        samples.push(t.elapsed() / (10 * EVENTS as u32));
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// Bedrock's per-request work outside the stream: the Converse body from an OpenAI request,
/// its SigV4 signature, and a whole answer rendered as OpenAI's (median µs of each).
fn bedrock_request_costs() {
    use catraca::dialect::bedrock::{Aws, Credentials, chat_answer, chat_request, sign};
    let req: serde_json::Value = serde_json::from_str(
        r#"{"model":"m","messages":[{"role":"system","content":"Você é um assistente útil."},{"role":"user","content":"Explique em uma frase o que é uma catraca."}]}"#,
    )
    .unwrap();
    let aws = Aws {
        region: "us-east-1".into(),
        credentials: Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        },
    };
    let body = chat_request(&req).unwrap();
    let path = catraca::dialect::bedrock::path(
        catraca::dialect::Op::Chat,
        "anthropic.claude-3-haiku-20240307-v1:0",
        false,
    );
    let answer = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Ola do mock da"}]}},"stopReason":"end_turn","usage":{"inputTokens":21,"outputTokens":4,"totalTokens":25},"metrics":{"latencyMs":1}}"#;
    let m = meta();
    let median = |f: &dyn Fn()| {
        let mut samples = Vec::new();
        for _ in 0..31 {
            let t = Instant::now();
            for _ in 0..200 {
                f();
            }
            samples.push(t.elapsed() / 200);
        }
        samples.sort();
        samples[15].as_nanos() as f64 / 1000.0
    };
    let tr = median(&|| {
        std::hint::black_box(chat_request(std::hint::black_box(&req)).unwrap());
    });
    let sg = median(&|| {
        let now = std::time::SystemTime::now();
        std::hint::black_box(sign(
            &aws,
            "POST",
            "bedrock-runtime.us-east-1.amazonaws.com",
            &path,
            &body,
            now,
        ));
    });
    let an = median(&|| {
        std::hint::black_box(chat_answer(std::hint::black_box(answer), &m).unwrap());
    });
    println!(
        "bedrock   {tr:>7.2} µs to translate a request, {sg:.2} µs to sign it (SigV4), {an:.2} µs to render a whole answer"
    );
}

fn main() {
    let a = anthropic_stream();
    let t = per_chunk(&a, &|| {
        Box::new(catraca::dialect::anthropic::Decoder::new(meta()))
    });
    println!(
        "anthropic {:>7.2} µs per translated chunk ({} events, {} bytes)",
        t.as_nanos() as f64 / 1000.0,
        EVENTS,
        a.len()
    );
    let b = bedrock_stream();
    let t = per_chunk(&b, &|| {
        Box::new(catraca::dialect::bedrock::Decoder::new(meta()))
    });
    println!(
        "bedrock   {:>7.2} µs per translated chunk ({} frames, {} bytes)",
        t.as_nanos() as f64 / 1000.0,
        EVENTS,
        b.len()
    );
    bedrock_request_costs();
    let g = gemini_stream();
    let t = per_chunk(&g, &|| {
        Box::new(catraca::dialect::gemini::Decoder::new(meta()))
    });
    println!(
        "gemini    {:>7.2} µs per translated chunk ({} events, {} bytes)",
        t.as_nanos() as f64 / 1000.0,
        EVENTS,
        g.len()
    );
    let t = messages_inbound();
    println!(
        "messages  {:>7.2} µs per re-encoded chunk (/v1/messages inbound, OpenAI chunks → Anthropic events, {} events)",
        t.as_nanos() as f64 / 1000.0,
        EVENTS
    );
}
