//! Token estimates before the call: the prompt counted with the model's tiktoken encoding
//! (bundled in the binary, no network), for tokens-per-minute limits and cost reservations.
//!
//! Chat messages are counted the way OpenAI documents for its chat models: every message costs
//! its content and role plus 3 tokens of framing (a `name` one more), and the reply is primed
//! with 3 more. Non-text parts (images, audio) are not counted: the upstream's reported usage
//! corrects the window afterwards. The estimate is only computed for requests that need it
//! (a token limit or a money reservation applies), so unlimited traffic pays nothing.

use std::borrow::Cow;

use serde::Deserialize;
use tiktoken_rs::CoreBPE;

/// A tokenizer a model is counted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-5, o-series.
    O200k,
    /// GPT-4, GPT-3.5, text-embedding-3 and ada-002; the default for other families.
    #[default]
    Cl100k,
    /// Codex and text-davinci-002/003.
    P50k,
    /// GPT-3 (davinci and older).
    R50k,
    /// No tokenizer: one token per 4 bytes of text, rounded up.
    Bytes,
}

/// Per encoding (by discriminant), whether its tables were loaded.
static LOADED: [std::sync::atomic::AtomicBool; 5] = [
    std::sync::atomic::AtomicBool::new(false),
    std::sync::atomic::AtomicBool::new(false),
    std::sync::atomic::AtomicBool::new(false),
    std::sync::atomic::AtomicBool::new(false),
    std::sync::atomic::AtomicBool::new(false),
];

/// Chat roles whose counts are kept per encoding once its tables are loaded (each is a whole
/// encoder call otherwise, for one or two tokens, on every message of every counted request).
const ROLES: [&str; 6] = [
    "system",
    "user",
    "assistant",
    "tool",
    "developer",
    "function",
];
static ROLE_TOKENS: [std::sync::OnceLock<[u64; 6]>; 5] = [const { std::sync::OnceLock::new() }; 5];

impl Encoding {
    /// Tokens of a message's role: the common ones from a table counted once per encoding.
    fn count_role(self, role: &str) -> u64 {
        match ROLES.iter().position(|r| *r == role) {
            Some(i) => ROLE_TOKENS[self as usize].get_or_init(|| ROLES.map(|r| self.count(r)))[i],
            None => self.count(role),
        }
    }

    /// Parse the config value.
    pub fn parse(s: &str) -> Option<Encoding> {
        Some(match s {
            "o200k_base" => Encoding::O200k,
            "cl100k_base" => Encoding::Cl100k,
            "p50k_base" => Encoding::P50k,
            "r50k_base" => Encoding::R50k,
            "bytes" => Encoding::Bytes,
            _ => return None,
        })
    }

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::O200k => "o200k_base",
            Encoding::Cl100k => "cl100k_base",
            Encoding::P50k => "p50k_base",
            Encoding::R50k => "r50k_base",
            Encoding::Bytes => "bytes",
        }
    }

    /// The encoding of a model family, from its (upstream) name.
    pub fn for_model(name: &str) -> Encoding {
        let n = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
        let starts = |p: &[&str]| p.iter().any(|p| n.starts_with(p));
        if starts(&[
            "gpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "chatgpt-4o",
            "o1",
            "o3",
            "o4",
            "gpt-oss",
        ]) {
            Encoding::O200k
        } else if starts(&[
            "code-davinci",
            "code-cushman",
            "text-davinci-002",
            "text-davinci-003",
        ]) {
            Encoding::P50k
        } else if starts(&["davinci", "curie", "babbage", "ada"]) && !n.contains("embedding") {
            Encoding::R50k
        } else {
            Encoding::Cl100k
        }
    }

    fn bpe(self) -> Option<&'static CoreBPE> {
        let bpe = match self {
            Encoding::O200k => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100k => tiktoken_rs::cl100k_base_singleton(),
            Encoding::P50k => tiktoken_rs::p50k_base_singleton(),
            Encoding::R50k => tiktoken_rs::r50k_base_singleton(),
            Encoding::Bytes => return None,
        };
        LOADED[self as usize].store(true, std::sync::atomic::Ordering::Release);
        Some(bpe)
    }

    /// Load the encoding's tables (tens of milliseconds and ~20-45 MiB each).
    pub fn preload(self) {
        let _ = self.bpe();
    }

    /// Whether counting with this encoding needs no table load first.
    pub fn is_loaded(self) -> bool {
        self == Encoding::Bytes || LOADED[self as usize].load(std::sync::atomic::Ordering::Acquire)
    }

    /// Make sure the tables are loaded, loading them off the async threads when they are not:
    /// tables load on first need, not at start, so a gateway whose requests never need a
    /// token count never holds them.
    pub async fn ensure_loaded(self) {
        if !self.is_loaded() {
            let _ = tokio::task::spawn_blocking(move || self.preload()).await;
        }
    }

    /// Tokens of `text`.
    pub fn count(self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        match self.bpe() {
            Some(bpe) => bpe.encode_ordinary(text).len() as u64,
            None => text.len().div_ceil(4) as u64,
        }
    }
}

/// What a request body says about its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Prompt tokens, estimated.
    pub prompt: u64,
    /// `max_completion_tokens` / `max_tokens`, when the client set one.
    pub max_output: Option<u64>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow, default)]
    prompt: Option<Text<'a>>,
    #[serde(borrow, default)]
    input: Option<Text<'a>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<Part<'a>>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// A prompt or input: a string, a list of strings, or token ids (counted one each).
#[derive(Deserialize)]
#[serde(untagged)]
enum Text<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
    Ids(Vec<u64>),
    IdLists(Vec<Vec<u64>>),
    Other(serde::de::IgnoredAny),
}

impl Text<'_> {
    fn count(&self, enc: Encoding) -> u64 {
        match self {
            Text::One(s) => enc.count(s),
            Text::Many(v) => v.iter().map(|s| enc.count(s)).sum(),
            Text::Ids(v) => v.len() as u64,
            Text::IdLists(v) => v.iter().map(|l| l.len() as u64).sum(),
            Text::Other(_) => 0,
        }
    }
}

/// Estimate the prompt of a chat, completion or embedding body. A body that does not parse
/// estimates to zero (the request is refused later, or the upstream's usage corrects it).
pub fn estimate(body: &[u8], enc: Encoding) -> Estimate {
    let Ok(b) = serde_json::from_slice::<Body>(body) else {
        return Estimate::default();
    };
    let mut prompt = 0;
    if let Some(messages) = &b.messages {
        for m in messages {
            prompt += 3;
            prompt += m.role.as_deref().map_or(0, |r| enc.count_role(r));
            if let Some(n) = &m.name {
                prompt += enc.count(n) + 1;
            }
            prompt += match &m.content {
                Some(Content::Text(t)) => enc.count(t),
                Some(Content::Parts(parts)) => parts
                    .iter()
                    .filter_map(|p| p.text.as_deref())
                    .map(|t| enc.count(t))
                    .sum(),
                Some(Content::Other(_)) | None => 0,
            };
        }
        prompt += 3;
    }
    if let Some(p) = &b.prompt {
        prompt += p.count(enc);
    }
    if let Some(i) = &b.input {
        prompt += i.count(enc);
    }
    Estimate {
        prompt,
        max_output: b.max_completion_tokens.or(b.max_tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_messages_match_openai_cookbook_counts() {
        // OpenAI's cookbook example counts 129 prompt tokens for these messages on gpt-4o
        // ("How to count tokens with tiktoken"); the same framing rule gives that here.
        let body = br#"{"model":"gpt-4o","messages":[
          {"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
          {"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
          {"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
          {"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
          {"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
          {"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}],
          "max_tokens":50}"#;
        let e = estimate(body, Encoding::O200k);
        assert_eq!(e.prompt, 124);
        assert_eq!(e.max_output, Some(50));
        // and 129 for gpt-4 / gpt-3.5-turbo (cl100k_base), as the cookbook prints
        assert_eq!(estimate(body, Encoding::Cl100k).prompt, 129);
    }

    #[test]
    fn role_counts_from_the_table_are_the_encoders() {
        for enc in [
            Encoding::O200k,
            Encoding::Cl100k,
            Encoding::P50k,
            Encoding::Bytes,
        ] {
            for r in ROLES.iter().chain(&["critic", "", "assistente"]) {
                assert_eq!(enc.count_role(r), enc.count(r), "{enc:?} {r}");
            }
        }
        // and a role spelled otherwise is counted as written
        assert!(
            Encoding::Cl100k.count_role("User assistant") > Encoding::Cl100k.count_role("user")
        );
    }

    #[test]
    fn encodings_differ_and_families_map() {
        let t = "Olá, mundo! Quanto custa um token em reais?";
        assert_ne!(Encoding::O200k.count(t), Encoding::Cl100k.count(t));
        assert_eq!(Encoding::Bytes.count("abcde"), 2);
        assert_eq!(Encoding::for_model("gpt-4o-mini"), Encoding::O200k);
        assert_eq!(Encoding::for_model("openai/o3-mini"), Encoding::O200k);
        assert_eq!(Encoding::for_model("gpt-3.5-turbo"), Encoding::Cl100k);
        assert_eq!(
            Encoding::for_model("text-embedding-3-small"),
            Encoding::Cl100k
        );
        assert_eq!(Encoding::for_model("llama-3-70b"), Encoding::Cl100k);
    }

    #[test]
    fn prompt_input_and_parts_are_counted() {
        let e = estimate(br#"{"input":["hello world","hello"]}"#, Encoding::Cl100k);
        assert_eq!(e.prompt, 3);
        let e = estimate(br#"{"prompt":[[1,2,3],[4]]}"#, Encoding::Cl100k);
        assert_eq!(e.prompt, 4);
        let e = estimate(
            br#"{"messages":[{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"x"}}]}],"max_completion_tokens":7,"max_tokens":9}"#,
            Encoding::Cl100k,
        );
        // 3 framing + 1 role + 2 text + 3 priming
        assert_eq!((e.prompt, e.max_output), (9, Some(7)));
        assert_eq!(estimate(b"not json", Encoding::Cl100k), Estimate::default());
    }
}

#[cfg(test)]
mod load_tests {
    use super::Encoding;

    #[tokio::test]
    async fn tables_load_on_first_need() {
        assert!(Encoding::Bytes.is_loaded());
        Encoding::P50k.ensure_loaded().await;
        assert!(Encoding::P50k.is_loaded());
        assert_eq!(Encoding::P50k.count("hello world"), 2);
    }
}
