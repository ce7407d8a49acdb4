//! `--stats-addr`: the server's figures as JSON over plain HTTP, for
//! monitoring (`curl http://127.0.0.1:9536/stats`).
//!
//! One request at a time, each bounded in size and time: the endpoint cannot
//! be used to hold the server's resources. Any path answers (`/stats` by
//! convention); anything but `GET` gets a 405.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rtcplay::signaling::{ServerStats, SignalingServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Longest request head read.
const MAX_REQUEST: usize = 4096;
/// Time a client has to send its request and take the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The stats with the relay rate over the last sampling second.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Sample {
    #[serde(flatten)]
    pub stats: ServerStats,
    /// Signals relayed per second over the last second.
    pub relays_per_sec: u64,
}

/// The latest sample, shared by the sampler and the endpoint.
pub type Latest = Arc<Mutex<Sample>>;

/// Every second: a new sample of `server`'s figures.
pub async fn sample(server: Arc<SignalingServer>, latest: Latest) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut previous: Option<ServerStats> = None;
    loop {
        tick.tick().await;
        let stats = server.stats();
        let relays_per_sec = previous.map_or(0, |p| {
            stats.signals_relayed.saturating_sub(p.signals_relayed)
        });
        *latest.lock().unwrap_or_else(PoisonError::into_inner) = Sample {
            stats,
            relays_per_sec,
        };
        previous = Some(stats);
    }
}

/// Answer requests on `listener` with the server's figures now (and the
/// latest relay rate).
pub async fn serve(listener: TcpListener, server: Arc<SignalingServer>, latest: Latest) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let latest = Arc::clone(&latest);
        let server = Arc::clone(&server);
        let answer = async move {
            let mut head = Vec::with_capacity(512);
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
                let n = tcp.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                head.extend_from_slice(&buf[..n]);
            }
            let response = if head.starts_with(b"GET ") {
                let sample = Sample {
                    stats: server.stats(),
                    relays_per_sec: latest
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .relays_per_sec,
                };
                let body = serde_json::to_string(&sample).unwrap_or_default();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            tcp.write_all(response.as_bytes()).await?;
            tcp.shutdown().await
        };
        let _: Result<std::io::Result<()>, _> = tokio::time::timeout(REQUEST_TIMEOUT, answer).await;
    }
}
