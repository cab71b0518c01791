//! Incremental scanner for OpenAI-style server-sent events.
//!
//! The gateway never collects a stream: each upstream chunk goes to the client as it arrives.
//! This scanner looks at the chunks on their way through to find the final `usage` object and,
//! when the gateway injected `stream_options.include_usage` on the client's behalf, to drop the
//! extra usage-only event the client did not ask for. Only an event split across two chunks is
//! copied (into `tail`); everything else is forwarded as slices of the chunk it came in.
//!
//! It also keeps the stream's chunks (shared `Bytes`, no copy, up to [`TEXT_KEEP`] bytes; past
//! that it extracts the text as events pass), so that a stream whose upstream reports no usage
//! can still be counted with the model's tokenizer when it ends: the text is only extracted then,
//! so streams with usage pay nothing but a reference count per chunk.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

/// Token counts as the upstream reported them. Read from OpenAI's `usage` object:
/// `prompt_tokens_details.cached_tokens` and `completion_tokens_details.reasoning_tokens` are
/// the cached and reasoning parts (the Responses API's `input_tokens`, `output_tokens` and
/// their `…_details` are read the same way); a part larger than its whole is clamped to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "WireUsage")]
pub struct Usage {
    /// Input tokens, all of them: cached reads and cache writes included (OpenAI's sense).
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// Of `prompt_tokens`, read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Of `prompt_tokens`, written to the provider's prompt cache (Anthropic's cache writes).
    pub cache_write_tokens: u64,
    /// Of `completion_tokens`, spent reasoning.
    pub reasoning_tokens: u64,
}

/// OpenAI's `usage` object as it is on the wire.
#[derive(Deserialize)]
struct WireUsage {
    /// (`input_tokens` in the Responses API's usage.)
    #[serde(default, alias = "input_tokens")]
    prompt_tokens: u64,
    /// (`output_tokens` in the Responses API's usage.)
    #[serde(default, alias = "output_tokens")]
    completion_tokens: u64,
    #[serde(default, alias = "input_tokens_details")]
    prompt_tokens_details: Option<WireDetails>,
    #[serde(default, alias = "output_tokens_details")]
    completion_tokens_details: Option<WireDetails>,
}

#[derive(Deserialize, Default)]
struct WireDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Usage {
        let cached = w
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        let reasoning = w
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        Usage {
            prompt_tokens: w.prompt_tokens,
            completion_tokens: w.completion_tokens,
            cached_tokens: cached.min(w.prompt_tokens),
            cache_write_tokens: 0,
            reasoning_tokens: reasoning.min(w.completion_tokens),
        }
    }
}

/// Most tokens an upstream may report for either count of one request: 50 times the largest
/// context window on offer. A report past it is not believed (nor stored, nor billed): the
/// request is counted with the model's tokenizer instead, and the report is logged.
pub const MAX_REPORTED_TOKENS: u64 = 100_000_000;

/// Most audio one transcription may report, milliseconds (24 hours); past it the report is
/// not believed.
pub const MAX_AUDIO_MS: u64 = 24 * 3600 * 1000;

impl Usage {
    /// Whether both counts are within [`MAX_REPORTED_TOKENS`].
    pub fn plausible(&self) -> bool {
        self.prompt_tokens <= MAX_REPORTED_TOKENS && self.completion_tokens <= MAX_REPORTED_TOKENS
    }
}

/// Scanner state for one upstream attempt.
#[derive(Debug, Default)]
pub struct SseScanner {
    tail: BytesMut,
    hide_usage: bool,
    /// The last usage object seen.
    pub usage: Option<Usage>,
    /// `data: [DONE]` was seen.
    pub done: bool,
    /// Complete events seen.
    pub events: u64,
    /// Chunks seen, while they total at most [`TEXT_KEEP`] bytes.
    kept: Vec<Bytes>,
    kept_bytes: usize,
    /// Past the cap: text extracted from each event as it passes.
    eager: bool,
    text: Text,
    /// Cap of one pending event, bytes (`0` = [`MAX_EVENT_BYTES`]).
    max_event: usize,
}

/// Default cap of one SSE event (config `max_sse_event_bytes`).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// An upstream event grew past its cap without ending; holds the bytes pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge(pub usize);

/// Most generated text kept per request for counting; beyond it, bytes are counted instead
/// (four per token).
pub const TEXT_KEEP: usize = 1 << 20;

/// Text an upstream generated: message content, reasoning, refusals, tool-call names and
/// arguments, legacy completion text.
#[derive(Debug, Default)]
pub struct Text {
    kept: String,
    overflow_bytes: usize,
}

impl Text {
    fn push(&mut self, s: &str) {
        let room = TEXT_KEEP.saturating_sub(self.kept.len());
        if s.len() <= room {
            self.kept.push_str(s);
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.kept.push_str(&s[..cut]);
            self.overflow_bytes += s.len() - cut;
        }
    }

    /// Bytes of text seen.
    pub fn bytes(&self) -> usize {
        self.kept.len() + self.overflow_bytes
    }

    /// Count bytes that could not be read as text (a body cut before its end).
    pub fn add_unread(&mut self, bytes: usize) {
        self.overflow_bytes += bytes;
    }

    /// Tokens of the text in `enc`.
    pub fn tokens(&self, enc: crate::tokens::Encoding) -> u64 {
        enc.count(&self.kept) + self.overflow_bytes.div_ceil(4) as u64
    }
}

#[derive(Deserialize)]
struct TextProbe<'a> {
    #[serde(borrow, default)]
    choices: Vec<TextChoice<'a>>,
}

#[derive(Deserialize)]
struct TextChoice<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<TextMessage<'a>>,
    #[serde(borrow, default)]
    message: Option<TextMessage<'a>>,
}

#[derive(Deserialize)]
struct TextMessage<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<TextToolCall<'a>>>,
}

#[derive(Deserialize)]
struct TextToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<TextFunction<'a>>,
}

#[derive(Deserialize)]
struct TextFunction<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// Add the generated text of one completion JSON (a stream chunk or a whole non-stream
/// answer) to `out`. Returns false when `json` is not such an object.
pub fn collect_text(json: &[u8], out: &mut Text) -> bool {
    let Ok(p) = serde_json::from_slice::<TextProbe>(json) else {
        return false;
    };
    for c in &p.choices {
        if let Some(t) = &c.text {
            out.push(t);
        }
        for m in [&c.delta, &c.message].into_iter().flatten() {
            for t in [&m.content, &m.reasoning_content, &m.refusal]
                .into_iter()
                .flatten()
            {
                out.push(t);
            }
            for f in m
                .tool_calls
                .iter()
                .flatten()
                .filter_map(|t| t.function.as_ref())
            {
                for t in [&f.name, &f.arguments].into_iter().flatten() {
                    out.push(t);
                }
            }
        }
    }
    true
}

/// Seconds of audio an upstream says it transcribed (`usage.seconds`, else `duration`), in
/// milliseconds, read from the decimal text of the number (no binary float on the way).
pub fn find_audio_ms(body: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        usage: Option<AudioUsage>,
        #[serde(default)]
        duration: Option<serde_json::Number>,
    }
    #[derive(Deserialize)]
    struct AudioUsage {
        #[serde(default)]
        seconds: Option<serde_json::Number>,
    }
    let p: Probe = serde_json::from_slice(body).ok()?;
    let secs = p.usage.and_then(|u| u.seconds).or(p.duration)?;
    seconds_to_ms(&secs.to_string())
}

/// `"12.3456"` seconds → 12346 ms (half up); exponent forms go through `f64`.
fn seconds_to_ms(s: &str) -> Option<u64> {
    if s.starts_with('-') {
        return None;
    }
    if s.contains(['e', 'E']) {
        let v: f64 = s.parse().ok()?;
        return Some((v * 1000.0).round() as u64);
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: u64 = int.parse().ok()?;
    let digit = |i: usize| frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms = int.checked_mul(1000)? + digit(0) * 100 + digit(1) * 10 + digit(2);
    Some(ms + u64::from(digit(3) >= 5))
}

#[derive(Deserialize)]
struct ChunkProbe {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<Usage>,
    /// The Responses API's events carry the response object; `response.completed`'s has the
    /// usage (earlier ones `"usage": null`).
    #[serde(default)]
    response: Option<ResponseProbe>,
}

#[derive(Deserialize)]
struct ResponseProbe {
    #[serde(default)]
    usage: Option<Usage>,
}

impl SseScanner {
    /// `hide_usage`: drop usage-only events (the client did not ask for them).
    pub fn new(hide_usage: bool) -> Self {
        SseScanner {
            hide_usage,
            ..Default::default()
        }
    }

    /// The text generated so far (extracted from the kept chunks on first call).
    pub fn take_text(&mut self) -> Text {
        self.extract_kept();
        std::mem::take(&mut self.text)
    }

    /// Move the text of the kept chunks' complete events into `text` and drop the chunks (an
    /// incomplete last event is still in `tail` and will be scanned when it completes).
    fn extract_kept(&mut self) {
        if self.kept.is_empty() {
            return;
        }
        let mut all = Vec::with_capacity(self.kept_bytes);
        for c in self.kept.drain(..) {
            all.extend_from_slice(&c);
        }
        self.kept_bytes = 0;
        let mut pos = 0;
        while let Some(end) = event_end(&all[pos..]) {
            for_each_data(&all[pos..pos + end], |d| {
                collect_text(d, &mut self.text);
            });
            pos += end;
        }
    }

    fn retain(&mut self, chunk: &Bytes) {
        if self.eager {
            return;
        }
        if self.kept_bytes + chunk.len() <= TEXT_KEEP {
            self.kept_bytes += chunk.len();
            self.kept.push(chunk.clone());
        } else {
            // too much to hold: extract what is held, then extract as events pass
            self.extract_kept();
            self.eager = true;
        }
    }

    /// Most bytes one event may hold before its blank line (`0` = [`MAX_EVENT_BYTES`]).
    pub fn with_max_event(mut self, bytes: usize) -> Self {
        self.max_event = bytes;
        self
    }

    /// Feed one upstream chunk; returns the bytes to send to the client now, or
    /// [`EventTooLarge`] when an event grows past its cap without ending (the stream must end
    /// there). Each byte is searched for an event end at most twice, and an incomplete event
    /// is only appended to, never copied again, so a stream costs time linear in its length.
    pub fn feed(&mut self, chunk: Bytes) -> Result<Bytes, EventTooLarge> {
        self.retain(&chunk);
        let cap = if self.max_event == 0 {
            MAX_EVENT_BYTES
        } else {
            self.max_event
        };
        if !self.tail.is_empty() {
            // `tail` holds no complete event, so the first end can only be near its old end
            let from = self.tail.len().saturating_sub(2);
            self.tail.extend_from_slice(&chunk);
            if event_end(&self.tail[from..]).is_none() {
                if self.tail.len() > cap {
                    return Err(EventTooLarge(self.tail.len()));
                }
                return Ok(if self.hide_usage { Bytes::new() } else { chunk });
            }
        }
        if !self.hide_usage {
            // Pass the chunk through untouched; scan a joined copy only when an event straddles.
            if self.tail.is_empty() {
                let consumed = self.scan(&chunk, None);
                if consumed < chunk.len() {
                    self.tail.extend_from_slice(&chunk[consumed..]);
                }
            } else {
                let joined = self.tail.split().freeze();
                let consumed = self.scan(&joined, None);
                self.tail.extend_from_slice(&joined[consumed..]);
            }
            if self.tail.len() > cap {
                return Err(EventTooLarge(self.tail.len()));
            }
            return Ok(chunk);
        }
        let data = if self.tail.is_empty() {
            chunk
        } else {
            self.tail.split().freeze()
        };
        let mut out = BytesMut::new();
        let mut dropped = false;
        let consumed = self.scan(&data, Some((&mut out, &mut dropped)));
        if consumed < data.len() {
            self.tail.extend_from_slice(&data[consumed..]);
            if self.tail.len() > cap {
                return Err(EventTooLarge(self.tail.len()));
            }
        }
        Ok(if dropped {
            out.freeze()
        } else {
            data.slice(..consumed)
        })
    }

    /// End of stream: whatever incomplete event is left goes out as it is.
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.tail.is_empty() || !self.hide_usage {
            self.tail.clear();
            return None;
        }
        Some(self.tail.split().freeze())
    }

    /// Scan complete events of `data`; returns how many bytes they cover. With `out`, kept
    /// events are appended to it (only used once something was dropped).
    fn scan(&mut self, data: &Bytes, mut out: Option<(&mut BytesMut, &mut bool)>) -> usize {
        let mut pos = 0;
        while let Some(end) = event_end(&data[pos..]) {
            let ev = &data[pos..pos + end];
            let keep = self.on_event(ev);
            if let Some((buf, dropped)) = out.as_mut() {
                if !keep && !**dropped {
                    // first drop: copy what was kept so far
                    buf.extend_from_slice(&data[..pos]);
                    **dropped = true;
                } else if keep && **dropped {
                    buf.extend_from_slice(ev);
                }
            }
            pos += end;
        }
        pos
    }

    /// Look at one complete event; returns whether the client should get it.
    fn on_event(&mut self, ev: &[u8]) -> bool {
        self.events += 1;
        let mut keep = true;
        for line in ev.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(payload) = line.strip_prefix(b"data:") else {
                continue;
            };
            let payload = payload.strip_prefix(b" ").unwrap_or(payload);
            if payload == b"[DONE]" {
                self.done = true;
                continue;
            }
            if self.eager {
                collect_text(payload, &mut self.text);
            }
            if memchr::memmem::find(payload, b"\"usage\"").is_none() {
                continue;
            }
            if let Ok(p) = serde_json::from_slice::<ChunkProbe>(payload)
                && let Some(u) = p.usage.or(p.response.and_then(|r| r.usage))
            {
                self.usage = Some(u);
                if self.hide_usage && p.choices.as_ref().is_none_or(|c| c.is_empty()) {
                    keep = false;
                }
            }
        }
        keep
    }
}

/// Call `f` with each `data:` payload of one event (except `[DONE]`).
fn for_each_data(ev: &[u8], mut f: impl FnMut(&[u8])) {
    for line in ev.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(p) = line.strip_prefix(b"data:") {
            let p = p.strip_prefix(b" ").unwrap_or(p);
            if p != b"[DONE]" {
                f(p);
            }
        }
    }
}

/// Length of the first complete event in `buf` (through its blank line), if any.
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(n) = memchr::memchr(b'\n', &buf[i..]) {
        let nl = i + n;
        let rest = &buf[nl + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

/// Find the last `"usage": {...}` object in a (possibly truncated-at-the-front) JSON body.
pub fn find_usage(body: &[u8]) -> Option<Usage> {
    static USAGE: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b"\"usage\""));
    let mut hay = body;
    while let Some(at) = USAGE.rfind(hay) {
        let rest = &body[at + 7..];
        let rest = trim_ws(rest);
        if let Some(rest) = rest.strip_prefix(b":") {
            let rest = trim_ws(rest);
            if let Some(Ok(u)) = serde_json::Deserializer::from_slice(rest)
                .into_iter::<Usage>()
                .next()
            {
                return Some(u);
            }
        }
        hay = &body[..at];
    }
    None
}

fn trim_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Ola\"}}]}\n\n",
        "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" mundo\"}}]}\n\n",
        "data: {\"id\":\"1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n",
        "data: [DONE]\n\n",
    );

    fn run(hide: bool, splits: &[usize]) -> (Vec<u8>, SseScanner) {
        let mut s = SseScanner::new(hide);
        let bytes = STREAM.as_bytes();
        let mut out = Vec::new();
        let mut last = 0;
        for &cut in splits.iter().chain(std::iter::once(&bytes.len())) {
            out.extend_from_slice(&s.feed(Bytes::copy_from_slice(&bytes[last..cut])).unwrap());
            last = cut;
        }
        if let Some(b) = s.finish() {
            out.extend_from_slice(&b);
        }
        (out, s)
    }

    #[test]
    fn usage_details_are_read_and_clamped() {
        let u: Usage = serde_json::from_str(
            r#"{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150,
               "prompt_tokens_details":{"cached_tokens":80,"audio_tokens":0},
               "completion_tokens_details":{"reasoning_tokens":30}}"#,
        )
        .unwrap();
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (80, 30));
        let odd: Usage = serde_json::from_str(
            r#"{"prompt_tokens":10,"completion_tokens":5,
               "prompt_tokens_details":{"cached_tokens":999},"completion_tokens_details":null}"#,
        )
        .unwrap();
        assert_eq!((odd.cached_tokens, odd.reasoning_tokens), (10, 0));
        let responses: Usage = serde_json::from_str(
            r#"{"input_tokens":7,"output_tokens":3,"input_tokens_details":{"cached_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!((responses.prompt_tokens, responses.cached_tokens), (7, 2));
    }

    #[test]
    fn passthrough_keeps_bytes_and_finds_usage_at_every_split() {
        for a in 0..STREAM.len() {
            for b in [a, (a + 7).min(STREAM.len()), STREAM.len()] {
                let (out, s) = run(false, &[a, b.max(a)]);
                assert_eq!(out, STREAM.as_bytes());
                assert_eq!(
                    s.usage,
                    Some(Usage {
                        prompt_tokens: 11,
                        completion_tokens: 2,
                        ..Usage::default()
                    }),
                    "split at {a},{b}"
                );
                assert!(s.done);
            }
        }
    }

    #[test]
    fn hiding_drops_only_the_usage_event_at_every_split() {
        let expected = STREAM.replace(
            "data: {\"id\":\"1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n",
            "",
        );
        for a in 0..STREAM.len() {
            let (out, s) = run(true, &[a]);
            assert_eq!(String::from_utf8(out).unwrap(), expected, "split at {a}");
            assert_eq!(s.usage.map(|u| u.prompt_tokens), Some(11));
        }
    }

    #[test]
    fn an_event_past_its_cap_ends_the_stream() {
        let big = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}",
            "x".repeat(3 << 20)
        );
        for hide in [false, true] {
            // no blank line at all: refused once the pending event passes 1 MiB
            let mut s = SseScanner::new(hide);
            let mut fed = 0;
            let mut refused = None;
            for piece in big.as_bytes().chunks(16 * 1024) {
                fed += piece.len();
                if let Err(e) = s.feed(Bytes::copy_from_slice(piece)) {
                    refused = Some(e.0);
                    break;
                }
            }
            let at = refused.expect("an endless event must be refused");
            assert!(
                at > MAX_EVENT_BYTES && at <= MAX_EVENT_BYTES + 16 * 1024,
                "{at}"
            );
            assert!(fed < 2 * MAX_EVENT_BYTES);
            // with a larger cap the same event passes whole, and the next one is seen
            let mut s = SseScanner::new(hide).with_max_event(4 << 20);
            let whole = format!(
                "{big}\n\ndata: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":2}}}}\n\n"
            );
            let mut out = Vec::new();
            for piece in whole.as_bytes().chunks(16 * 1024) {
                out.extend_from_slice(&s.feed(Bytes::copy_from_slice(piece)).unwrap());
            }
            assert_eq!(s.usage.map(|u| u.completion_tokens), Some(2));
            assert_eq!(out.len(), if hide { big.len() + 2 } else { whole.len() });
        }
        // a single chunk with a too-long unfinished event is refused too
        let mut s = SseScanner::new(false).with_max_event(10);
        assert!(
            s.feed(Bytes::from_static(b"data: 1\n\ndata: 0123456789"))
                .is_err()
        );
    }

    #[test]
    fn crlf_events_are_recognised() {
        let mut s = SseScanner::new(true);
        let out = s
            .feed(Bytes::from_static(
                b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\r\n\r\ndata: [DONE]\r\n\r\n",
            ))
            .unwrap();
        assert_eq!(&out[..], b"data: [DONE]\r\n\r\n");
        assert!(s.done);
    }

    #[test]
    fn generated_text_is_kept_from_every_kind_of_chunk() {
        let mut s = SseScanner::new(false);
        s.feed(Bytes::from_static(concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Ol\\u00e1\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\" hm\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"text\":\"!\"}]}\n\n",
            "data: [DONE]\n\n",
        ).as_bytes())).unwrap();
        let t = s.take_text();
        assert_eq!(t.kept, "Olá hmf{}!");
        assert_eq!(t.tokens(crate::tokens::Encoding::Bytes), 3);
        // a whole answer
        let mut t = Text::default();
        assert!(collect_text(
            br#"{"choices":[{"message":{"content":"hello there"}}]}"#,
            &mut t
        ));
        assert_eq!(t.tokens(crate::tokens::Encoding::O200k), 2);
        assert!(!collect_text(b"{\"choices\":", &mut t));
    }

    #[test]
    fn a_stream_longer_than_the_kept_chunks_loses_no_text() {
        // 1.5 MB of events fed in 1000-byte pieces that cut events anywhere
        let ev = |i: usize| {
            format!(
                "data: {{\"choices\":[{{\"delta\":{{\"content\":\"w{i} \"}}}}],\"pad\":\"{}\"}}\n\n",
                "x".repeat(200)
            )
        };
        let all: String = (0..6000).map(ev).collect();
        for hide in [false, true] {
            let mut s = SseScanner::new(hide);
            let mut out = Vec::new();
            for piece in all.as_bytes().chunks(1000) {
                out.extend_from_slice(&s.feed(Bytes::copy_from_slice(piece)).unwrap());
            }
            assert_eq!(out, all.as_bytes());
            let want: String = (0..6000).map(|i| format!("w{i} ")).collect();
            assert_eq!(s.take_text().kept, want, "hide {hide}");
        }
    }

    #[test]
    fn text_past_the_cap_is_counted_by_bytes() {
        let mut t = Text::default();
        t.push(&"a".repeat(TEXT_KEEP - 1));
        t.push("éé"); // one byte of room: half an 'é' is not kept, all 4 bytes are counted
        assert_eq!(t.kept.len(), TEXT_KEEP - 1);
        assert_eq!(t.overflow_bytes, 4);
        assert_eq!(t.bytes(), TEXT_KEEP + 3);
    }

    #[test]
    fn audio_seconds_are_read_exactly() {
        let ms = |b: &str| find_audio_ms(b.as_bytes());
        assert_eq!(
            ms(r#"{"text":"x","usage":{"type":"duration","seconds":12}}"#),
            Some(12_000)
        );
        assert_eq!(ms(r#"{"text":"x","duration":3.0005}"#), Some(3_001));
        assert_eq!(ms(r#"{"text":"x","duration":0.1234}"#), Some(123));
        assert_eq!(ms(r#"{"usage":{"seconds":2},"duration":9}"#), Some(2_000));
        assert_eq!(ms(r#"{"text":"x"}"#), None);
        assert_eq!(ms(r#"{"duration":-1}"#), None);
    }

    #[test]
    fn usage_in_non_stream_body() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"\"usage\" is a word"}}],"usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}"#;
        assert_eq!(
            find_usage(body),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 7,
                ..Usage::default()
            })
        );
        assert_eq!(find_usage(b"{\"data\":[]}"), None);
        // a body cut at the front still yields the usage at its end
        assert_eq!(
            find_usage(&body[40..]).map(|u| u.completion_tokens),
            Some(7)
        );
    }
}

/// Property tests (bounded here; `PROPTEST_CASES=100000 cargo test --lib fuzz` for long runs).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(s: &mut SseScanner, data: &[u8], cuts: &[usize]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut last = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.sort_unstable();
        for &p in points.iter().chain(std::iter::once(&data.len())) {
            if p < last {
                continue;
            }
            match s.feed(Bytes::copy_from_slice(&data[last..p])) {
                Ok(b) => out.extend_from_slice(&b),
                Err(_) => return None,
            }
            last = p;
        }
        if let Some(b) = s.finish() {
            out.extend_from_slice(&b);
        }
        Some(out)
    }

    proptest! {
        /// Any bytes, cut anywhere: no panic, passthrough is byte-exact, and the pending
        /// event never holds more than the cap plus one chunk.
        #[test]
        fn any_bytes_at_any_split(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                  cuts in proptest::collection::vec(any::<usize>(), 0..12),
                                  cap in 16usize..2048) {
            let mut s = SseScanner::new(false).with_max_event(cap);
            if let Some(out) = feed_all(&mut s, &data, &cuts) {
                prop_assert_eq!(out, data.clone());
            }
            prop_assert!(s.tail.len() <= cap + data.len());
            let mut h = SseScanner::new(true).with_max_event(cap);
            let _ = feed_all(&mut h, &data, &cuts);
            let _ = h.take_text();
        }

        /// Well-formed streams: the usage is found and only the usage event is hidden,
        /// wherever the stream is cut.
        #[test]
        fn usage_is_found_at_any_split(words in proptest::collection::vec("[a-zA-Z0-9 çãé\"\\\\]{0,12}", 1..20),
                                       p in 0u64..1_000_000, c in 0u64..1_000_000,
                                       crlf in any::<bool>(),
                                       cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut stream = String::new();
            for w in &words {
                let v = serde_json::json!({"choices": [{"index": 0, "delta": {"content": w}}]});
                stream.push_str(&format!("data: {v}{nl}{nl}"));
            }
            let usage = format!("data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{c}}}}}{nl}{nl}");
            stream.push_str(&usage);
            stream.push_str(&format!("data: [DONE]{nl}{nl}"));
            let mut s = SseScanner::new(true);
            let out = feed_all(&mut s, stream.as_bytes(), &cuts).expect("under the cap");
            prop_assert_eq!(s.usage, Some(Usage { prompt_tokens: p, completion_tokens: c, ..Usage::default() }));
            prop_assert_eq!(String::from_utf8(out).unwrap(), stream.replace(&usage, ""));
            let text = s.take_text();
            let want: String = words.concat();
            prop_assert_eq!(text.kept, want);
        }

        /// Usage and audio seconds read from arbitrary bytes never panic, and what is found
        /// is what a JSON parser sees.
        #[test]
        fn usage_and_audio_from_any_body(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = find_usage(&data);
            let _ = find_audio_ms(&data);
            let mut t = Text::default();
            let _ = collect_text(&data, &mut t);
        }

        #[test]
        fn audio_seconds_match_their_decimal_value(int in 0u64..100_000, frac in 0u32..10_000) {
            let body = format!("{{\"duration\":{int}.{frac:04}}}");
            let want = int * 1000 + u64::from(frac / 10) + u64::from(frac % 10 >= 5);
            prop_assert_eq!(find_audio_ms(body.as_bytes()), Some(want));
        }
    }
}
