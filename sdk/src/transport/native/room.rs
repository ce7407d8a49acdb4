//! The room task: joins through signaling, starts one peer task per room member,
//! relays their offers/answers/candidates, and reports to the game thread.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crossbeam_channel::Sender;
use tokio::sync::{mpsc, oneshot};

use super::link::Inbox;
use super::peer::{spawn_peer, PeerEvent, PeerHandle, PeerParams, PeerSignal};
use super::socket::Control;
use crate::signaling::{ClientConfig, ServerMessage, SignalData, SignalingClient};
use crate::transport::{IceServerConfig, PeerId, SocketConfig, SocketEvent, TransportError};

/// Signals buffered per unknown sender before the room is full.
const MAX_EARLY_SIGNALS: usize = 64;

/// What the room task needs from the socket.
pub(crate) struct RoomParams {
    pub(crate) config: Arc<SocketConfig>,
    pub(crate) control: Sender<Control>,
    pub(crate) inbox: Inbox,
}

fn to_peer_signal(data: SignalData) -> PeerSignal {
    match data {
        SignalData::Offer { sdp } => PeerSignal::Offer(sdp),
        SignalData::Answer { sdp } => PeerSignal::Answer(sdp),
        SignalData::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        } => PeerSignal::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        },
        SignalData::EndOfCandidates => PeerSignal::EndOfCandidates,
    }
}

fn to_signal_data(signal: PeerSignal) -> SignalData {
    match signal {
        PeerSignal::Offer(sdp) => SignalData::Offer { sdp },
        PeerSignal::Answer(sdp) => SignalData::Answer { sdp },
        PeerSignal::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        } => SignalData::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        },
        PeerSignal::EndOfCandidates => SignalData::EndOfCandidates,
    }
}

/// One remote member's connection attempt.
struct Attempt {
    handle: PeerHandle,
    /// Relay candidates only: the configured policy, or the fallback attempt.
    relay_only: bool,
    /// The remote's offer for this attempt has arrived (answerer side).
    got_offer: bool,
    /// Its number: events of replaced attempts are ignored.
    number: u32,
}

struct MeshRoom {
    params: RoomParams,
    me: PeerId,
    ice_servers: Vec<IceServerConfig>,
    /// Whether a TURN server is known, so a failed direct attempt can fall back.
    has_turn: bool,
    /// When we started connecting to each remote (at "room full" for players, when
    /// it joined for a spectator): a fallback attempt gets what is left of the
    /// handshake timeout.
    first_attempt: HashMap<PeerId, tokio::time::Instant>,
    peers: HashMap<PeerId, Attempt>,
    connected: HashSet<PeerId>,
    early: HashMap<PeerId, Vec<SignalData>>,
    events_tx: mpsc::UnboundedSender<(PeerId, u32, PeerEvent)>,
    /// Attempts started so far (numbers each one).
    attempts: u32,
    full: bool,
    all_connected_sent: bool,
    /// Other players in the room so far (before it is full).
    waiting: HashSet<PeerId>,
    /// The room's players, once full (ascending; the first is the host).
    players: Vec<PeerId>,
    /// Spectators we know of (as a player), or our host (as a spectator: none).
    spectators: HashSet<PeerId>,
}

impl MeshRoom {
    fn control(&self, control: Control) {
        let _ = self.params.control.send(control);
    }

    fn event(&self, event: SocketEvent) {
        self.control(Control::Event(event));
    }

    fn is_spectator(&self) -> bool {
        self.params.config.spectator
    }

    /// Whether we serve spectators: the room's first player does.
    fn is_host(&self) -> bool {
        self.players.first() == Some(&self.me)
    }

    fn on_peer_joined(&mut self, peer: PeerId, spectator: bool) {
        if spectator {
            self.spectators.insert(peer);
            if self.full && self.is_host() {
                self.connect_to(peer);
            }
        } else if !self.full && self.waiting.insert(peer) {
            self.announce_waiting();
        }
    }

    fn announce_waiting(&self) {
        let have = self.waiting.len() + usize::from(!self.is_spectator());
        self.event(SocketEvent::WaitingForPlayers {
            have,
            need: usize::from(self.params.config.players),
        });
    }

    fn on_room_full(&mut self, mut players: Vec<PeerId>) {
        if self.full {
            return;
        }
        self.full = true;
        players.sort_unstable();
        self.players = players.clone();
        self.event(SocketEvent::RoomFull {
            players: players.clone(),
        });
        let remotes: Vec<PeerId> = if self.is_spectator() {
            // A spectator follows the host only.
            players.first().copied().into_iter().collect()
        } else if self.is_host() {
            let mut remotes = players;
            remotes.extend(self.spectators.iter().copied());
            remotes
        } else {
            players
        };
        for remote in remotes {
            if remote != self.me {
                self.connect_to(remote);
            }
        }
        self.early.clear();
    }

    /// Start the first attempt to `remote` and hand it the signals that came early.
    fn connect_to(&mut self, remote: PeerId) {
        if self.peers.contains_key(&remote) {
            return;
        }
        self.first_attempt
            .insert(remote, tokio::time::Instant::now());
        self.start_attempt(remote, self.params.config.relay_only);
        for data in self.early.remove(&remote).unwrap_or_default() {
            self.on_signal(remote, data);
        }
    }

    /// Start connecting to `remote`, directly (all candidates) or over the relay.
    fn start_attempt(&mut self, remote: PeerId, relay_only: bool) {
        let config = &self.params.config;
        let fallback = self.has_turn && !relay_only;
        let handshake_timeout = if fallback {
            config.relay_fallback_after.min(config.handshake_timeout)
        } else {
            let spent = self
                .first_attempt
                .get(&remote)
                .map(|t| t.elapsed())
                .unwrap_or_default();
            config.handshake_timeout.saturating_sub(spent)
        };
        self.attempts += 1;
        let number = self.attempts;
        let handle = spawn_peer(PeerParams {
            remote,
            attempt: number,
            offerer: self.me > remote,
            config: config.clone(),
            ice_servers: self.ice_servers.clone(),
            relay_only,
            handshake_timeout,
            inbox: self.params.inbox.clone(),
            control: self.params.control.clone(),
            events: self.events_tx.clone(),
        });
        self.peers.insert(
            remote,
            Attempt {
                handle,
                relay_only,
                got_offer: false,
                number,
            },
        );
    }

    /// The direct attempt to `remote` failed (or the remote gave up on it): try
    /// again over the TURN relay only. `false` when there is nothing to fall back to.
    fn fall_back_to_relay(&mut self, remote: PeerId) -> bool {
        let direct = self.peers.get(&remote).is_some_and(|a| !a.relay_only);
        if !direct || !self.has_turn || self.connected.contains(&remote) {
            return false;
        }
        tracing::info!(peer = %remote, "direct connection failed; retrying over the TURN relay");
        // Dropping the old attempt's handle closes its connection.
        self.start_attempt(remote, true);
        true
    }

    fn on_signal(&mut self, from: PeerId, data: SignalData) {
        let is_offer = matches!(data, SignalData::Offer { .. });
        // A second offer means the remote (the offerer) gave up its direct attempt
        // and started over relay-only: follow it.
        if is_offer && self.peers.get(&from).is_some_and(|a| a.got_offer) {
            self.fall_back_to_relay(from);
        }
        match self.peers.get_mut(&from) {
            Some(attempt) => {
                attempt.got_offer |= is_offer;
                attempt.handle.signal(to_peer_signal(data));
            }
            None if !self.full || self.spectators.contains(&from) => {
                let queue = self.early.entry(from).or_default();
                if queue.len() < MAX_EARLY_SIGNALS {
                    queue.push(data);
                }
            }
            None => {}
        }
    }

    /// A member's signaling connection closed. A connected link does not need
    /// signaling any more and is judged by its own keepalives; a link still being set
    /// up cannot finish without it.
    fn on_peer_left(&mut self, peer: PeerId) {
        self.early.remove(&peer);
        self.first_attempt.remove(&peer);
        if !self.full && self.waiting.remove(&peer) {
            self.announce_waiting();
        }
        let spectator = self.spectators.remove(&peer);
        if !self.connected.contains(&peer) && self.peers.remove(&peer).is_some() && !spectator {
            self.event(SocketEvent::Error(TransportError::PeerLeft(peer)));
        }
    }

    async fn on_peer_event(
        &mut self,
        client: Option<&SignalingClient>,
        peer: PeerId,
        event: PeerEvent,
    ) {
        match event {
            PeerEvent::Signal(signal) => {
                if let Some(client) = client {
                    if let Err(error) = client.signal(peer, to_signal_data(signal)) {
                        self.event(SocketEvent::Error(TransportError::Signaling(
                            error.to_string(),
                        )));
                    }
                }
            }
            PeerEvent::Connected => {
                self.connected.insert(peer);
                if self.spectators.contains(&peer) {
                    self.event(SocketEvent::SpectatorConnected(peer));
                    return;
                }
                self.event(SocketEvent::PeerConnected(peer));
                let others = if self.is_spectator() {
                    1
                } else {
                    usize::from(self.params.config.players).saturating_sub(1)
                };
                let players = self
                    .connected
                    .iter()
                    .filter(|p| !self.spectators.contains(p))
                    .count();
                if self.full && !self.all_connected_sent && players == others {
                    self.all_connected_sent = true;
                    self.event(SocketEvent::AllConnected);
                }
            }
            PeerEvent::Stats(stats) => self.control(Control::Stats(peer, stats)),
            PeerEvent::Disconnected(reason) => {
                self.peers.remove(&peer);
                self.connected.remove(&peer);
                self.control(Control::Unlink(peer));
                self.event(SocketEvent::PeerDisconnected { peer, reason });
            }
            PeerEvent::Failed(error) => {
                // Its link may have been handed out early (a message arrived first).
                self.control(Control::Unlink(peer));
                if client.is_some() && self.fall_back_to_relay(peer) {
                    tracing::debug!(%peer, %error, "direct attempt failed");
                    return;
                }
                self.peers.remove(&peer);
                if self.spectators.contains(&peer) {
                    // A spectator's trouble is not the match's.
                    tracing::warn!(%peer, %error, "could not connect a spectator");
                    return;
                }
                self.event(SocketEvent::Error(error));
            }
        }
    }

    /// Close every connection concurrently, each saying goodbye.
    async fn close_all(&mut self) {
        let closing: Vec<_> = self
            .peers
            .drain()
            .map(|(_, attempt)| attempt.handle.close())
            .collect();
        futures_util::future::join_all(closing).await;
    }
}

/// Run a room until the socket shuts it down.
pub(crate) async fn run_room(params: RoomParams, mut shutdown: oneshot::Receiver<()>) {
    let config = params.config.clone();
    let join = SignalingClient::join_with_config(
        &config.signaling_url,
        &config.room,
        config.players,
        config.token.clone(),
        ClientConfig {
            room_secret: config.room_secret.clone(),
            spectator: config.spectator,
            spectator_secret: config.spectator_secret.clone(),
            no_spectators: config.no_spectators,
            ..ClientConfig::default()
        },
    );
    let joined = tokio::select! {
        _ = &mut shutdown => return,
        joined = tokio::time::timeout(config.handshake_timeout, join) => joined,
    };
    let (client, welcome) = match joined {
        Ok(Ok(joined)) => joined,
        Ok(Err(error)) => {
            let _ = params.control.send(Control::Event(SocketEvent::Error(
                TransportError::Signaling(error.to_string()),
            )));
            return;
        }
        Err(_) => {
            let _ = params.control.send(Control::Event(SocketEvent::Error(
                TransportError::Signaling("no welcome within the handshake timeout".into()),
            )));
            return;
        }
    };
    let me = welcome.peer_id;
    let mut ice_servers = config.ice_servers.clone();
    ice_servers.extend(welcome.ice_servers.iter().map(|server| IceServerConfig {
        urls: server.urls.clone(),
        username: server.username.clone(),
        credential: server.credential.clone(),
    }));
    let _ = params.control.send(Control::Joined(me));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let has_turn = ice_servers
        .iter()
        .any(|server| server.urls.iter().any(|url| url.starts_with("turn:")));
    let mut room = MeshRoom {
        params,
        me,
        ice_servers,
        has_turn,
        first_attempt: HashMap::new(),
        peers: HashMap::new(),
        connected: HashSet::new(),
        early: HashMap::new(),
        events_tx,
        attempts: 0,
        full: false,
        all_connected_sent: false,
        waiting: HashSet::new(),
        players: Vec::new(),
        spectators: HashSet::new(),
    };
    if !room.is_spectator() {
        room.announce_waiting();
    }
    let mut client = Some(client);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            message = next_message(&mut client) => match message {
                Some(ServerMessage::RoomFull { peers }) => room.on_room_full(peers),
                Some(ServerMessage::Signal { from, data }) => room.on_signal(from, data),
                Some(ServerMessage::PeerLeft { peer_id }) => room.on_peer_left(peer_id),
                Some(ServerMessage::PeerJoined { peer_id, spectator }) => {
                    room.on_peer_joined(peer_id, spectator);
                }
                Some(ServerMessage::Error { code, message }) => {
                    room.event(SocketEvent::Error(TransportError::Signaling(format!(
                        "{code:?}: {message}"
                    ))));
                }
                Some(_) => {}
                None => {
                    // The server is gone. Connections already up keep working; the
                    // ones still being set up can no longer exchange candidates.
                    client = None;
                    if !room.all_connected_sent {
                        room.event(SocketEvent::Error(TransportError::SignalingClosed));
                    }
                }
            },
            Some((peer, attempt, event)) = events_rx.recv() => {
                // Events of a replaced attempt (its connection is closing) are stale.
                if room.peers.get(&peer).is_some_and(|a| a.number == attempt) {
                    room.on_peer_event(client.as_ref(), peer, event).await;
                }
            }
        }
    }
    room.close_all().await;
    drop(client);
}

/// The next server message, or pending forever once signaling is gone.
async fn next_message(client: &mut Option<SignalingClient>) -> Option<ServerMessage> {
    match client {
        Some(client) => client.next_event().await,
        None => std::future::pending().await,
    }
}
