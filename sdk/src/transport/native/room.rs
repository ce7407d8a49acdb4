//! The room task: joins through signaling, starts one peer task per room member,
//! relays their offers/answers/candidates, and reports to the game thread.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crossbeam_channel::Sender;
use tokio::sync::{mpsc, oneshot};

use super::link::Inbox;
use super::peer::{spawn_peer, PeerEvent, PeerHandle, PeerParams, PeerSignal};
use super::socket::Control;
use crate::signaling::{ServerMessage, SignalData, SignalingClient};
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

struct Room {
    params: RoomParams,
    me: PeerId,
    ice_servers: Vec<IceServerConfig>,
    peers: HashMap<PeerId, PeerHandle>,
    connected: HashSet<PeerId>,
    early: HashMap<PeerId, Vec<SignalData>>,
    events_tx: mpsc::UnboundedSender<(PeerId, PeerEvent)>,
    full: bool,
    all_connected_sent: bool,
}

impl Room {
    fn control(&self, control: Control) {
        let _ = self.params.control.send(control);
    }

    fn event(&self, event: SocketEvent) {
        self.control(Control::Event(event));
    }

    fn on_room_full(&mut self, members: Vec<PeerId>) {
        if self.full {
            return;
        }
        self.full = true;
        for remote in members {
            if remote == self.me || self.peers.contains_key(&remote) {
                continue;
            }
            let handle = spawn_peer(PeerParams {
                remote,
                offerer: self.me > remote,
                config: self.params.config.clone(),
                ice_servers: self.ice_servers.clone(),
                inbox: self.params.inbox.clone(),
                events: self.events_tx.clone(),
            });
            for data in self.early.remove(&remote).unwrap_or_default() {
                handle.signal(to_peer_signal(data));
            }
            self.peers.insert(remote, handle);
        }
        self.early.clear();
    }

    fn on_signal(&mut self, from: PeerId, data: SignalData) {
        match self.peers.get(&from) {
            Some(handle) => handle.signal(to_peer_signal(data)),
            None if !self.full => {
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
        if !self.connected.contains(&peer) && self.peers.remove(&peer).is_some() {
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
            PeerEvent::Connected(link) => {
                self.connected.insert(peer);
                self.control(Control::Link(peer, link));
                self.event(SocketEvent::PeerConnected(peer));
                let others = usize::from(self.params.config.players).saturating_sub(1);
                if self.full && !self.all_connected_sent && self.connected.len() == others {
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
                self.peers.remove(&peer);
                self.event(SocketEvent::Error(error));
            }
        }
    }

    /// Close every connection concurrently, each saying goodbye.
    async fn close_all(&mut self) {
        let closing: Vec<_> = self
            .peers
            .drain()
            .map(|(_, handle)| handle.close())
            .collect();
        futures_util::future::join_all(closing).await;
    }
}

/// Run a room until the socket shuts it down.
pub(crate) async fn run_room(params: RoomParams, mut shutdown: oneshot::Receiver<()>) {
    let config = params.config.clone();
    let join = SignalingClient::join(
        &config.signaling_url,
        &config.room,
        config.players,
        config.token.clone(),
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
    let mut room = Room {
        params,
        me,
        ice_servers,
        peers: HashMap::new(),
        connected: HashSet::new(),
        early: HashMap::new(),
        events_tx,
        full: false,
        all_connected_sent: false,
    };
    let mut client = Some(client);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            message = next_message(&mut client) => match message {
                Some(ServerMessage::RoomFull { peers }) => room.on_room_full(peers),
                Some(ServerMessage::Signal { from, data }) => room.on_signal(from, data),
                Some(ServerMessage::PeerLeft { peer_id }) => room.on_peer_left(peer_id),
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
            Some((peer, event)) = events_rx.recv() => {
                room.on_peer_event(client.as_ref(), peer, event).await;
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
