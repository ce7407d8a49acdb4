//! A signaling server on 127.0.0.1 (ephemeral port) on its own runtime, for tests
//! that drive sockets from plain threads.

use rtcplay::signaling::{ServerConfig, ServerStats, SignalingServer};

/// A running signaling server; stopped on drop (or [`LocalServer::stop`]).
pub struct LocalServer {
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    server: Option<SignalingServer>,
    runtime: tokio::runtime::Runtime,
}

impl LocalServer {
    /// Start with the default configuration.
    pub fn start() -> LocalServer {
        Self::with_config(ServerConfig::default())
    }

    /// Start with `config`.
    pub fn with_config(config: ServerConfig) -> LocalServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("server runtime");
        let server = runtime
            .block_on(SignalingServer::bind("127.0.0.1:0", config))
            .expect("signaling server binds");
        LocalServer {
            url: server.url(),
            server: Some(server),
            runtime,
        }
    }

    /// The server's counters (zero once stopped).
    pub fn stats(&self) -> ServerStats {
        self.server
            .as_ref()
            .map(SignalingServer::stats)
            .unwrap_or_default()
    }

    /// Run a future on the server's runtime (e.g. a raw signaling client).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Stop the server now (every client's WebSocket is closed).
    pub fn stop(&mut self) {
        let _guard = self.runtime.enter();
        self.server.take();
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}
