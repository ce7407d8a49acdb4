//! One client connection of the signaling server: the task that reads its
//! messages, applies its limits, hands requests to the rooms and writes what is
//! queued for it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::ip_group::IpGroup;
use super::metered_stream::MeteredStream;
use super::web_files::{WebFiles, MAX_REQUEST_HEAD};
use super::{error_frame, Shared, JOIN_BURST, SIGNAL_HEADROOM};
use crate::signaling::protocol::{ClientMessage, ErrorCode, IceServer, ServerMessage};
use crate::signaling::rate_limit::{LeakyCounter, TokenBucket};
use crate::signaling::rooms::{secrets_match, ConnId, JoinRequest, Refusal, PROBE_TIMEOUT};

/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(1);
/// How much a closing connection reads (and discards) at most while lingering.
const LINGER_MAX_BYTES: usize = 1 << 20;
/// Frames written per batch at most (then the task looks at its input again).
const BATCH_FRAMES: usize = 64;

/// Releases a connection's state however its task ends.
pub(super) struct ConnGuard {
    shared: Arc<Shared>,
    id: ConnId,
    ip: IpGroup,
}

impl ConnGuard {
    pub(super) fn new(shared: Arc<Shared>, id: ConnId, ip: IpGroup) -> Self {
        Self { shared, id, ip }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.lock().remove(self.id, self.ip, &self.shared);
        self.shared.conn_closed.notify_waiters();
    }
}

/// How writing the pending frames went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    All,
    /// The connection is broken.
    Broken,
    /// The client did not take the frames within the write timeout.
    Stalled,
}

/// What to do after handling a frame.
enum Flow {
    Continue,
    /// Send this error, then close with this code.
    Close(ErrorCode, CloseCode, String),
}

/// A connection's TURN credential, reused for its later joins while it is
/// valid for at least half its lifetime.
struct CachedTurn {
    server: IceServer,
    expiry: SystemTime,
}

struct Connection {
    guard: ConnGuard,
    ws: WebSocketStream<MeteredStream>,
    messages: TokenBucket,
    /// How far over its message rate the client is (drains at the rate).
    flood: LeakyCounter,
    /// Messages are being dropped (one `rate_limited` error per streak).
    dropping: bool,
    joins: TokenBucket,
    turn: Option<CachedTurn>,
    /// Frames for this connection, written before the next read.
    mine: Vec<Utf8Bytes>,
    /// A rejoin asked for this connection's seat: a ping is to be sent.
    ping_due: bool,
    /// A ping is out: the client must send something (its pong) by then, or the
    /// connection counts as lost.
    answer_by: Option<Instant>,
}

/// A plain HTTP request gets its file (or a 404) and `true`; a WebSocket upgrade
/// is left in the stream (only peeked at) for the handshake: `false`.
async fn serve_file(tcp: &mut TcpStream, files: &WebFiles) -> std::io::Result<bool> {
    let mut head = vec![0; MAX_REQUEST_HEAD];
    let mut seen = 0;
    let response = loop {
        let read = tcp.peek(&mut head).await?;
        if read == 0 {
            return Ok(true);
        }
        let complete = head[..read].windows(4).any(|w| w == b"\r\n\r\n");
        if let Some(response) = files.respond(&head[..read], complete) {
            break response;
        }
        if complete {
            return Ok(false);
        }
        if read == seen {
            // Nothing new yet: peek returns at once while old bytes wait.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        seen = read;
    };
    tcp.write_all(&response).await?;
    tcp.shutdown().await?;
    // Read what the client sent (our peeked request, anything after it) until it
    // closes too: closing with unread bytes would reset the connection and could
    // cut the response short. Bounded in time and bytes.
    let drain = async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match tcp.read(&mut head).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
    Ok(true)
}

/// Serve one accepted TCP connection until it closes.
pub(super) async fn serve(
    guard: ConnGuard,
    mut tcp: TcpStream,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::clone(&guard.shared);
    let config = &shared.config;
    let _ = tcp.set_nodelay(true);
    if let Some(files) = &config.web_files {
        let answered = tokio::time::timeout(config.handshake_timeout, serve_file(&mut tcp, files));
        match answered.await {
            Ok(Ok(true)) => return,
            Ok(Ok(false)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
    let now = Instant::now();
    let byte_burst = config
        .rate_limit_bytes_burst
        .max(u32::try_from(config.max_frame_size).unwrap_or(u32::MAX));
    let bytes = TokenBucket::new(byte_burst, config.rate_limit_bytes_per_sec, now);
    let stream = MeteredStream::new(tcp, bytes, Arc::clone(&shared.unfinished));
    let handshake = tokio_tungstenite::accept_async_with_config(stream, Some(shared.ws_config));
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
    // The HTTP upgrade request is not part of any message.
    let mut ws = ws;
    ws.get_mut().message_complete();
    let now = Instant::now();
    let mut conn = Connection {
        guard,
        ws,
        messages: TokenBucket::new(config.rate_limit_burst, config.rate_limit_per_sec, now),
        flood: LeakyCounter::new(config.rate_limit_per_sec, now),
        dropping: false,
        joins: TokenBucket::per_minute(JOIN_BURST, config.joins_per_minute, now),
        turn: None,
        mine: Vec::new(),
        ping_due: false,
        answer_by: None,
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
            () = wake.notified() => conn.take_queued(),
            frame = conn.ws.next() => {
                let now = Instant::now();
                match frame {
                    Some(Ok(msg)) => {
                        // Any frame answers a probe (browsers and WebSocket
                        // libraries answer pings by themselves).
                        conn.answer_by = None;
                        if conn.count_activity(&msg) {
                            last_heard = now;
                        }
                        conn.on_frame(msg, now)
                    }
                    Some(Err(e)) => match conn.read_error(e) {
                        Some(flow) => flow,
                        None => break,
                    },
                    None => break,
                }
            }
            () = sleep_until_some(conn.answer_by) => {
                // A rejoin asked for this seat and the client did not answer: its
                // network is gone. Closing it holds the seat for the rejoiner.
                tracing::debug!(conn = conn.guard.id, "signaling: probed connection did not answer");
                shared.lock().probes_failed += 1;
                break;
            }
            () = &mut idle => {
                if last_heard.elapsed() >= config.idle_timeout {
                    Flow::Close(
                        ErrorCode::IdleTimeout,
                        CloseCode::Policy,
                        format!("no complete message received for {:?}", config.idle_timeout),
                    )
                } else {
                    idle.as_mut().reset(last_heard + config.idle_timeout);
                    Flow::Continue
                }
            }
        };
        match flow {
            Flow::Continue => match conn.flush(config.write_timeout).await {
                Written::All => {}
                Written::Broken => break,
                Written::Stalled => {
                    tracing::debug!(
                        conn = conn.guard.id,
                        "signaling: closing a connection that did not read for {:?}",
                        config.write_timeout
                    );
                    shared.lock().too_slow += 1;
                    break;
                }
            },
            Flow::Close(code, close_code, message) => {
                tracing::debug!(conn = conn.guard.id, %code, "signaling: closing connection: {message}");
                conn.mine.push(Utf8Bytes::from(
                    ServerMessage::error(code, message).to_json(),
                ));
                if conn.flush(config.write_timeout).await == Written::All {
                    conn.close(close_code, code.as_str(), config.write_timeout)
                        .await;
                }
                break;
            }
        }
    }
}

impl Connection {
    /// Move what the rooms queued for this connection into `mine`; a connection
    /// whose queue was taken away (too slow) is closed.
    fn take_queued(&mut self) -> Flow {
        let shared = Arc::clone(&self.guard.shared);
        let mut state = shared.lock();
        match state.conns.get_mut(&self.guard.id) {
            Some(queue) => {
                queue.take(&mut self.mine, BATCH_FRAMES, shared.queue_limits.bytes);
                if queue.take_probe() && self.answer_by.is_none() {
                    self.ping_due = true;
                }
                Flow::Continue
            }
            None => Flow::Close(
                ErrorCode::TooSlow,
                CloseCode::Policy,
                "messages were not read fast enough".into(),
            ),
        }
    }

    /// Keep the unfinished-input count right; true when `msg` counts as activity
    /// (a complete data message: pings and pongs do not keep a connection open).
    fn count_activity(&mut self, msg: &Message) -> bool {
        let stream = self.ws.get_mut();
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                stream.message_complete();
                true
            }
            Message::Ping(payload) | Message::Pong(payload) => {
                stream.control_frame(payload.len());
                false
            }
            Message::Close(_) | Message::Frame(_) => false,
        }
    }

    /// What to do about a read error: close with an error where the client can
    /// still be told why, `None` to drop the connection at once.
    fn read_error(&mut self, error: WsError) -> Option<Flow> {
        let stream = self.ws.get_ref();
        if stream.over_budget() {
            return Some(Flow::Close(
                ErrorCode::ServerFull,
                CloseCode::Again,
                format!(
                    "the server holds too much unfinished input; this connection's {} bytes \
                     are over the 4 KiB it may always hold",
                    stream.unfinished()
                ),
            ));
        }
        match error {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                Some(Flow::Close(
                    ErrorCode::TooLarge,
                    CloseCode::Size,
                    format!("frame of {size} bytes exceeds the limit of {max_size}"),
                ))
            }
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
            WsError::Protocol(violation) => Some(Flow::Close(
                ErrorCode::ProtocolViolation,
                CloseCode::Protocol,
                format!("websocket protocol violation: {violation}"),
            )),
            WsError::Utf8(_) => Some(Flow::Close(
                ErrorCode::ProtocolViolation,
                CloseCode::Invalid,
                "text frame is not valid UTF-8".into(),
            )),
            _ => None,
        }
    }

    fn on_frame(&mut self, msg: Message, now: Instant) -> Flow {
        if let Message::Close(_) = msg {
            // tungstenite answers the close; the next read ends the stream.
            return Flow::Continue;
        }
        if !self.messages.try_take(now) {
            let config = &self.guard.shared.config;
            let level = self.flood.add(now);
            if level > f64::from(config.rate_limit_burst.max(1)) {
                return Flow::Close(
                    ErrorCode::RateLimited,
                    CloseCode::Policy,
                    "kept sending over the rate limit".into(),
                );
            }
            if !self.dropping {
                self.dropping = true;
                self.push_error(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} messages/s; message dropped",
                        config.rate_limit_per_sec
                    ),
                );
            }
            return Flow::Continue;
        }
        self.dropping = false;
        match msg {
            Message::Text(text) => self.on_text(&text, now),
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

    fn on_text(&mut self, text: &str, now: Instant) -> Flow {
        let msg = match ClientMessage::from_json(text) {
            Ok(msg) => msg,
            Err(e) => {
                self.push_error(e.code(), e.to_string());
                return Flow::Continue;
            }
        };
        let shared = Arc::clone(&self.guard.shared);
        let id = self.guard.id;
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
                spectator_secret,
                no_spectators,
                rejoin_token,
                start_with,
                resume,
            } => {
                if let Some(expected) = &shared.config.room_token {
                    if !token.is_some_and(|given| secrets_match(expected, &given)) {
                        return Flow::Close(
                            ErrorCode::Unauthorized,
                            CloseCode::Policy,
                            "missing or wrong room token".into(),
                        );
                    }
                }
                if !self.joins.try_take(now) {
                    self.push_error(
                        ErrorCode::RateLimited,
                        format!(
                            "more than {} joins/minute; join dropped",
                            shared.config.joins_per_minute
                        ),
                    );
                    return Flow::Continue;
                }
                let request = JoinRequest {
                    version,
                    name: room,
                    players,
                    secret: room_secret,
                    spectator,
                    spectator_secret,
                    no_spectators,
                    turn: self.turn_credential(),
                    fresh_token: (rejoin_token.is_none() && !spectator)
                        .then(new_rejoin_token)
                        .flatten(),
                    resume: resume && rejoin_token.is_some(),
                    rejoin_token,
                    start_with,
                    received_at: now.into_std(),
                };
                let mut state = shared.lock();
                if !state.conns.contains_key(&id) {
                    return Flow::Continue; // being closed as too slow
                }
                let res = state.join(id, request, &mut self.mine, &shared);
                if res.is_err() {
                    // A refused join changes nothing: it costs only the message rate.
                    self.joins.refund();
                }
                res
            }
            ClientMessage::Signal { to, data } => {
                let limit = shared.config.max_frame_size.saturating_sub(SIGNAL_HEADROOM);
                if text.len() > limit {
                    Err((
                        ErrorCode::TooLarge,
                        format!(
                            "a signal may be at most {limit} bytes (the frame limit minus \
                             {SIGNAL_HEADROOM}); this one was {} and was dropped",
                            text.len()
                        ),
                    ))
                } else {
                    shared.lock().relay(id, to, data, &mut self.mine, &shared)
                }
            }
            ClientMessage::Leave => shared.lock().leave(id, &mut self.mine, &shared),
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

    /// This connection's TURN credential (made on its first join, made anew once
    /// less than half its lifetime is left), if the server hands them out.
    fn turn_credential(&mut self) -> Option<IceServer> {
        let turn = self.guard.shared.config.turn.as_ref()?;
        let now = SystemTime::now();
        let fresh = self.turn.as_ref().is_some_and(|cached| {
            cached
                .expiry
                .duration_since(now)
                .is_ok_and(|left| left >= turn.ttl / 2)
        });
        if !fresh {
            let (server, expiry) = turn.credentials(&client_nonce(), now);
            self.turn = Some(CachedTurn { server, expiry });
        }
        self.turn.as_ref().map(|cached| cached.server.clone())
    }

    fn push_error(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.mine.push(error_frame(code, &message.into()));
    }

    /// Write every pending frame, waiting at most `limit`.
    async fn flush(&mut self, limit: Duration) -> Written {
        if self.mine.is_empty() && !self.ping_due {
            return Written::All;
        }
        let ping = std::mem::take(&mut self.ping_due);
        if ping {
            self.answer_by = Some(Instant::now() + PROBE_TIMEOUT);
        }
        let ws = &mut self.ws;
        let frames = self.mine.drain(..);
        let write = async move {
            if ping {
                ws.feed(Message::Ping(Default::default())).await?;
            }
            for text in frames {
                ws.feed(Message::Text(text)).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => Written::All,
            Ok(Err(_)) => Written::Broken,
            Err(_) => Written::Stalled,
        }
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
        let tcp = self.ws.get_mut().tcp_mut();
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

/// A fresh rejoin token: 128 random bits as 32 hex digits. `None` (no token, so no
/// rejoin) if the OS has no random source: a guessable token would let anyone
/// take a dropped player's seat.
fn new_rejoin_token() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh random id for one client's TURN user name (16 hex digits). Falls back
/// to the time (still distinct per call within a process) if the OS has no
/// random source.
fn client_nonce() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let random = getrandom::u64().unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        (nanos as u64) ^ COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    });
    format!("{random:016x}")
}

/// Sleep until `at`, or forever when there is no `at`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
