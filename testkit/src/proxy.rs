//! A TCP proxy on 127.0.0.1 that a test can cut: every connection through it is
//! closed at once (both ends), as when a player's network drops; new connections
//! are proxied again. Put it between one client and the signaling server to take
//! that client's signaling connection away and nothing else.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; stops on drop.
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    cuts: watch::Sender<u64>,
    blocked: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl TcpProxy {
    /// Proxy connections to `target`.
    pub fn start(target: SocketAddr) -> TcpProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let (cuts, watching) = watch::channel(0u64);
        let blocked = Arc::new(AtomicBool::new(false));
        let refusing = Arc::clone(&blocked);
        runtime.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refusing.load(Ordering::Relaxed) {
                    continue; // dropped: closed at once
                }
                let mut cut = watching.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        TcpProxy {
            addr,
            cuts,
            blocked,
            _runtime: runtime,
        }
    }

    /// The proxy as a signaling URL (`ws://127.0.0.1:PORT`), for a `ws://` target.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Close every connection through the proxy now.
    pub fn cut(&self) {
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// While blocked, every connection is cut and new ones are closed at once
    /// (a network partition); unblocked, connections are proxied again.
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Relaxed);
        if blocked {
            self.cut();
        }
    }
}
