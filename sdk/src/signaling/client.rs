//! The native signaling client: one WebSocket connection to a signaling server,
//! driven by a tokio task. What is sent and expected is decided by the sans-IO
//! [`ClientProtocol`]; this file only moves frames and keeps time.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::client_protocol::{ClientProtocol, ClientStep, ClientTick, ClientTimers};
use super::protocol::{
    ClientMessage, PeerId, ServerMessage, SignalData, Welcome, PROTOCOL_VERSION,
};
use super::SignalingError;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Tunables of a [`SignalingClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How often the client sends `ping` (keeps the server's idle timer happy).
    pub keepalive_interval: Duration,
    /// The connection counts as dead when nothing arrived from the server for this
    /// long (checked at each keepalive tick); the client then closes it.
    pub dead_after: Duration,
    /// After [`SignalingClient::probe`]: the connection counts as dead when
    /// nothing arrived from the server for this long. Long enough for TCP to
    /// carry the ping through a network outage of several seconds (its
    /// retransmissions back off: 0.2 s, 0.4 s, 0.8 s, ...), so that a link
    /// restart can still use the connection afterwards.
    pub probe_timeout: Duration,
    /// Deadline for connecting and receiving `welcome`.
    pub join_timeout: Duration,
    /// Capacity of the outgoing and the event queue.
    pub queue_capacity: usize,
    /// Largest frame accepted from the server, in bytes.
    pub max_frame_size: usize,
    /// Private-room secret sent with `join`: only joiners with the same secret are
    /// matched together.
    pub room_secret: Option<String>,
    /// Join as a spectator (see [`ClientMessage::Join`]). A server that does not
    /// know spectators makes the client a player; [`SignalingClient::join`] then
    /// fails with [`SignalingError::Protocol`] rather than take a player's seat.
    pub spectator: bool,
    /// As a spectator: the secret the room's creator set. As the player who
    /// creates a room: the secret spectators must give to watch it.
    pub spectator_secret: Option<String>,
    /// As the player who creates a room: admit no spectators at all.
    pub no_spectators: bool,
    /// Take a held seat back (the `rejoin_token` of an earlier `welcome`).
    pub rejoin_token: Option<String>,
    /// Drop-in room: the match starts with this many players; later joiners
    /// take the free seats while it runs (see [`ClientMessage::Join`]).
    pub start_with: Option<u8>,
    /// With `rejoin_token`: only our signaling connection is replaced; our
    /// WebRTC connections stay (see [`ClientMessage::Join`]).
    pub resume: bool,
}

impl ClientConfig {
    /// The protocol's timers.
    fn timers(&self) -> ClientTimers {
        ClientTimers {
            keepalive_interval: self.keepalive_interval,
            dead_after: self.dead_after,
            probe_timeout: self.probe_timeout,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            keepalive_interval: Duration::from_secs(10),
            dead_after: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            queue_capacity: 256,
            max_frame_size: 64 * 1024,
            room_secret: None,
            spectator: false,
            spectator_secret: None,
            no_spectators: false,
            rejoin_token: None,
            start_with: None,
            resume: false,
        }
    }
}

/// A joined connection to a signaling server.
///
/// Owns a tokio task that reads and writes the WebSocket and sends keepalive
/// pings. Dropping the client closes the WebSocket.
#[derive(Debug)]
pub struct SignalingClient {
    outgoing: mpsc::Sender<ClientMessage>,
    events: mpsc::Receiver<ServerMessage>,
}

impl SignalingClient {
    /// Connect to `url` (`ws://host:port/...`), send `join`, wait for `welcome`.
    ///
    /// Must be called inside a tokio runtime. Fails with
    /// [`SignalingError::Refused`] when the server answers the join with an error.
    pub async fn join(
        url: &str,
        room: &str,
        players: u8,
        token: Option<String>,
    ) -> Result<(SignalingClient, Welcome), SignalingError> {
        Self::join_with_config(url, room, players, token, ClientConfig::default()).await
    }

    /// [`SignalingClient::join`] with explicit tunables.
    pub async fn join_with_config(
        url: &str,
        room: &str,
        players: u8,
        token: Option<String>,
        config: ClientConfig,
    ) -> Result<(SignalingClient, Welcome), SignalingError> {
        if !url.starts_with("ws://") {
            return Err(SignalingError::BadUrl(url.to_owned()));
        }
        let join = ClientMessage::Join {
            version: PROTOCOL_VERSION,
            room: room.to_owned(),
            players,
            token,
            room_secret: config.room_secret.clone(),
            spectator: config.spectator,
            spectator_secret: config.spectator_secret.clone(),
            no_spectators: config.no_spectators,
            rejoin_token: config.rejoin_token.clone(),
            start_with: config.start_with,
            resume: config.resume,
        };
        let (ws, welcome, protocol) =
            tokio::time::timeout(config.join_timeout, connect_and_join(url, join, &config))
                .await
                .map_err(|_| SignalingError::Timeout)??;
        let capacity = config.queue_capacity.max(1);
        let (out_tx, out_rx) = mpsc::channel(capacity);
        let (ev_tx, ev_rx) = mpsc::channel(capacity);
        tokio::spawn(run(ws, protocol, out_rx, ev_tx));
        Ok((
            SignalingClient {
                outgoing: out_tx,
                events: ev_rx,
            },
            welcome,
        ))
    }

    /// Queue a signal for the room member `to` (non-blocking).
    pub fn signal(&self, to: PeerId, data: SignalData) -> Result<(), SignalingError> {
        self.send(ClientMessage::Signal { to, data })
    }

    /// Check that the server is still there: a `ping` now, and the connection is
    /// closed (so [`next_event`](Self::next_event) ends) if nothing arrives within
    /// [`ClientConfig::probe_timeout`] — or at once if the local address the
    /// connection was made from is no longer on this machine (the network
    /// changed: the connection can never carry anything again). For when
    /// something else suggests that the network went away (the socket probes when
    /// a peer link stalls).
    pub fn probe(&self) -> Result<(), SignalingError> {
        self.send(ClientMessage::Ping)
    }

    /// Queue a `leave`: the server announces `peer_left` to the other members.
    pub fn leave(&self) -> Result<(), SignalingError> {
        self.send(ClientMessage::Leave)
    }

    fn send(&self, msg: ClientMessage) -> Result<(), SignalingError> {
        self.outgoing.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SignalingError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SignalingError::Closed,
        })
    }

    /// Next server event (`room_full`, `signal`, `peer_joined`, `peer_left`,
    /// `error`); `None` once the connection is closed. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<ServerMessage> {
        self.events.recv().await
    }

    /// The next event if one has already arrived (never waits).
    pub fn try_next_event(&mut self) -> Option<ServerMessage> {
        self.events.try_recv().ok()
    }
}

/// The protocol's clock: time since the connection task's epoch.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> Duration {
        self.0.elapsed()
    }
}

async fn connect_and_join(
    url: &str,
    join: ClientMessage,
    config: &ClientConfig,
) -> Result<(Ws, Welcome, (ClientProtocol, Clock)), SignalingError> {
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_frame_size))
        .max_frame_size(Some(config.max_frame_size));
    let (mut ws, _response) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true)
            .await
            .map_err(ws_error)?;
    let clock = Clock(Instant::now());
    let (mut protocol, first) = ClientProtocol::new(&join, config.timers(), clock.now());
    ws.send(Message::text(first)).await.map_err(ws_error)?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match protocol.on_text(clock.now(), &text) {
                ClientStep::Welcome(welcome) => return Ok((ws, welcome, (protocol, clock))),
                ClientStep::Failed(error) => {
                    let _ = ws.close(None).await;
                    return Err(error);
                }
                ClientStep::Event(_) | ClientStep::Nothing => {}
            },
            Some(Ok(Message::Close(_))) | None => return Err(SignalingError::Closed),
            Some(Ok(_)) => protocol.on_other_frame(clock.now()),
            Some(Err(e)) => return Err(ws_error(e)),
        }
    }
}

/// Whether the address our connection was made from has gone from this machine
/// (a new network, a new address): nothing sent from it can arrive any more.
fn local_address_gone(ws: &Ws) -> bool {
    let MaybeTlsStream::Plain(tcp) = ws.get_ref() else {
        return false;
    };
    let Ok(local) = tcp.local_addr() else {
        return false;
    };
    let gone = matches!(
        std::net::UdpSocket::bind(std::net::SocketAddr::new(local.ip(), 0)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable
    );
    if gone {
        tracing::warn!(
            "signaling: our address {} is gone (the network changed), closing",
            local.ip()
        );
    }
    gone
}

fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> SignalingError {
    match e {
        tokio_tungstenite::tungstenite::Error::Io(io) => SignalingError::Io(io),
        other => SignalingError::WebSocket(other.to_string()),
    }
}

/// The connection task: writes queued messages, forwards server events, pings.
async fn run(
    mut ws: Ws,
    (mut protocol, clock): (ClientProtocol, Clock),
    mut outgoing: mpsc::Receiver<ClientMessage>,
    events: mpsc::Sender<ServerMessage>,
) {
    loop {
        let wakeup = protocol
            .next_wakeup()
            .map_or(Instant::now() + Duration::from_secs(3600), |at| {
                clock.0 + at
            });
        tokio::select! {
            msg = outgoing.recv() => match msg {
                // The caller's pings are probes.
                Some(ClientMessage::Ping) => {
                    if local_address_gone(&ws) {
                        break;
                    }
                    if let Some(text) = protocol.probe(clock.now()) {
                        if ws.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                }
                Some(msg) => {
                    if ws.send(Message::text(msg.to_json())).await.is_err() {
                        break;
                    }
                }
                None => {
                    // The client was dropped.
                    let _ = ws.close(None).await;
                    break;
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => match protocol.on_text(clock.now(), &text) {
                    ClientStep::Event(event) => {
                        if events.send(event).await.is_err() {
                            let _ = ws.close(None).await;
                            break;
                        }
                    }
                    ClientStep::Nothing | ClientStep::Welcome(_) | ClientStep::Failed(_) => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => protocol.on_other_frame(clock.now()),
            },
            _ = tokio::time::sleep_until(wakeup) => match protocol.poll(clock.now()) {
                ClientTick::Send(text) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                ClientTick::Dead => break,
                ClientTick::Nothing => {}
            },
        }
    }
    // Refuse new signals before `next_event` reports the end, so a caller that
    // saw `None` gets `Closed` from `signal`.
    outgoing.close();
    drop(events);
}
