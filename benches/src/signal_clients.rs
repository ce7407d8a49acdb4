//! What the signaling benchmarks (`signal_load`, `cluster_load`) share: the
//! server binary, WebSocket clients as small as the server's own connections,
//! waiting for `room_full`, and a process's CPU time.

use std::path::PathBuf;

use futures_util::StreamExt;
use rtcplay::signaling::protocol::ServerMessage;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A benchmark client's WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Any error, across tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `rtcplay-signal` binary: `given`, or the one next to this executable
/// (an error saying how to build it when it is not there).
pub fn server_binary(given: Option<&PathBuf>) -> Result<PathBuf, BoxError> {
    let path = match given {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("executable has no directory")?
            .join("rtcplay-signal"),
    };
    if !path.exists() {
        return Err(format!(
            "{} not found; build it first: cargo build --release -p rtcplay_tools --bin rtcplay-signal",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// Small buffers, as the server's own connections have.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
}

/// Connect a client to `url`.
pub async fn connect(url: &str) -> Result<Ws, BoxError> {
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true).await?;
    Ok(ws)
}

/// Read until `room_full`; other messages (welcome, peer_joined, stale
/// peer_left) are skipped, an `error` ends the wait.
pub async fn until_room_full(ws: &mut Ws) -> Result<(), BoxError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match ServerMessage::from_json(&text) {
                Ok(ServerMessage::RoomFull { .. }) => return Ok(()),
                Ok(ServerMessage::Error { code, message }) => {
                    return Err(format!("server error {code}: {message}").into())
                }
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("server closed the connection".into()),
        }
    }
}

/// User + system CPU time of a process (`"self"` for this one) in seconds,
/// from /proc (clock ticks at the usual 100 Hz).
pub fn cpu_seconds(pid: &str) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).ok_or("bad stat")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("bad stat")?.parse()?;
    Ok((utime + stime) as f64 / 100.0)
}
