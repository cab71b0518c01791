//! Incremental scanner for OpenAI-style server-sent events.
//!
//! The gateway never collects a stream: each upstream chunk goes to the client as it arrives.
//! This scanner looks at the chunks on their way through to find the final `usage` object and,
//! when the gateway injected `stream_options.include_usage` on the client's behalf, to drop the
//! extra usage-only event the client did not ask for. Only an event split across two chunks is
//! copied (into `tail`); everything else is forwarded as slices of the chunk it came in.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

/// Token counts as the upstream reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
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
}

#[derive(Deserialize)]
struct ChunkProbe {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
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

    /// Feed one upstream chunk; returns the bytes to send to the client now.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if !self.hide_usage {
            // Pass the chunk through untouched; scan a joined copy only when an event straddles.
            if self.tail.is_empty() {
                let consumed = self.scan(&chunk, None);
                if consumed < chunk.len() {
                    self.tail.extend_from_slice(&chunk[consumed..]);
                }
            } else {
                self.tail.extend_from_slice(&chunk);
                let joined = self.tail.split().freeze();
                let consumed = self.scan(&joined, None);
                self.tail.extend_from_slice(&joined[consumed..]);
            }
            return chunk;
        }
        let data = if self.tail.is_empty() {
            chunk
        } else {
            self.tail.extend_from_slice(&chunk);
            self.tail.split().freeze()
        };
        let mut out = BytesMut::new();
        let mut dropped = false;
        let consumed = self.scan(&data, Some((&mut out, &mut dropped)));
        if consumed < data.len() {
            self.tail.extend_from_slice(&data[consumed..]);
        }
        if dropped {
            out.freeze()
        } else {
            data.slice(..consumed)
        }
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
            if memchr::memmem::find(payload, b"\"usage\"").is_none() {
                continue;
            }
            if let Ok(p) = serde_json::from_slice::<ChunkProbe>(payload)
                && let Some(u) = p.usage
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
    let mut hay = body;
    while let Some(at) = memchr::memmem::rfind(hay, b"\"usage\"") {
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
            out.extend_from_slice(&s.feed(Bytes::copy_from_slice(&bytes[last..cut])));
            last = cut;
        }
        if let Some(b) = s.finish() {
            out.extend_from_slice(&b);
        }
        (out, s)
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
                        completion_tokens: 2
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
    fn crlf_events_are_recognised() {
        let mut s = SseScanner::new(true);
        let out = s.feed(Bytes::from_static(
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\r\n\r\ndata: [DONE]\r\n\r\n",
        ));
        assert_eq!(&out[..], b"data: [DONE]\r\n\r\n");
        assert!(s.done);
    }

    #[test]
    fn usage_in_non_stream_body() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"\"usage\" is a word"}}],"usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}"#;
        assert_eq!(
            find_usage(body),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 7
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
