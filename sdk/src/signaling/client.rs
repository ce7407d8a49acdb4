//! The native signaling client: one WebSocket connection to a signaling server,
//! driven by a tokio task.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            keepalive_interval: Duration::from_secs(10),
            dead_after: Duration::from_secs(30),
            join_timeout: Duration::from_secs(10),
            queue_capacity: 256,
            max_frame_size: 64 * 1024,
            room_secret: None,
            spectator: false,
            spectator_secret: None,
            no_spectators: false,
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
        };
        let (ws, welcome) =
            tokio::time::timeout(config.join_timeout, connect_and_join(url, join, &config))
                .await
                .map_err(|_| SignalingError::Timeout)??;
        let capacity = config.queue_capacity.max(1);
        let (out_tx, out_rx) = mpsc::channel(capacity);
        let (ev_tx, ev_rx) = mpsc::channel(capacity);
        tokio::spawn(run(ws, out_rx, ev_tx, config));
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

async fn connect_and_join(
    url: &str,
    join: ClientMessage,
    config: &ClientConfig,
) -> Result<(Ws, Welcome), SignalingError> {
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_frame_size))
        .max_frame_size(Some(config.max_frame_size));
    let (mut ws, _response) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true)
            .await
            .map_err(ws_error)?;
    ws.send(Message::text(join.to_json()))
        .await
        .map_err(ws_error)?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match ServerMessage::from_json(&text) {
                Ok(ServerMessage::Welcome(welcome)) => {
                    let asked_to_spectate = matches!(
                        join,
                        ClientMessage::Join {
                            spectator: true,
                            ..
                        }
                    );
                    if asked_to_spectate && !welcome.spectator {
                        let _ = ws.close(None).await;
                        return Err(SignalingError::Protocol(
                            "the signaling server does not support spectators".into(),
                        ));
                    }
                    return Ok((ws, welcome));
                }
                Ok(ServerMessage::Error { code, message }) => {
                    return Err(SignalingError::Refused { code, message })
                }
                Ok(ServerMessage::Pong) => {}
                Ok(other) => {
                    return Err(SignalingError::Protocol(format!(
                        "expected welcome, got {other:?}"
                    )))
                }
                Err(e) => return Err(SignalingError::Protocol(e.to_string())),
            },
            Some(Ok(Message::Close(_))) | None => return Err(SignalingError::Closed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ws_error(e)),
        }
    }
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
    mut outgoing: mpsc::Receiver<ClientMessage>,
    events: mpsc::Sender<ServerMessage>,
    config: ClientConfig,
) {
    let interval = config.keepalive_interval.max(Duration::from_millis(10));
    let mut keepalive = tokio::time::interval_at(Instant::now() + interval, interval);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            msg = outgoing.recv() => match msg {
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
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    match ServerMessage::from_json(&text) {
                        Ok(ServerMessage::Pong) => {}
                        Ok(event) => {
                            if events.send(event).await.is_err() {
                                let _ = ws.close(None).await;
                                break;
                            }
                        }
                        Err(e) => tracing::warn!("signaling: dropped undecodable server message: {e}"),
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = keepalive.tick() => {
                if last_heard.elapsed() > config.dead_after {
                    tracing::warn!("signaling: server silent for {:?}, closing", config.dead_after);
                    break;
                }
                if ws.send(Message::text(ClientMessage::Ping.to_json())).await.is_err() {
                    break;
                }
            }
        }
    }
    // Refuse new signals before `next_event` reports the end, so a caller that
    // saw `None` gets `Closed` from `signal`.
    outgoing.close();
    drop(events);
}
