//! Bare Pingora: a `ProxyHttp` that only picks one fixed peer, with the same Pingora version,
//! features and allocator as catraca. The floor any gateway built on Pingora is measured
//! against (issue 12's ratios).
//!
//! `cargo run --release --example bare_pingora -- LISTEN UPSTREAM [THREADS]`, e.g.
//! `… -- 127.0.0.1:18090 127.0.0.1:19100 2`.

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::Server;
use pingora::server::configuration::ServerConf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare(SocketAddr);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _s: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        // a SocketAddr: no DNS
        #[allow(clippy::disallowed_methods)]
        let peer = HttpPeer::new(self.0, false, String::new());
        Ok(Box::new(peer))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        return Err("usage: bare_pingora LISTEN UPSTREAM [THREADS]".into());
    };
    let upstream: SocketAddr = upstream.parse()?;
    let threads = match args.get(2) {
        Some(t) => t.parse()?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare(upstream));
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever()
}
