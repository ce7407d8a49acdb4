//! The embeddable signaling server: a tokio WebSocket server with rooms,
//! N-player matchmaking, relay of offers/answers/candidates within a room, and
//! limits against bad or abusive clients.
//!
//! One task per connection (`connection.rs`); the room state (`rooms.rs`, free of
//! sockets) sits behind one mutex and is only touched for short, non-blocking
//! operations. Every limit a client can run into is listed in `docs/signaling.md`:
//!
//! - each connection's outgoing queue is bounded (`outgoing.rs`): a signal for a
//!   recipient whose queue is full is dropped and its *sender* told (`peer_busy`);
//!   only a recipient that has not emptied its queue for the write timeout is
//!   disconnected (`too_slow`);
//! - each connection's input is throttled by bytes and limited by messages and
//!   joins; unfinished messages count against a server-wide budget
//!   (`metered_stream.rs`), and only complete messages count as activity;
//! - connections are limited in total (never above what the open-file limit
//!   allows) and per IPv4 address or IPv6 prefix (`ip_group.rs`).

#[cfg(feature = "cluster")]
mod broker;
mod cluster_ops;
mod connection;
mod ip_group;
mod metered_stream;
mod outgoing;
mod web_files;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, ToSocketAddrs};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::cluster::table::ClusterTable;
use super::cluster::{ClusterConfig, ClusterStats};
use super::protocol::{ErrorCode, IceServer, ServerMessage, MAX_PLAYERS};
use super::rooms::{ConnId, Outbox, Rooms};
use super::turn_credentials::TurnConfig;
use super::SignalingError;
use connection::ConnGuard;
use ip_group::IpGroup;
use metered_stream::UnfinishedBudget;
use outgoing::{OutgoingQueue, QueueLimits, Refused};
pub use web_files::{WebFiles, MAX_WEB_FILES_BYTES};

/// Listen backlog: room for bursts of new connections (the kernel caps it at
/// `net.core.somaxconn`); tokio's default is 1024.
const LISTEN_BACKLOG: u32 = 4096;

/// File descriptors kept free for everything but client connections (the
/// listener, the runtime, log files, an embedding game's own sockets).
const FD_RESERVE: u64 = 64;

/// Limits and settings of a [`SignalingServer`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted WebSocket frame/message, in bytes. A larger frame gets a
    /// `too_large` error and the connection is closed (code 1009). A `signal` may
    /// be at most this minus [`SIGNAL_HEADROOM`] bytes, so that its relayed form
    /// (`"from":N` instead of `"to":M`) always fits the recipient's limit.
    pub max_frame_size: usize,
    /// Messages a connection may send at once before the rate limit applies.
    pub rate_limit_burst: u32,
    /// Messages per second a connection may send on average. Messages beyond the
    /// limit are dropped with one `rate_limited` error; a client that keeps
    /// sending over the limit (its dropped messages, draining at this rate, add
    /// up to `rate_limit_burst`) is closed.
    pub rate_limit_per_sec: u32,
    /// Bytes per second a connection's input is read at, at most, on average
    /// (WebSocket framing included). A faster client is slowed down, not closed.
    pub rate_limit_bytes_per_sec: u32,
    /// Bytes a connection may send at once before the byte rate applies (at least
    /// `max_frame_size`).
    pub rate_limit_bytes_burst: u32,
    /// `join`s a connection may send per minute on average (after a burst of
    /// [`JOIN_BURST`]); more get `rate_limited`. Bounds room churn and the TURN
    /// credentials one connection can obtain.
    pub joins_per_minute: u32,
    /// Largest room size (at most 8).
    pub max_peers_per_room: u8,
    /// Most rooms (open and full) at once; a join that needs a new room beyond this
    /// gets `server_full`.
    pub max_rooms: usize,
    /// Most WebSocket connections at once; further TCP connections get an HTTP 503.
    /// Lowered at start to what the process's open-file limit allows.
    pub max_connections: usize,
    /// Most connections from one IPv4 address or IPv6 prefix; further ones get an
    /// HTTP 503.
    pub max_connections_per_ip: usize,
    /// IPv6 clients count per prefix of this many bits for
    /// `max_connections_per_ip` (64: one subscriber's network; 128: per address).
    pub ipv6_prefix_len: u8,
    /// A connection that completes no message for this long is closed
    /// (`idle_timeout`). Clients send `ping` to stay connected; WebSocket ping
    /// frames and the pieces of an unfinished message do not count.
    pub idle_timeout: Duration,
    /// Deadline for the WebSocket handshake after the TCP accept.
    pub handshake_timeout: Duration,
    /// Deadline for writing to a client; a client that does not read for this long
    /// is closed (`too_slow`).
    pub write_timeout: Duration,
    /// Relayed signals queued for one connection at most; further signals to it
    /// are refused to their sender with `peer_busy`.
    pub outgoing_queue: usize,
    /// Bytes of relayed signals queued for one connection at most.
    pub outgoing_queue_bytes: usize,
    /// Bytes of unfinished messages (frames of a message whose last frame has not
    /// arrived) all connections together may hold. When it is used up, a
    /// connection holding more than 4 KiB of an unfinished message is closed
    /// (`server_full`, code 1013); smaller messages still get through.
    pub max_unfinished_bytes: usize,
    /// When set, `join` must carry this token (else `unauthorized` and close).
    pub room_token: Option<String>,
    /// ICE servers handed to every client in `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// A TURN server with time-limited credentials: every `welcome` then carries
    /// one more ICE server with a user name and password made for that client.
    pub turn: Option<TurnConfig>,
    /// One match per room name: while a room's match is on, further joiners of that
    /// name get `room_full` (instead of starting the next match of that name).
    pub exclusive_rooms: bool,
    /// Most spectators per room; further ones get `room_full`.
    pub max_spectators_per_room: usize,
    /// Admit spectators only to rooms whose creator set a spectator secret.
    pub require_spectator_secret: bool,
    /// How long a player's seat is held after its connection is lost mid-match:
    /// a `join` with its rejoin token takes the seat back meanwhile. Zero: no
    /// seats are held and no rejoin tokens handed out. At most 24 hours (longer
    /// is cut to that).
    pub seat_grace: std::time::Duration,
    /// Static files (a web game's page, script and wasm) served over plain HTTP on
    /// the signaling port: a request that is not a WebSocket upgrade gets one of
    /// these (`/` is `/index.html`) or a 404, and its connection closes. `None`:
    /// such requests fail the WebSocket handshake.
    pub web_files: Option<Arc<WebFiles>>,
    /// Share rooms with other servers (nodes) through a NATS server: clients
    /// may connect to any node and still meet (see `docs/cluster.md`). Every
    /// node of a cluster must run with the same room settings. Needs the
    /// `cluster` feature. `None`: a lone server.
    pub cluster: Option<ClusterConfig>,
}

/// Bytes a `signal` frame must stay below `max_frame_size`: the relayed form
/// names the sender (`"from":4294967295`) where the sent one named the
/// recipient (`"to":1`).
pub const SIGNAL_HEADROOM: usize = 64;

/// `join`s a connection may send at once before `joins_per_minute` applies.
pub const JOIN_BURST: u32 = 5;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_frame_size: 64 * 1024,
            rate_limit_burst: 200,
            rate_limit_per_sec: 50,
            rate_limit_bytes_per_sec: 64 * 1024,
            rate_limit_bytes_burst: 256 * 1024,
            joins_per_minute: 30,
            max_peers_per_room: MAX_PLAYERS,
            max_rooms: 50_000,
            max_connections: 100_000,
            max_connections_per_ip: 64,
            ipv6_prefix_len: 64,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            outgoing_queue: 64,
            outgoing_queue_bytes: 256 * 1024,
            max_unfinished_bytes: 64 * 1024 * 1024,
            room_token: None,
            ice_servers: Vec::new(),
            turn: None,
            exclusive_rooms: false,
            max_spectators_per_room: 8,
            require_spectator_secret: false,
            seat_grace: std::time::Duration::from_secs(60),
            web_files: None,
            cluster: None,
        }
    }
}

/// A snapshot of what the server holds and has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Open connections (accepted TCP connections, handshaken or not).
    pub connections: usize,
    /// The connection limit in force (`max_connections`, lowered to what the
    /// open-file limit allows).
    pub max_connections: usize,
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
    /// Signals dropped because their recipient's queue was full (`peer_busy`).
    pub signals_dropped: u64,
    /// Connections closed as lost because they did not answer the ping sent
    /// when a rejoin asked for their seat (their network had gone).
    pub probes_failed: u64,
    /// Bytes of unfinished messages held by all connections now.
    pub unfinished_bytes: usize,
    /// Signals relayed since start (to clients of this server).
    pub signals_relayed: u64,
    /// The cluster, when this server is one node of one.
    pub cluster: Option<ClusterStats>,
}

/// A running signaling server. Runs on the tokio runtime it was bound in; stops
/// (closing every connection with code 1001) when dropped, on
/// [`SignalingServer::shutdown`], or gracefully on
/// [`SignalingServer::shutdown_gracefully`].
#[derive(Debug)]
pub struct SignalingServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    /// `config.max_connections`, lowered to what the open-file limit allows.
    max_connections: usize,
    ws_config: WebSocketConfig,
    queue_limits: QueueLimits,
    unfinished: Arc<UnfinishedBudget>,
    state: Mutex<State>,
    /// Notified whenever a connection ends (graceful shutdown waits on it).
    conn_closed: Notify,
    /// Wakes the cluster's broker task: messages or questions for the broker.
    broker_wake: Notify,
}

#[derive(Debug)]
struct State {
    rooms: Rooms,
    /// Outgoing queue of every open connection. Removing an entry makes the
    /// connection's task close it (`too_slow`).
    conns: HashMap<ConnId, OutgoingQueue>,
    per_ip: HashMap<IpGroup, usize>,
    next_conn: ConnId,
    rejected: u64,
    too_slow: u64,
    signals_dropped: u64,
    probes_failed: u64,
    signals_relayed: u64,
    /// The cluster's tables (`None`: a lone server).
    cluster: Option<ClusterTable>,
    /// Remote members that got frames during the current operation (their
    /// membership may have ended).
    touched: Vec<ConnId>,
}

impl SignalingServer {
    /// Bind to `addr` (e.g. `127.0.0.1:0`) and start serving on the current tokio
    /// runtime.
    ///
    /// `max_connections` is lowered to the process's open-file limit minus a
    /// reserve of 64 (logged at `warn`), so that a client over the limit gets an
    /// HTTP 503 instead of a connection that `accept` cannot take.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
    ) -> Result<SignalingServer, SignalingError> {
        let listener = listen(addr).await?;
        let local_addr = listener.local_addr()?;
        let frame = config.max_frame_size.max(1);
        let queue_limits = QueueLimits {
            frames: config.outgoing_queue.max(1),
            bytes: config.outgoing_queue_bytes.max(frame),
        };
        // Small buffers keep an idle connection cheap: tungstenite's defaults
        // allocate a 128 KiB read buffer per socket. The write buffer holds at
        // most one batch of queued frames plus the connection's own replies.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_write_buffer_size(queue_limits.bytes + frame * 2 + 64 * 1024)
            .max_message_size(Some(frame))
            .max_frame_size(Some(frame));
        let max_connections = clamp_to_open_file_limit(config.max_connections);
        let max_players = config.max_peers_per_room.min(MAX_PLAYERS);
        let mut rooms = Rooms::new(config.max_rooms, max_players, config.ice_servers.clone());
        rooms.set_exclusive(config.exclusive_rooms);
        rooms.set_max_spectators(config.max_spectators_per_room);
        rooms.set_require_spectator_secret(config.require_spectator_secret);
        rooms.set_seat_grace(config.seat_grace);
        let cluster = match &config.cluster {
            Some(cluster) => Some(cluster_ops::cluster_table(cluster)?),
            None => None,
        };
        let state = State {
            rooms,
            conns: HashMap::new(),
            per_ip: HashMap::new(),
            next_conn: 0,
            rejected: 0,
            too_slow: 0,
            signals_dropped: 0,
            probes_failed: 0,
            signals_relayed: 0,
            cluster,
            touched: Vec::new(),
        };
        let shared = Arc::new(Shared {
            unfinished: Arc::new(UnfinishedBudget::new(config.max_unfinished_bytes)),
            config,
            max_connections,
            ws_config,
            queue_limits,
            state: Mutex::new(state),
            conn_closed: Notify::new(),
            broker_wake: Notify::new(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        #[cfg(feature = "cluster")]
        if let Some(cluster) = shared.config.cluster.clone() {
            broker::start(Arc::clone(&shared), cluster, shutdown_rx.clone()).await?;
        }
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
            max_connections: self.shared.max_connections,
            rooms: rooms.rooms,
            open_rooms: rooms.open_rooms,
            peers: rooms.members,
            rooms_created: rooms.created,
            rooms_freed: rooms.freed,
            rejected_connections: state.rejected,
            too_slow: state.too_slow,
            signals_dropped: state.signals_dropped,
            probes_failed: state.probes_failed,
            unfinished_bytes: self.shared.unfinished.held(),
            signals_relayed: state.signals_relayed,
            cluster: state
                .cluster
                .as_ref()
                .map(|cluster| cluster.stats(Instant::now())),
        }
    }

    /// Stop accepting and close every connection (also done on drop). The
    /// connections' tasks send their close frames in the background.
    pub fn shutdown(self) {}

    /// Stop accepting, close every connection with code 1001 ("going away") and
    /// wait until they are all closed, or `timeout` has passed. Returns the number
    /// of connections still open at the end (0 when all closed in time).
    pub async fn shutdown_gracefully(self, timeout: Duration) -> usize {
        let _ = self.shutdown.send(true);
        let deadline = Instant::now() + timeout;
        loop {
            let closed = self.shared.conn_closed.notified();
            let open = self.shared.lock().conns.len();
            if open == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                return self.shared.lock().conns.len();
            }
        }
    }
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
    /// Deliver `out` on behalf of connection `me`: frames for `me` go to `mine`
    /// (written by the caller), the others into their connection's queue (or,
    /// for members on other nodes of a cluster, to the broker).
    ///
    /// A signal (only ever sent by `me`) to a full queue is dropped and `me` gets
    /// `peer_busy`; the recipient is disconnected only when its queue has been full
    /// for `write_timeout` without being read. A room event to a queue whose
    /// reserve is used up disconnects that connection, which may in turn announce
    /// `peer_left` to its room.
    fn deliver(&mut self, me: ConnId, out: Outbox, mine: &mut Vec<Utf8Bytes>, shared: &Shared) {
        let now = Instant::now();
        let mut work: VecDeque<_> = out.into();
        while let Some((to, msg)) = work.pop_front() {
            let relay = matches!(msg, ServerMessage::Signal { .. });
            let text = Utf8Bytes::from(msg.to_json());
            if to == me {
                mine.push(text);
                continue;
            }
            if relay && text.len() > shared.config.max_frame_size {
                // Cannot happen for signals within the sender's limit; a safety net
                // so that nothing relayed exceeds what clients accept.
                mine.push(error_frame(
                    ErrorCode::TooLarge,
                    "the relayed signal would exceed the frame size limit",
                ));
                continue;
            }
            if !self.conns.contains_key(&to) {
                self.deliver_remote(me, to, text, relay);
                continue;
            }
            match self.queue_frame(to, text, relay, now, shared) {
                Queued::Yes => {}
                Queued::Busy => mine.push(peer_busy_frame()),
                Queued::Lost { busy } => {
                    if busy {
                        mine.push(peer_busy_frame());
                    }
                    let mut more = Vec::new();
                    let _ = self
                        .rooms
                        .disconnect(to, std::time::Instant::now(), &mut more);
                    work.extend(more);
                }
            }
        }
    }

    /// Put a frame into connection `to`'s queue (which exists). A signal to a
    /// full queue is refused (`Busy`); a queue stuck for the write timeout or
    /// over its reserve is taken away, which closes its connection (`Lost`: the
    /// caller takes it out of its room).
    fn queue_frame(
        &mut self,
        to: ConnId,
        text: Utf8Bytes,
        relay: bool,
        now: Instant,
        shared: &Shared,
    ) -> Queued {
        let Some(queue) = self.conns.get_mut(&to) else {
            return Queued::Yes;
        };
        let limits = shared.queue_limits;
        let pushed = if relay {
            queue.push_relay(text, limits, now)
        } else {
            queue.push_control(text, limits, now)
        };
        let stuck = queue.stuck_for(now) >= shared.config.write_timeout;
        let busy = match pushed {
            Ok(()) => {
                if relay {
                    self.signals_relayed += 1;
                }
                return Queued::Yes;
            }
            Err(Refused::Full) => {
                self.signals_dropped += 1;
                if !stuck {
                    return Queued::Busy;
                }
                true
            }
            Err(Refused::Overflow) => false,
        };
        if let Some(queue) = self.conns.remove(&to) {
            queue.wake();
        }
        self.too_slow += 1;
        Queued::Lost { busy }
    }

    /// Forget a closed connection: leave its room, release its IP slot.
    fn remove(&mut self, id: ConnId, ip: IpGroup, shared: &Shared) {
        self.conns.remove(&id);
        self.client_gone(id, shared);
        let mut out = Vec::new();
        if self
            .rooms
            .disconnect(id, std::time::Instant::now(), &mut out)
            .is_ok()
        {
            self.deliver(id, out, &mut Vec::new(), shared);
        }
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// What became of a frame for a connection's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    Yes,
    /// A signal to a full queue: dropped, its sender gets `peer_busy`.
    Busy,
    /// The connection did not read for too long and is being closed (`busy`:
    /// the frame was a signal whose sender gets `peer_busy`).
    Lost {
        busy: bool,
    },
}

/// The `peer_busy` error for a signal's sender.
fn peer_busy_frame() -> Utf8Bytes {
    error_frame(
        ErrorCode::PeerBusy,
        "the recipient has too many messages queued; signal dropped",
    )
}

/// One `error` frame.
fn error_frame(code: ErrorCode, message: &str) -> Utf8Bytes {
    Utf8Bytes::from(ServerMessage::error(code, message).to_json())
}

/// `wanted`, lowered to the open-file limit minus [`FD_RESERVE`] (and said so).
fn clamp_to_open_file_limit(wanted: usize) -> usize {
    let Some(limit) = open_file_limit() else {
        return wanted;
    };
    let usable = if limit > 2 * FD_RESERVE {
        limit - FD_RESERVE
    } else {
        limit / 2
    };
    let usable = usize::try_from(usable).unwrap_or(usize::MAX).max(1);
    if usable < wanted {
        tracing::warn!(
            "signaling: max_connections lowered from {wanted} to {usable}: the open-file \
             limit is {limit} (raise it with `ulimit -n` or LimitNOFILE= to serve more)"
        );
        usable
    } else {
        wanted
    }
}

/// The process's current (soft) limit on open files, where the OS has one.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
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

/// How often a failing `accept` is logged at most.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut accept_failures = 0u64;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (tcp, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and similar: back off briefly instead of
                // spinning, and log it now and then rather than every time.
                accept_failures += 1;
                if last_warning.is_none_or(|at| at.elapsed() >= ACCEPT_WARN_EVERY) {
                    tracing::warn!(
                        "signaling: accept failed ({accept_failures} times so far): {e}"
                    );
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let ip = IpGroup::of(addr.ip(), shared.config.ipv6_prefix_len);
        let admitted = {
            let mut state = shared.lock();
            let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
            if state.conns.len() >= shared.max_connections
                || from_ip >= shared.config.max_connections_per_ip
            {
                state.rejected += 1;
                None
            } else {
                let id = state.next_conn;
                state.next_conn += 1;
                let wake = Arc::new(Notify::new());
                state
                    .conns
                    .insert(id, OutgoingQueue::new(Arc::clone(&wake)));
                *state.per_ip.entry(ip).or_insert(0) += 1;
                Some((id, wake))
            }
        };
        match admitted {
            Some((id, wake)) => {
                let guard = ConnGuard::new(Arc::clone(&shared), id, ip);
                tokio::spawn(connection::serve(guard, tcp, wake, shutdown.clone()));
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
