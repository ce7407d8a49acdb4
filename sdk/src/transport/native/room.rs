//! The room task: joins through signaling and drives the room's mesh plan
//! (`transport::mesh_plan`, sans-IO): starts the peer tasks the plan asks for,
//! relays their offers/answers/candidates, and reports to the game thread.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::{mpsc, oneshot};

use super::failover;
use super::link::Inbox;
use super::peer::{spawn_peer, PeerEvent, PeerHandle, PeerParams, PeerSignal};
use super::socket::Control;
use crate::signaling::{ErrorCode, ServerMessage, SignalData, SignalingClient};
use crate::transport::mesh_plan::{MeshAction, MeshPlan, MeshSettings};
use crate::transport::{IceServerConfig, PeerId, SocketConfig, SocketEvent, TransportError};

/// What the room task needs from the socket.
pub(crate) struct RoomParams {
    pub(crate) config: Arc<SocketConfig>,
    pub(crate) control: Sender<Control>,
    pub(crate) inbox: Inbox,
}

/// An attempt's signal (`None` for the mesh plan's own `restart`, which it never
/// hands to an attempt).
fn to_peer_signal(data: SignalData) -> Option<PeerSignal> {
    Some(match data {
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
        SignalData::Restart => return None,
    })
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

/// The room's driver state: the plan, and the peer tasks it asked for.
struct MeshRoom {
    params: RoomParams,
    plan: MeshPlan,
    ice_servers: Vec<IceServerConfig>,
    /// The plan's clock: `Duration`s since this instant.
    epoch: tokio::time::Instant,
    /// The running attempt to each member, by the plan's attempt number.
    attempts: HashMap<PeerId, (u32, PeerHandle)>,
    events_tx: mpsc::UnboundedSender<(PeerId, u32, PeerEvent)>,
}

impl MeshRoom {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn control(&self, control: Control) {
        let _ = self.params.control.send(control);
    }

    /// Carry out what the plan decided.
    fn carry_out(&mut self, client: Option<&SignalingClient>, actions: Vec<MeshAction>) {
        for action in actions {
            match action {
                MeshAction::Start(spec) => {
                    let handle = spawn_peer(PeerParams {
                        remote: spec.remote,
                        attempt: spec.number,
                        offerer: spec.offerer,
                        config: self.params.config.clone(),
                        ice_servers: self.ice_servers.clone(),
                        relay_only: spec.relay_only,
                        handshake_timeout: spec.handshake_timeout,
                        inbox: self.params.inbox.clone(),
                        control: self.params.control.clone(),
                        events: self.events_tx.clone(),
                    });
                    // A replaced attempt's handle is dropped: its connection closes.
                    self.attempts.insert(spec.remote, (spec.number, handle));
                }
                MeshAction::Signal { remote, data } => {
                    if let (Some((_, handle)), Some(signal)) =
                        (self.attempts.get(&remote), to_peer_signal(data))
                    {
                        handle.signal(signal);
                    }
                }
                MeshAction::SendSignal { remote, data } => self.send_signal(client, remote, data),
                MeshAction::Close(peer) => {
                    self.attempts.remove(&peer);
                }
                MeshAction::Unlink(peer) => self.control(Control::Unlink(peer)),
                MeshAction::ProbeSignaling => {
                    if let Some(client) = client {
                        let _ = client.probe();
                    }
                }
                MeshAction::Event(event) => self.control(Control::Event(event)),
            }
        }
    }

    fn send_signal(&self, client: Option<&SignalingClient>, remote: PeerId, data: SignalData) {
        if let Some(client) = client {
            if let Err(error) = client.signal(remote, data) {
                self.control(Control::Event(SocketEvent::Error(
                    TransportError::Signaling(error.to_string()),
                )));
            }
        }
    }

    fn on_server_message(&mut self, client: Option<&SignalingClient>, message: ServerMessage) {
        let now = self.now();
        let mut out = Vec::new();
        self.plan.server_message(now, message, &mut out);
        self.carry_out(client, out);
    }

    /// The plan's timers (recovery deadlines).
    fn on_timer(&mut self, client: Option<&SignalingClient>) {
        let now = self.now();
        let mut out = Vec::new();
        self.plan.poll(now, &mut out);
        self.carry_out(client, out);
    }

    /// When the plan's next timer is due (at the latest in an hour: also what an
    /// endless timeout comes to).
    fn next_wakeup(&self) -> tokio::time::Instant {
        let later = tokio::time::Instant::now() + Duration::from_secs(3600);
        self.plan
            .next_wakeup()
            .and_then(|at| self.epoch.checked_add(at))
            .map_or(later, |at| at.min(later))
    }

    fn on_peer_event(&mut self, client: Option<&SignalingClient>, peer: PeerId, event: PeerEvent) {
        let now = self.now();
        let mut out = Vec::new();
        match event {
            PeerEvent::Signal(signal) => self.send_signal(client, peer, to_signal_data(signal)),
            PeerEvent::Connected => self.plan.attempt_connected(peer, &mut out),
            PeerEvent::Stats(stats) => self.control(Control::Stats(peer, stats)),
            PeerEvent::Disconnected(reason) => {
                self.plan.attempt_disconnected(now, peer, reason, &mut out);
            }
            PeerEvent::Failed(error) => {
                self.plan
                    .attempt_failed(now, peer, error, client.is_some(), &mut out);
            }
        }
        self.carry_out(client, out);
    }

    /// Our signaling connection is gone: resume it through another node when
    /// we can (a future to poll), else tell the plan at once.
    fn signaling_gone(
        &mut self,
        config: &Arc<SocketConfig>,
        token: Option<String>,
        lost: usize,
    ) -> Option<Pin<Box<dyn Future<Output = Resumed> + Send>>> {
        if let Some(token) = token {
            let config = Arc::clone(config);
            return Some(Box::pin(async move {
                failover::resume(&config, token, lost, config.disconnect_timeout).await
            }));
        }
        let mut out = Vec::new();
        self.plan.signaling_closed(&mut out);
        self.carry_out(None, out);
        None
    }

    /// Close every connection concurrently, each saying goodbye.
    async fn close_all(&mut self) {
        let closing: Vec<_> = self
            .attempts
            .drain()
            .map(|(_, (_, handle))| handle.close())
            .collect();
        futures_util::future::join_all(closing).await;
    }
}

/// Run a room until the socket shuts it down.
pub(crate) async fn run_room(params: RoomParams, mut shutdown: oneshot::Receiver<()>) {
    let config = params.config.clone();
    let join = failover::join_first(&config);
    let joined = tokio::select! {
        _ = &mut shutdown => return,
        joined = tokio::time::timeout(config.handshake_timeout, join) => joined,
    };
    let (client, welcome, mut url_index) = match joined {
        Ok(Ok(joined)) => joined,
        Ok(Err(error)) => {
            let _ = params
                .control
                .send(Control::Event(SocketEvent::Error(TransportError::from(
                    error,
                ))));
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
    let _ = params
        .control
        .send(Control::Joined(me, welcome.rejoin_token.clone()));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let has_turn = ice_servers
        .iter()
        .any(|server| server.urls.iter().any(|url| url.starts_with("turn:")));
    let mut out = Vec::new();
    let plan = MeshPlan::new(MeshSettings::from(&*config), me, has_turn, &mut out);
    let mut room = MeshRoom {
        params,
        plan,
        ice_servers,
        epoch: tokio::time::Instant::now(),
        attempts: HashMap::new(),
        events_tx,
    };
    let mut client = Some(client);
    room.carry_out(client.as_ref(), out);
    // With several signaling URLs (a cluster), a lost signaling connection is
    // replaced through another node before the game hears of it.
    let resumable = welcome
        .rejoin_token
        .clone()
        .filter(|_| !config.fallback_signaling_urls.is_empty());
    let mut resuming: Option<Pin<Box<dyn Future<Output = Resumed> + Send>>> = None;

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            message = next_message(&mut client) => match message {
                Some(ServerMessage::Error { code: ErrorCode::RoomLost, message }) => {
                    // The node that held our room went away: as lost as a
                    // closed connection.
                    tracing::warn!("signaling: room lost: {message}");
                    client = None;
                    resuming = room.signaling_gone(&config, resumable.clone(), url_index);
                }
                Some(message) => room.on_server_message(client.as_ref(), message),
                None => {
                    // The server is gone. Connections already up keep working.
                    client = None;
                    resuming = room.signaling_gone(&config, resumable.clone(), url_index);
                }
            },
            resumed = poll_resume(&mut resuming) => {
                resuming = None;
                let mut out = Vec::new();
                match resumed {
                    Some((new_client, index)) => {
                        client = Some(new_client);
                        url_index = index;
                        room.plan.signaling_resumed(&mut out);
                    }
                    None => room.plan.signaling_closed(&mut out),
                }
                room.carry_out(client.as_ref(), out);
            }
            _ = tokio::time::sleep_until(room.next_wakeup()) => room.on_timer(client.as_ref()),
            Some((peer, attempt, event)) = events_rx.recv() => {
                // Events of a replaced attempt (its connection is closing) are stale.
                if room.plan.is_current(peer, attempt) {
                    room.on_peer_event(client.as_ref(), peer, event);
                }
            }
        }
    }
    room.close_all().await;
    drop(client);
}

/// A resumed signaling connection and the index of its URL; `None`: no node
/// took us back.
type Resumed = Option<(SignalingClient, usize)>;

/// The resume under way, or pending forever when there is none.
async fn poll_resume(
    resuming: &mut Option<Pin<Box<dyn Future<Output = Resumed> + Send>>>,
) -> Resumed {
    match resuming {
        Some(resuming) => resuming.await,
        None => std::future::pending().await,
    }
}

/// The next server message, or pending forever once signaling is gone.
async fn next_message(client: &mut Option<SignalingClient>) -> Option<ServerMessage> {
    match client {
        Some(client) => client.next_event().await,
        None => std::future::pending().await,
    }
}
