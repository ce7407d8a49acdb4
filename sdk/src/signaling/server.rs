//! The embeddable signaling server: a tokio WebSocket server with rooms,
//! N-player matchmaking, relay of offers/answers/candidates within a room, and
//! limits against bad or abusive clients.
//!
//! One task per connection; the room state sits behind one mutex and is only
//! touched for short, non-blocking operations. Each connection has a small bounded
//! queue of outgoing frames: a client that does not read is disconnected
//! (`too_slow`) instead of growing the server's memory.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::protocol::{ClientMessage, ErrorCode, IceServer, ServerMessage, MAX_PLAYERS};
use super::rate_limit::TokenBucket;
use super::rooms::{ConnId, JoinRequest, Outbox, Refusal, Rooms};
use super::turn_credentials::TurnConfig;
use super::SignalingError;

/// Listen backlog: room for bursts of new connections (the kernel caps it at
/// `net.core.somaxconn`); tokio's default is 1024.
const LISTEN_BACKLOG: u32 = 4096;

/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(1);
/// How much a closing connection reads (and discards) at most while lingering.
const LINGER_MAX_BYTES: usize = 1 << 20;

/// Limits and settings of a [`SignalingServer`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted WebSocket frame/message, in bytes. A larger frame gets a
    /// `too_large` error and the connection is closed (code 1009).
    pub max_frame_size: usize,
    /// Messages a connection may send at once before the rate limit applies.
    pub rate_limit_burst: u32,
    /// Messages per second a connection may send on average. Messages beyond the
    /// limit are dropped with one `rate_limited` error; a client that keeps
    /// flooding (another `rate_limit_burst` messages dropped in a row) is closed.
    pub rate_limit_per_sec: u32,
    /// Largest room size (at most 8).
    pub max_peers_per_room: u8,
    /// Most rooms (open and full) at once; a join that needs a new room beyond this
    /// gets `server_full`.
    pub max_rooms: usize,
    /// Most WebSocket connections at once; further TCP connections get an HTTP 503.
    pub max_connections: usize,
    /// Most connections from one IP address; further ones get an HTTP 503.
    pub max_connections_per_ip: usize,
    /// A connection that sends nothing for this long is closed (`idle_timeout`).
    /// Clients send `ping` to stay connected.
    pub idle_timeout: Duration,
    /// Deadline for the WebSocket handshake after the TCP accept.
    pub handshake_timeout: Duration,
    /// Deadline for writing to a client; a client that does not read is closed.
    pub write_timeout: Duration,
    /// Outgoing frames queued per connection before it counts as too slow.
    pub outgoing_queue: usize,
    /// When set, `join` must carry this token (else `unauthorized` and close).
    pub room_token: Option<String>,
    /// ICE servers handed to every client in `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// A TURN server with time-limited credentials: every `welcome` then carries
    /// one more ICE server with a user name and password made for that peer.
    pub turn: Option<TurnConfig>,
    /// One match per room name: while a room's match is on, further joiners of that
    /// name get `room_full` (instead of starting the next match of that name).
    pub exclusive_rooms: bool,
    /// Most spectators per room; further ones get `room_full`.
    pub max_spectators_per_room: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_frame_size: 64 * 1024,
            rate_limit_burst: 200,
            rate_limit_per_sec: 50,
            max_peers_per_room: MAX_PLAYERS,
            max_rooms: 50_000,
            max_connections: 100_000,
            max_connections_per_ip: 64,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            outgoing_queue: 64,
            room_token: None,
            ice_servers: Vec::new(),
            turn: None,
            exclusive_rooms: false,
            max_spectators_per_room: 8,
        }
    }
}

/// A snapshot of what the server holds and has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Open connections (accepted TCP connections, handshaken or not).
    pub connections: usize,
    /// Rooms that exist (filling or full).
    pub rooms: usize,
    /// Rooms still filling up.
    pub open_rooms: usize,
    /// Connections that are members of a room.
    pub peers: usize,
    /// Rooms created since start.
    pub rooms_created: u64,
    /// Rooms freed (last member left) since start.
    pub rooms_freed: u64,
    /// TCP connections refused at a connection limit.
    pub rejected_connections: u64,
    /// Connections closed because they did not read their messages.
    pub too_slow: u64,
}

/// A running signaling server. Runs on the tokio runtime it was bound in; stops
/// (closing every connection) when dropped or on [`SignalingServer::shutdown`].
#[derive(Debug)]
pub struct SignalingServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    ws_config: WebSocketConfig,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rooms: Rooms,
    /// Outgoing queue of every open connection. Removing an entry makes the
    /// connection's task close it once it has written what was queued.
    conns: HashMap<ConnId, mpsc::Sender<Utf8Bytes>>,
    per_ip: HashMap<IpAddr, usize>,
    next_conn: ConnId,
    rejected: u64,
    too_slow: u64,
}

impl SignalingServer {
    /// Bind to `addr` (e.g. `127.0.0.1:0`) and start serving on the current tokio
    /// runtime.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
    ) -> Result<SignalingServer, SignalingError> {
        let listener = listen(addr).await?;
        let local_addr = listener.local_addr()?;
        let frame = config.max_frame_size.max(1);
        // Small buffers keep an idle connection cheap: tungstenite's defaults
        // allocate a 128 KiB read buffer per socket.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_write_buffer_size(frame * 4 + 64 * 1024)
            .max_message_size(Some(frame))
            .max_frame_size(Some(frame));
        let max_players = config.max_peers_per_room.min(MAX_PLAYERS);
        let state = State {
            rooms: {
                let mut rooms = Rooms::new(
                    config.max_rooms,
                    max_players,
                    config.ice_servers.clone(),
                    config.turn.clone(),
                );
                rooms.set_exclusive(config.exclusive_rooms);
                rooms.set_max_spectators(config.max_spectators_per_room);
                rooms
            },
            conns: HashMap::new(),
            per_ip: HashMap::new(),
            next_conn: 0,
            rejected: 0,
            too_slow: 0,
        };
        let shared = Arc::new(Shared {
            config,
            ws_config,
            state: Mutex::new(state),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        Ok(SignalingServer {
            local_addr,
            shared,
            shutdown,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The `ws://` URL of this server.
    pub fn url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// Current counts of connections and rooms.
    pub fn stats(&self) -> ServerStats {
        let state = self.shared.lock();
        let rooms = state.rooms.counts();
        ServerStats {
            connections: state.conns.len(),
            rooms: rooms.rooms,
            open_rooms: rooms.open_rooms,
            peers: rooms.members,
            rooms_created: rooms.created,
            rooms_freed: rooms.freed,
            rejected_connections: state.rejected,
            too_slow: state.too_slow,
        }
    }

    /// Stop accepting and close every connection (also done on drop).
    pub fn shutdown(self) {}
}

impl Drop for SignalingServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Deliver `out`: frames for `me` go to `mine` (written by the caller), others
    /// into their connection's queue. A full queue disconnects that connection,
    /// which may in turn announce `peer_left` to its room.
    fn deliver(&mut self, me: ConnId, out: Outbox, mine: &mut Vec<Utf8Bytes>) {
        let mut work: VecDeque<_> = out.into();
        while let Some((to, msg)) = work.pop_front() {
            let text = Utf8Bytes::from(msg.to_json());
            if to == me {
                mine.push(text);
                continue;
            }
            let Some(tx) = self.conns.get(&to) else {
                continue;
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(text) {
                self.conns.remove(&to);
                self.too_slow += 1;
                let mut more = Vec::new();
                let _ = self.rooms.leave(to, &mut more);
                work.extend(more);
            }
        }
    }

    /// Forget a closed connection: leave its room, release its IP slot.
    fn remove(&mut self, id: ConnId, ip: IpAddr) {
        self.conns.remove(&id);
        let mut out = Vec::new();
        if self.rooms.leave(id, &mut out).is_ok() {
            self.deliver(id, out, &mut Vec::new());
        }
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Bind a listener with [`LISTEN_BACKLOG`], trying each resolved address.
async fn listen(addr: impl ToSocketAddrs) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "address resolved to nothing",
        )
    }))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (tcp, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and similar: back off briefly instead of
                // spinning; the listener recovers when connections close.
                tracing::warn!("signaling: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let ip = addr.ip();
        let admitted = {
            let mut state = shared.lock();
            let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
            if state.conns.len() >= shared.config.max_connections
                || from_ip >= shared.config.max_connections_per_ip
            {
                state.rejected += 1;
                None
            } else {
                let id = state.next_conn;
                state.next_conn += 1;
                let (tx, rx) = mpsc::channel(shared.config.outgoing_queue.max(1));
                state.conns.insert(id, tx);
                *state.per_ip.entry(ip).or_insert(0) += 1;
                Some((id, rx))
            }
        };
        match admitted {
            Some((id, rx)) => {
                let guard = ConnGuard {
                    shared: Arc::clone(&shared),
                    id,
                    ip,
                };
                tokio::spawn(serve(guard, tcp, rx, shutdown.clone()));
            }
            None => {
                tracing::debug!(%addr, "signaling: connection refused at a connection limit");
                // Best effort, never waits: the client's handshake fails with 503.
                let _ = tcp.try_write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    }
}

/// Releases a connection's state however its task ends.
struct ConnGuard {
    shared: Arc<Shared>,
    id: ConnId,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.lock().remove(self.id, self.ip);
    }
}

/// What to do after handling a frame.
enum Flow {
    Continue,
    /// Send this error, then close with this code.
    Close(ErrorCode, CloseCode, String),
}

struct Connection {
    guard: ConnGuard,
    ws: WebSocketStream<TcpStream>,
    bucket: TokenBucket,
    /// Messages dropped by the rate limit since the last accepted one.
    dropped: u32,
    /// Frames for this connection, written before the next read.
    mine: Vec<Utf8Bytes>,
}

async fn serve(
    guard: ConnGuard,
    tcp: TcpStream,
    mut rx: mpsc::Receiver<Utf8Bytes>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = guard.shared.config.clone_limits();
    let _ = tcp.set_nodelay(true);
    let handshake = tokio_tungstenite::accept_async_with_config(tcp, Some(guard.shared.ws_config));
    let ws = match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(
                conn = guard.id,
                "signaling: websocket handshake failed: {e}"
            );
            return;
        }
        Err(_) => {
            tracing::debug!(conn = guard.id, "signaling: websocket handshake timed out");
            return;
        }
    };
    let now = Instant::now();
    let mut conn = Connection {
        guard,
        ws,
        bucket: TokenBucket::new(config.rate_limit_burst, config.rate_limit_per_sec, now),
        dropped: 0,
        mine: Vec::new(),
    };
    let mut last_heard = now;
    let idle = tokio::time::sleep_until(now + config.idle_timeout);
    tokio::pin!(idle);
    loop {
        // Biased: shutdown first, then frames already queued for this client (so
        // they reach it before the reply to anything it sends later).
        let flow = tokio::select! {
            biased;
            _ = shutdown.changed() => {
                conn.close(CloseCode::Away, "server shutting down", config.write_timeout).await;
                break;
            }
            msg = rx.recv() => match msg {
                Some(text) => {
                    conn.mine.push(text);
                    while conn.mine.len() < 64 {
                        match rx.try_recv() {
                            Ok(text) => conn.mine.push(text),
                            Err(_) => break,
                        }
                    }
                    Flow::Continue
                }
                None => Flow::Close(
                    ErrorCode::TooSlow,
                    CloseCode::Policy,
                    "messages were not read fast enough".into(),
                ),
            },
            frame = conn.ws.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(msg)) => conn.on_frame(msg, last_heard),
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => Flow::Close(
                        ErrorCode::TooLarge,
                        CloseCode::Size,
                        format!("frame of {size} bytes exceeds the limit of {max_size}"),
                    ),
                    Some(Err(_)) | None => break,
                }
            }
            () = &mut idle => {
                if last_heard.elapsed() >= config.idle_timeout {
                    Flow::Close(
                        ErrorCode::IdleTimeout,
                        CloseCode::Policy,
                        format!("nothing received for {:?}", config.idle_timeout),
                    )
                } else {
                    idle.as_mut().reset(last_heard + config.idle_timeout);
                    Flow::Continue
                }
            }
        };
        match flow {
            Flow::Continue => {
                if !conn.flush(config.write_timeout).await {
                    break;
                }
            }
            Flow::Close(code, close_code, message) => {
                tracing::debug!(conn = conn.guard.id, %code, "signaling: closing connection: {message}");
                conn.mine.push(Utf8Bytes::from(
                    ServerMessage::error(code, message).to_json(),
                ));
                if conn.flush(config.write_timeout).await {
                    conn.close(close_code, code.as_str(), config.write_timeout)
                        .await;
                }
                break;
            }
        }
    }
}

/// The per-connection settings, copied once so the task does not hold the
/// whole config (ICE servers, token) in its own state.
struct Limits {
    rate_limit_burst: u32,
    rate_limit_per_sec: u32,
    idle_timeout: Duration,
    handshake_timeout: Duration,
    write_timeout: Duration,
}

impl ServerConfig {
    fn clone_limits(&self) -> Limits {
        Limits {
            rate_limit_burst: self.rate_limit_burst,
            rate_limit_per_sec: self.rate_limit_per_sec,
            idle_timeout: self.idle_timeout,
            handshake_timeout: self.handshake_timeout,
            write_timeout: self.write_timeout,
        }
    }
}

impl Connection {
    fn on_frame(&mut self, msg: Message, now: Instant) -> Flow {
        if let Message::Close(_) = msg {
            // tungstenite answers the close; the next read ends the stream.
            return Flow::Continue;
        }
        if !self.bucket.try_take(now) {
            self.dropped += 1;
            let config = &self.guard.shared.config;
            if self.dropped == 1 {
                self.push_error(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} messages/s; message dropped",
                        config.rate_limit_per_sec
                    ),
                );
            } else if self.dropped > config.rate_limit_burst.max(1) {
                return Flow::Close(
                    ErrorCode::RateLimited,
                    CloseCode::Policy,
                    "kept flooding past the rate limit".into(),
                );
            }
            return Flow::Continue;
        }
        self.dropped = 0;
        match msg {
            Message::Text(text) => self.on_text(&text),
            Message::Binary(_) => {
                self.push_error(
                    ErrorCode::BadJson,
                    "binary frames are not part of the protocol",
                );
                Flow::Continue
            }
            // Pings are answered by tungstenite; pongs and raw frames carry nothing.
            _ => Flow::Continue,
        }
    }

    fn on_text(&mut self, text: &str) -> Flow {
        let msg = match ClientMessage::from_json(text) {
            Ok(msg) => msg,
            Err(e) => {
                self.push_error(e.code(), e.to_string());
                return Flow::Continue;
            }
        };
        let shared = Arc::clone(&self.guard.shared);
        let id = self.guard.id;
        let mut out = Vec::new();
        let result: Result<(), Refusal> = match msg {
            ClientMessage::Ping => {
                self.mine
                    .push(Utf8Bytes::from(ServerMessage::Pong.to_json()));
                Ok(())
            }
            ClientMessage::Join {
                version,
                room,
                players,
                token,
                room_secret,
                spectator,
            } => {
                if let Some(expected) = &shared.config.room_token {
                    if !token_matches(expected, token.as_deref()) {
                        return Flow::Close(
                            ErrorCode::Unauthorized,
                            CloseCode::Policy,
                            "missing or wrong room token".into(),
                        );
                    }
                }
                let mut state = shared.lock();
                if !state.conns.contains_key(&id) {
                    return Flow::Continue; // being closed as too slow
                }
                let request = JoinRequest {
                    version,
                    name: room,
                    players,
                    secret: room_secret,
                    spectator,
                };
                let res = state.rooms.join(id, request, &mut out);
                state.deliver(id, std::mem::take(&mut out), &mut self.mine);
                res
            }
            ClientMessage::Signal { to, data } => {
                let mut state = shared.lock();
                let res = state.rooms.relay(id, to, data, &mut out);
                state.deliver(id, std::mem::take(&mut out), &mut self.mine);
                res
            }
            ClientMessage::Leave => {
                let mut state = shared.lock();
                let res = state.rooms.leave(id, &mut out);
                state.deliver(id, std::mem::take(&mut out), &mut self.mine);
                res
            }
        };
        match result {
            Ok(()) => Flow::Continue,
            Err((ErrorCode::VersionMismatch, message)) => {
                Flow::Close(ErrorCode::VersionMismatch, CloseCode::Policy, message)
            }
            Err((code, message)) => {
                self.push_error(code, message);
                Flow::Continue
            }
        }
    }

    fn push_error(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.mine.push(Utf8Bytes::from(
            ServerMessage::error(code, message).to_json(),
        ));
    }

    /// Write every pending frame; false when the connection is broken or stalled.
    async fn flush(&mut self, limit: Duration) -> bool {
        if self.mine.is_empty() {
            return true;
        }
        let ws = &mut self.ws;
        let frames = self.mine.drain(..);
        let write = async move {
            for text in frames {
                ws.feed(Message::Text(text)).await?;
            }
            ws.flush().await
        };
        matches!(tokio::time::timeout(limit, write).await, Ok(Ok(())))
    }

    async fn close(&mut self, code: CloseCode, reason: &str, limit: Duration) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.to_owned()),
        };
        if tokio::time::timeout(limit, self.ws.close(Some(frame)))
            .await
            .is_err()
        {
            return;
        }
        // Half-close and drain what the client still sends (its close frame, the
        // rest of an oversized frame) for a moment: closing a socket with unread
        // input makes the kernel send a reset, which can discard our error message
        // before the client reads it.
        let tcp = self.ws.get_mut();
        let drain = async {
            let _ = tcp.shutdown().await;
            let mut buf = [0u8; 1024];
            let mut total = 0usize;
            while total < LINGER_MAX_BYTES {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

/// Compare tokens without an early exit on the first differing byte.
fn token_matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else {
        return false;
    };
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}
