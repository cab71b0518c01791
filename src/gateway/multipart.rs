//! Just enough of `multipart/form-data` to route an upload: an incremental scanner that finds
//! the `model` field's value and whether the file part is present (`file` for audio, SabIA's
//! `image` for OCR and `document` for recognition), without holding any part's
//! content (a file part is skipped as it streams past). It keeps at most one delimiter's worth
//! of bytes between chunks, plus one part's header block (capped), so it costs time linear in
//! the body and constant memory.

use memchr::memmem;

/// Longest header block of one part.
const MAX_PART_HEADERS: usize = 16 * 1024;
/// Longest `model` value.
const MAX_MODEL: usize = 256;
/// Longest `n` value.
const MAX_COUNT: usize = 16;

/// A form the scanner cannot read: the client's 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadForm(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter, or inside a part's content.
    Content(Part),
    /// Right after a delimiter: `--` ends the form, CRLF starts a part's headers.
    AfterDelimiter,
    /// Reading a part's header block.
    Headers,
    /// After the closing delimiter.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Preamble,
    Model,
    /// `n`, the number of images an edit asks for.
    Count,
    Other,
}

/// Incremental scanner of one form.
pub struct FormScan {
    delim: Vec<u8>,
    file_field: &'static str,
    pending: Vec<u8>,
    state: State,
    model_buf: Vec<u8>,
    count_buf: Vec<u8>,
    /// The `model` field's value, once its part ended.
    pub model: Option<String>,
    /// The `n` field's value (images to edit), once its part ended.
    pub n: Option<u64>,
    /// The file part was seen.
    pub has_file: bool,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (base, params) = content_type.split_once(';')?;
    if !base.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = unquote(v);
        (!v.is_empty() && v.len() <= 70).then_some(v)
    })
}

impl FormScan {
    /// A scanner for parts delimited by `boundary`, whose file part is named `file_field`.
    pub fn new(boundary: &str, file_field: &'static str) -> Self {
        let mut delim = Vec::with_capacity(boundary.len() + 4);
        delim.extend_from_slice(b"\r\n--");
        delim.extend_from_slice(boundary.as_bytes());
        FormScan {
            delim,
            file_field,
            // the first delimiter has no CRLF before it: pretend it had
            pending: b"\r\n".to_vec(),
            state: State::Content(Part::Preamble),
            model_buf: Vec::new(),
            count_buf: Vec::new(),
            model: None,
            n: None,
            has_file: false,
        }
    }

    /// The closing delimiter was seen.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Feed the next bytes of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), BadForm> {
        if self.state == State::Done {
            return Ok(()); // the epilogue is ignored
        }
        self.pending.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => {
                    self.pending.clear();
                    return Ok(());
                }
                State::Content(part) => {
                    let rest = &self.pending[pos..];
                    match memmem::find(rest, &self.delim) {
                        Some(i) => {
                            self.push(part, pos, pos + i)?;
                            self.end_part(part)?;
                            pos += i + self.delim.len();
                            self.state = State::AfterDelimiter;
                        }
                        None => {
                            // keep what could be the start of a delimiter
                            let keep = (self.delim.len() - 1).min(rest.len());
                            let upto = self.pending.len() - keep;
                            self.push(part, pos, upto)?;
                            pos = upto;
                            break;
                        }
                    }
                }
                State::AfterDelimiter => {
                    let rest = &self.pending[pos..];
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Done;
                    } else {
                        // transport padding (spaces, tabs) may precede the CRLF
                        let pad = rest
                            .iter()
                            .take_while(|b| **b == b' ' || **b == b'\t')
                            .count();
                        if rest.len() < pad + 2 {
                            if pad > 64 {
                                return Err(BadForm("malformed multipart delimiter"));
                            }
                            break;
                        }
                        if &rest[pad..pad + 2] != b"\r\n" {
                            return Err(BadForm("malformed multipart delimiter"));
                        }
                        pos += pad + 2;
                        self.state = State::Headers;
                    }
                }
                State::Headers => {
                    let rest = &self.pending[pos..];
                    // an empty header block is CRLF CRLF right away: treat as a nameless part
                    let end = if rest.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        memmem::find(rest, b"\r\n\r\n").map(|i| (i, i + 4))
                    };
                    match end {
                        Some((i, skip)) => {
                            let part = part_of(&rest[..i])?;
                            if part == Part::Other && names(&rest[..i], self.file_field) {
                                self.has_file = true;
                            }
                            if part == Part::Model && self.model.is_some() {
                                return Err(BadForm("the form has two 'model' fields"));
                            }
                            if part == Part::Count && self.n.is_some() {
                                return Err(BadForm("the form has two 'n' fields"));
                            }
                            pos += skip;
                            self.state = State::Content(part);
                        }
                        None => {
                            if rest.len() > MAX_PART_HEADERS {
                                return Err(BadForm("a form part's headers are too large"));
                            }
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..pos);
        Ok(())
    }

    /// Keep `pending[from..to]` when it is the content of a field the gateway reads.
    fn push(&mut self, part: Part, from: usize, to: usize) -> Result<(), BadForm> {
        match part {
            Part::Model => push_model(&mut self.model_buf, &self.pending[from..to]),
            Part::Count => {
                if self.count_buf.len() + (to - from) > MAX_COUNT {
                    return Err(BadForm("the 'n' field is too long"));
                }
                self.count_buf.extend_from_slice(&self.pending[from..to]);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn end_part(&mut self, part: Part) -> Result<(), BadForm> {
        if part == Part::Count {
            let v = std::str::from_utf8(&self.count_buf)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(BadForm("the 'n' field is not a whole number"))?;
            self.n = Some(v);
            self.count_buf.clear();
        }
        if part == Part::Model {
            let v = std::str::from_utf8(&self.model_buf)
                .map_err(|_| BadForm("the 'model' field is not UTF-8"))?
                .trim();
            if v.is_empty() || v.contains('\0') {
                return Err(BadForm("the 'model' field is empty or holds NUL"));
            }
            self.model = Some(v.to_string());
            self.model_buf.clear();
        }
        Ok(())
    }
}

fn push_model(buf: &mut Vec<u8>, bytes: &[u8]) -> Result<(), BadForm> {
    if buf.len() + bytes.len() > MAX_MODEL {
        return Err(BadForm("the 'model' field is too long"));
    }
    buf.extend_from_slice(bytes);
    Ok(())
}

/// The part's kind from its header block.
fn part_of(headers: &[u8]) -> Result<Part, BadForm> {
    if names(headers, "model") {
        return Ok(Part::Model);
    }
    if names(headers, "n") {
        return Ok(Part::Count);
    }
    if headers.len() > MAX_PART_HEADERS {
        return Err(BadForm("a form part's headers are too large"));
    }
    Ok(Part::Other)
}

/// A parameter value without its surrounding blanks and double quotes.
fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Whether the part's `Content-Disposition` names it `field` (`name="field"` or `name=field`).
fn names(headers: &[u8], field: &str) -> bool {
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        return v.split(';').skip(1).any(|p| {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            // `image[]`: the OpenAI SDK's name for each of several files of one field
            let v = unquote(v);
            k.trim().eq_ignore_ascii_case("name")
                && (v == field || v.strip_suffix("[]") == Some(field))
        });
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, file, content) in parts {
            b.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"");
            b.extend_from_slice(name.as_bytes());
            b.push(b'"');
            if let Some(f) = file {
                b.extend_from_slice(
                    format!("; filename=\"{f}\"\r\nContent-Type: audio/wav").as_bytes(),
                );
            }
            b.extend_from_slice(b"\r\n\r\n");
            b.extend_from_slice(content);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    #[test]
    fn an_edit_form_gives_n_and_its_image_at_every_split() {
        let body = form(&[
            ("model", None, b"img-1"),
            ("n", None, b" 3 "),
            ("image[]", Some("a.png"), &[0u8, 13, 10, 45, 45][..]),
            ("prompt", None, b"a hat"),
        ]);
        for piece in 1..body.len() {
            let mut s = FormScan::new("XyZ", "image");
            for c in body.chunks(piece) {
                s.feed(c).unwrap();
            }
            assert_eq!(
                (s.model.as_deref(), s.n, s.has_file, s.done()),
                (Some("img-1"), Some(3), true, true),
                "piece {piece}"
            );
        }
        for bad in [
            &b"three"[..],
            b"-1",
            b"",
            b"99999999999999999999",
            b"1\x002",
        ] {
            let body = form(&[("n", None, bad), ("image", Some("a.png"), b"x")]);
            let mut s = FormScan::new("XyZ", "image");
            assert!(s.feed(&body).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn scan_in_pieces(body: &[u8], piece: usize) -> Result<FormScan, BadForm> {
        let mut s = FormScan::new("XyZ", "file");
        for c in body.chunks(piece) {
            s.feed(c)?;
        }
        Ok(s)
    }

    #[test]
    fn model_and_file_are_found_at_every_split() {
        // the file holds bytes that look like a delimiter's start
        let audio = b"RIFF\r\n--XyRIFF\r\n-\r\n--Xy\x00\xff".repeat(50);
        for body in [
            form(&[
                ("model", None, b"whisper-1"),
                ("file", Some("a.wav"), &audio),
            ]),
            form(&[
                ("file", Some("a.wav"), &audio),
                ("language", None, b"pt"),
                ("model", None, b"whisper-1"),
            ]),
        ] {
            for piece in 1..40 {
                let s = scan_in_pieces(&body, piece).unwrap();
                assert_eq!(s.model.as_deref(), Some("whisper-1"), "piece {piece}");
                assert!(s.has_file);
                assert!(s.done());
            }
        }
    }

    #[test]
    fn forms_without_file_or_model_say_so() {
        let s = scan_in_pieces(&form(&[("language", None, b"pt")]), 7).unwrap();
        assert_eq!(
            (s.model.as_deref(), s.has_file, s.done()),
            (None, false, true)
        );
        let s = scan_in_pieces(&form(&[("files", Some("x"), b"1")]), 3).unwrap();
        assert!(!s.has_file);
    }

    #[test]
    fn hostile_forms_are_refused() {
        let long = vec![b'm'; 300];
        assert!(scan_in_pieces(&form(&[("model", None, &long)]), 64).is_err());
        assert!(scan_in_pieces(&form(&[("model", None, b"a"), ("model", None, b"b")]), 5).is_err());
        assert!(scan_in_pieces(&form(&[("model", None, b"\xff\xfe")]), 5).is_err());
        assert!(scan_in_pieces(&form(&[("model", None, b"a\0b")]), 5).is_err());
        // a header block that never ends
        let mut b = b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"".to_vec();
        b.extend(std::iter::repeat_n(b'a', 20_000));
        assert!(scan_in_pieces(&b, 1000).is_err());
        // garbage after a delimiter
        assert!(scan_in_pieces(b"--XyZ!!garbage", 4).is_err());
    }

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=abc"), Some("abc"));
        assert_eq!(
            boundary("Multipart/Form-Data; charset=x; boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
        assert_eq!(boundary("text/plain; boundary=abc"), None);
    }
}

/// Property tests (bounded here; `PROPTEST_CASES=100000 cargo test --lib fuzz` for long runs).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes in any pieces: no panic, and the scanner holds at most a delimiter's
        /// worth plus one part's header block between pieces.
        #[test]
        fn any_bytes_any_pieces(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                piece in 1usize..300) {
            let mut s = FormScan::new("b0und", "file");
            for c in data.chunks(piece) {
                if s.feed(c).is_err() {
                    break;
                }
                prop_assert!(s.pending.len() <= MAX_PART_HEADERS + piece + 8);
            }
        }

        /// Generated forms: the model and the file part are found at any piece size, whatever
        /// the file holds and wherever the fields stand.
        #[test]
        fn forms_are_read_at_any_split(file in proptest::collection::vec(any::<u8>(), 0..3000),
                                       model in "[a-z0-9.-]{1,40}",
                                       model_first in any::<bool>(),
                                       piece in 1usize..500) {
            let boundary = "----x9";
            let mut parts = vec![
                b"Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n".to_vec(),
                format!("Content-Disposition: form-data; name=\"model\"\r\n\r\n{model}").into_bytes(),
            ];
            parts[0].extend_from_slice(&file);
            if model_first {
                parts.swap(0, 1);
            }
            let mut body = Vec::new();
            for p in &parts {
                body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                body.extend_from_slice(p);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            // a file may contain the delimiter only if the sender chose a bad boundary
            prop_assume!(memmem::find(&file, b"\r\n------x9").is_none());
            let mut s = FormScan::new(boundary, "file");
            for c in body.chunks(piece) {
                s.feed(c).unwrap();
            }
            prop_assert!(s.done());
            prop_assert!(s.has_file);
            prop_assert_eq!(s.model.as_deref(), Some(model.as_str()));
        }
    }
}
