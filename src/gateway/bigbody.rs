//! Request bodies larger than Pingora's 64 KiB retry buffer.
//!
//! To route on `model` the gateway must read the body before choosing a deployment, and Pingora
//! 0.9.1 forwards a body that was read in `request_filter` only through its retry buffer, which
//! holds 64 KiB (PINGORA-NOTES §2): a larger body would never reach the upstream. For those
//! requests the downstream session is wrapped in [`BufferedBody`], a custom session that
//! presents the body the gateway already read as a complete retry buffer and delegates
//! everything else (response writing, timeouts, idle detection of a closed client) to the real
//! HTTP session. Pingora then sends the body to each attempt exactly as it does for small ones,
//! failover included. A custom session cannot be handed back to the connection pool, so such a
//! request ends with `Connection: close`.
//!
//! The same session replays an upload that was spooled to a temporary file (a multipart form
//! whose `model` field comes after a large file part): the body is read from the file in
//! 64 KiB chunks as Pingora forwards it, never held in memory. Such a body cannot be replayed
//! to a second attempt once it started going out, so it reports a truncated retry buffer.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use http::HeaderMap;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::Digest;
use pingora::protocols::http::HttpTask;
use pingora::protocols::http::ServerSession as HttpSession;
use pingora::protocols::http::custom::CustomMessageWrite;
use pingora::protocols::http::custom::server::Session as CustomSession;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::proxy::Session;

type MessageReader = Box<dyn Stream<Item = pingora::Result<Bytes>> + Unpin + Send + Sync + 'static>;

/// A downstream session whose request body was read ahead.
pub struct BufferedBody {
    inner: Box<HttpSession>,
    body: Source,
    delivered: bool,
}

enum Source {
    Memory(Bytes),
    Spooled {
        file: tokio::fs::File,
        len: u64,
        sent: u64,
    },
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::Memory(b) => b.len() as u64,
            Source::Spooled { len, .. } => *len,
        }
    }
}

/// Replace the session's downstream with one that replays `body`; the connection closes after
/// the response.
pub fn wrap(session: &mut Session, body: Bytes) {
    replace(session, Source::Memory(body));
}

/// Replace the session's downstream with one that sends the `len` bytes of `file` (from its
/// start) as the request body.
pub fn wrap_spooled(session: &mut Session, file: tokio::fs::File, len: u64) {
    replace(session, Source::Spooled { file, len, sent: 0 });
}

fn replace(session: &mut Session, body: Source) {
    session.set_keepalive(None);
    let placeholder = Box::new(HttpSession::new_custom(Box::new(())));
    let inner = std::mem::replace(&mut session.downstream_session, placeholder);
    *session.downstream_session = HttpSession::new_custom(Box::new(BufferedBody {
        inner,
        body,
        delivered: false,
    }));
}

/// One chunk of a spooled body.
const SPOOL_CHUNK: usize = 64 * 1024;

#[async_trait]
impl CustomSession for BufferedBody {
    fn req_header(&self) -> &RequestHeader {
        self.inner.req_header()
    }

    fn req_header_mut(&mut self) -> &mut RequestHeader {
        self.inner.req_header_mut()
    }

    async fn read_body_bytes(&mut self) -> pingora::Result<Option<Bytes>> {
        use pingora::{Error, ErrorType::ReadError};
        use tokio::io::AsyncReadExt;
        if self.delivered {
            return Ok(None);
        }
        match &mut self.body {
            Source::Memory(b) => {
                self.delivered = true;
                Ok(Some(b.clone()))
            }
            Source::Spooled { file, len, sent } => {
                let want = (*len - *sent).min(SPOOL_CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                file.read_exact(&mut buf)
                    .await
                    .map_err(|e| Error::because(ReadError, "spooled upload", e))?;
                *sent += want as u64;
                if *sent >= *len {
                    self.delivered = true;
                }
                Ok(Some(Bytes::from(buf)))
            }
        }
    }

    async fn drain_request_body(&mut self) -> pingora::Result<()> {
        self.delivered = true;
        Ok(())
    }

    async fn write_response_header(
        &mut self,
        resp: Box<ResponseHeader>,
        _end: bool,
    ) -> pingora::Result<()> {
        self.inner.write_response_header(resp).await
    }

    async fn write_response_header_ref(
        &mut self,
        resp: &ResponseHeader,
        _end: bool,
    ) -> pingora::Result<()> {
        self.inner.write_response_header_ref(resp).await
    }

    async fn write_body(&mut self, data: Bytes, end: bool) -> pingora::Result<()> {
        self.inner.write_response_body(data, end).await
    }

    async fn write_trailers(&mut self, trailers: HeaderMap) -> pingora::Result<()> {
        self.inner.write_response_trailers(trailers).await
    }

    async fn response_duplex_vec(&mut self, tasks: Vec<HttpTask>) -> pingora::Result<bool> {
        self.inner.response_duplex_vec(tasks).await
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_read_timeout(timeout)
    }

    fn get_read_timeout(&self) -> Option<Duration> {
        self.inner.get_read_timeout()
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_write_timeout(timeout)
    }

    fn get_write_timeout(&self) -> Option<Duration> {
        self.inner.get_write_timeout()
    }

    fn set_total_drain_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_total_drain_timeout(timeout)
    }

    fn get_total_drain_timeout(&self) -> Option<Duration> {
        self.inner.get_total_drain_timeout()
    }

    fn request_summary(&self) -> String {
        self.inner.request_summary()
    }

    fn response_written(&self) -> Option<&ResponseHeader> {
        self.inner.response_written()
    }

    async fn shutdown(&mut self, _code: u32, _ctx: &str) {
        self.inner.shutdown().await
    }

    fn is_body_done(&mut self) -> bool {
        // a body in memory is all here; a spooled one is done once sent
        self.delivered || matches!(self.body, Source::Memory(_))
    }

    async fn finish(&mut self) -> pingora::Result<()> {
        self.inner.finish_body().await
    }

    fn is_body_empty(&mut self) -> bool {
        self.body.len() == 0
    }

    async fn read_body_or_idle(
        &mut self,
        no_body_expected: bool,
    ) -> pingora::Result<Option<Bytes>> {
        if !self.delivered && !no_body_expected {
            return self.read_body_bytes().await;
        }
        // with the body done this watches the client connection, so a disconnect is noticed
        self.inner.read_body_or_idle(true).await
    }

    fn body_bytes_sent(&self) -> usize {
        self.inner.body_bytes_sent()
    }

    fn body_bytes_read(&self) -> usize {
        self.body.len() as usize
    }

    fn digest(&self) -> Option<&Digest> {
        self.inner.digest()
    }

    fn digest_mut(&mut self) -> Option<&mut Digest> {
        self.inner.digest_mut()
    }

    fn client_addr(&self) -> Option<&SocketAddr> {
        self.inner.client_addr()
    }

    fn server_addr(&self) -> Option<&SocketAddr> {
        self.inner.server_addr()
    }

    fn pseudo_raw_h1_request_header(&self) -> Bytes {
        self.inner.to_h1_raw()
    }

    fn enable_retry_buffering(&mut self) {}

    fn retry_buffer_truncated(&self) -> bool {
        matches!(self.body, Source::Spooled { .. })
    }

    fn get_retry_buffer(&self) -> Option<Bytes> {
        // Pingora sends this to every attempt, as for a body that fit its own buffer
        match &self.body {
            Source::Memory(b) => Some(b.clone()),
            Source::Spooled { .. } => None,
        }
    }

    async fn finish_custom(&mut self) -> pingora::Result<()> {
        Ok(())
    }

    fn take_custom_message_reader(&mut self) -> Option<MessageReader> {
        None
    }

    fn restore_custom_message_reader(&mut self, _reader: MessageReader) -> pingora::Result<()> {
        Ok(())
    }

    fn take_custom_message_writer(&mut self) -> Option<Box<dyn CustomMessageWrite>> {
        None
    }

    fn restore_custom_message_writer(
        &mut self,
        _writer: Box<dyn CustomMessageWrite>,
    ) -> pingora::Result<()> {
        Ok(())
    }
}
