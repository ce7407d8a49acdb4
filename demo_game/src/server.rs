//! The embedded signaling server (no-flag local match and `--host`).

use std::net::SocketAddr;
use std::sync::Arc;

use rtcplay::signaling::{ServerConfig, SignalingServer, WebFiles};

/// A signaling server running on its own small tokio runtime. Stops when dropped.
pub struct EmbeddedServer {
    server: Option<SignalingServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl EmbeddedServer {
    /// Bind on `addr` (port 0 picks a free port); serve `web_files` over HTTP on
    /// the same port, if any.
    pub fn start(
        addr: SocketAddr,
        web_files: Option<Arc<WebFiles>>,
    ) -> Result<EmbeddedServer, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rtcplay-signal")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the signaling runtime: {e}"))?;
        let config = ServerConfig {
            exclusive_rooms: true,
            web_files,
            ..ServerConfig::default()
        };
        let server = runtime
            .block_on(SignalingServer::bind(addr, config))
            .map_err(|e| format!("cannot start the signaling server on {addr}: {e}"))?;
        Ok(EmbeddedServer {
            server: Some(server),
            runtime: Some(runtime),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(SignalingServer::local_addr)
    }

    /// The URL a client on this machine uses (`0.0.0.0` becomes `127.0.0.1`).
    pub fn local_url(&self) -> String {
        let Some(mut addr) = self.local_addr() else {
            return String::new();
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("ws://{addr}")
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        // Drop the server inside its runtime, then the runtime without waiting for
        // lingering connections.
        if let Some(runtime) = self.runtime.take() {
            let _guard = runtime.enter();
            self.server.take();
            drop(_guard);
            runtime.shutdown_background();
        }
    }
}
