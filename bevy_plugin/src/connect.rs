//! Start a P2P session over the WebRTC socket from inside Bevy: the native socket
//! on the desktop (feature `native`), the browser's (feature `web`) in a wasm32
//! build. The same game code builds for both.
//!
//! Insert [`RtcPlayConnect`] (or add [`RtcPlayConnectPlugin`] and insert it later):
//! the plugin opens a [`Socket`], polls it every frame without blocking, keeps
//! [`ConnectStatus`] up to date, and once every peer is connected builds the
//! [`P2PSession`](rtcplay::session::P2PSession) and inserts
//! [`RtcPlaySession`]. Player handles follow the peers' ids in ascending order, so
//! every peer numbers the players alike.
//!
//! With [`RtcPlayConnect::spectator`] the app watches the room's running match
//! instead: it connects to the host (the first player) and runs a
//! [`SpectatorSession`](rtcplay::session::SpectatorSession). The host admits
//! spectators on its own (its session keeps the whole input history so they can
//! join at any time).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::prelude::*;
use rtcplay::netem::{ConditionedTransport, LinkConditions};
use rtcplay::session::{Input, PlayerHandle, PlayerType, SessionBuilder, SessionConfig};
use rtcplay::transport::{
    CandidateType, DisconnectReason, IceServerConfig, LinkStats, PeerId, Socket, SocketConfig,
    SocketEvent, Transport,
};

use crate::forensics::ForensicsTrace;
use crate::plugin::RtcPlaySystems;
use crate::session::RtcPlaySession;
use crate::stats::RtcPlayEvent;
use rtcplay::state_sync::is_state_datagram;

/// How to meet the other players and which session to start with them.
#[derive(Resource, Debug, Clone)]
pub struct RtcPlayConnect {
    /// Signaling server URL, e.g. `ws://127.0.0.1:3536`.
    pub signal_url: String,
    /// Other nodes of the same signaling cluster (docs/cluster.md): tried when
    /// `signal_url` cannot be reached, and used to resume our seat (keeping
    /// every connection) when our signaling node goes away mid-match. Native
    /// only.
    pub fallback_signal_urls: Vec<String>,
    /// Room name.
    pub room: String,
    /// Players in the match, including this one (2..=8).
    pub players: usize,
    /// STUN / TURN servers (in addition to those the signaling server announces).
    pub ice_servers: Vec<IceServerConfig>,
    /// Local address the UDP sockets bind to (`127.0.0.1` for one machine).
    pub bind_ip: IpAddr,
    /// Link conditioner on this peer's traffic (both directions), if any.
    pub netem: Option<LinkConditions>,
    /// Seed of the link conditioner.
    pub netem_seed: u64,
    /// Session settings. `num_players` is overwritten with [`players`](Self::players).
    pub session: SessionConfig,
    /// Watch the room's match as a spectator instead of playing.
    pub spectate: bool,
    /// As a spectator: the room's spectator secret. As the player who creates
    /// the room: the secret spectators must give to watch (none: anyone may).
    pub spectator_secret: Option<String>,
    /// As the player who creates the room: admit no spectators at all.
    pub no_spectators: bool,
    /// Take our seat back in a running match with this token (the one
    /// [`ConnectedPeers::rejoin_token`] held in the earlier run): the session
    /// then rejoins the match with a survivor's state instead of starting one.
    pub rejoin_token: Option<String>,
    /// When our own connection drops mid-match (the signaling connection closed,
    /// or stopped answering when a link stalled: our network went away or
    /// changed), take our seat back by ourselves: a new socket with our rejoin
    /// token, then a rejoining session with a survivor's state
    /// ([`ConnectedPeers::rejoining`] meanwhile). On by default; needs a server
    /// that holds seats.
    pub auto_rejoin: bool,
    /// Drop-in match: it starts once this many players are in (2..=`players`);
    /// the other seats are vacant (their input `Disconnected`) until players
    /// join while it runs ([`PeerDroppedIn`]). `None`: start with every seat
    /// taken.
    pub start_with: Option<usize>,
    /// No rollback session: the match exchanges state only ([`StateStreams`]
    /// and replicated entities, docs/state-streams.md). Spectating, drop-in,
    /// rejoin tokens and auto rejoin do not apply.
    ///
    /// [`StateStreams`]: crate::StateStreams
    pub state_only: bool,
}

impl RtcPlayConnect {
    /// Meet `players` players in `room` through the signaling server at `signal_url`.
    pub fn new(signal_url: impl Into<String>, room: impl Into<String>, players: usize) -> Self {
        RtcPlayConnect {
            signal_url: signal_url.into(),
            fallback_signal_urls: Vec::new(),
            room: room.into(),
            players,
            ice_servers: Vec::new(),
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            netem: None,
            netem_seed: 0,
            session: SessionConfig {
                keep_input_history: true,
                spectator_catchup_speed: 8,
                ..SessionConfig::default()
            },
            spectate: false,
            spectator_secret: None,
            no_spectators: false,
            rejoin_token: None,
            auto_rejoin: true,
            start_with: None,
            state_only: false,
        }
    }

    /// A match without a rollback session: the players exchange state only
    /// (state streams, replicated entities). Add
    /// `RtcPlayConnectPlugin::<()>` for such a game: its input type is unused.
    pub fn state_only(mut self) -> Self {
        self.state_only = true;
        self.auto_rejoin = false;
        self
    }

    /// A drop-in match: start once `start_with` players are in; later joiners
    /// take the free seats while it runs.
    pub fn with_drop_in(mut self, start_with: usize) -> Self {
        self.start_with = Some(start_with);
        self
    }

    /// Watch the match of `room` (sized `players`) as a spectator.
    pub fn spectator(
        signal_url: impl Into<String>,
        room: impl Into<String>,
        players: usize,
    ) -> Self {
        RtcPlayConnect {
            spectate: true,
            ..Self::new(signal_url, room, players)
        }
    }

    /// Spectators need `secret` to watch this room (as its creator), or this is
    /// the secret to watch with (as a spectator).
    pub fn with_spectator_secret(mut self, secret: impl Into<String>) -> Self {
        self.spectator_secret = Some(secret.into());
        self
    }

    /// As the room's creator, admit no spectators.
    pub fn without_spectators(mut self) -> Self {
        self.no_spectators = true;
        self
    }

    /// Rejoin the running match in our old seat (see
    /// [`rejoin_token`](Self::rejoin_token)).
    pub fn with_rejoin_token(mut self, token: impl Into<String>) -> Self {
        self.rejoin_token = Some(token.into());
        self
    }

    /// Frames of input delay.
    pub fn with_input_delay(mut self, frames: u32) -> Self {
        self.session.input_delay = frames;
        self
    }

    /// Other nodes of the signaling cluster (see
    /// [`fallback_signal_urls`](Self::fallback_signal_urls)).
    pub fn with_fallback_signal_urls(mut self, urls: impl IntoIterator<Item = String>) -> Self {
        self.fallback_signal_urls = urls.into_iter().collect();
        self
    }

    /// Put a link conditioner on this peer's traffic.
    pub fn with_netem(mut self, conditions: LinkConditions, seed: u64) -> Self {
        self.netem = Some(conditions);
        self.netem_seed = seed;
        self
    }

    pub(crate) fn socket_config(&self) -> SocketConfig {
        let mut config = SocketConfig::new(
            self.signal_url.clone(),
            self.room.clone(),
            u8::try_from(self.players).unwrap_or(u8::MAX),
        );
        config.fallback_signaling_urls = self.fallback_signal_urls.clone();
        config.ice_servers = self.ice_servers.clone();
        config.bind_ip = self.bind_ip;
        config.spectator = self.spectate;
        // The socket gives a stalled link up when the session would stop waiting
        // for the peer: silence of `restart_after`, then the rest for recovery.
        config.disconnect_timeout = self
            .session
            .disconnect_timeout
            .saturating_sub(config.restart_after)
            .max(Duration::from_secs(1));
        config.spectator_secret = self.spectator_secret.clone();
        config.no_spectators = self.no_spectators;
        config.rejoin_token = self.rejoin_token.clone();
        config.start_with = self.start_with.map(|k| u8::try_from(k).unwrap_or(u8::MAX));
        config
    }
}

/// Where connecting stands.
#[derive(Resource, Debug, Clone, Default, PartialEq, Eq)]
pub enum ConnectStatus {
    /// Nothing asked yet (no [`RtcPlayConnect`] inserted).
    #[default]
    Idle,
    /// Reaching the signaling server.
    Connecting,
    /// In the room, waiting for the other players to join and connect.
    WaitingForPlayers {
        /// Players in the room (this one included, unless spectating).
        have: usize,
        /// Players the match needs.
        need: usize,
    },
    /// The room is full; connections to the peers are being set up.
    ConnectingPeers,
    /// Every peer is connected and [`RtcPlaySession`] is inserted. Players may
    /// leave during the match ([`PeerLeft`] messages, [`ConnectedPeers::departed`]);
    /// the match goes on while another player remains.
    Running,
    /// The match cannot go on: every other player left (for a spectator: the
    /// host left). The reason names who left and why.
    Ended(String),
    /// Connecting failed; the socket is closed. Insert [`RtcPlayConnect`] again to retry.
    Failed(String),
}

/// Who is who once connected: our peer id and handle, and every remote peer.
#[derive(Resource, Debug, Clone, Default)]
pub struct ConnectedPeers {
    /// Our peer id.
    pub me: Option<PeerId>,
    /// Our player handle (meaningless when spectating).
    pub local_handle: PlayerHandle,
    /// Every player's peer id, in player-handle order (ours included unless
    /// spectating). In a drop-in match, the players who took a seat so far:
    /// seats are taken in order, so handles from `peers.len()` on are vacant.
    pub peers: Vec<PeerId>,
    /// We watch the match as a spectator.
    pub spectating: bool,
    /// Spectators watching through us (we are the host).
    pub spectators: Vec<PeerId>,
    /// Latest transport statistics of each connected remote peer (connection
    /// type, RTT, bytes), refreshed about twice a second; a peer that left is
    /// removed.
    pub transport: HashMap<PeerId, LinkStats>,
    /// Peers (players and spectators) that left during the match, and why.
    pub departed: Vec<(PeerId, DisconnectReason)>,
    /// Peers whose link stalled and is being set up again right now (show
    /// "P2 reconnecting…"); a peer leaves this list when its link is back or
    /// when it is given up (then it is in `departed`).
    pub reconnecting: Vec<PeerId>,
    /// Our secret to take this seat back after a crash or restart
    /// ([`RtcPlayConnect::with_rejoin_token`]); keep it somewhere only this
    /// player can read. `None` when the server gives none (spectators).
    pub rejoin_token: Option<String>,
    /// Our own connection dropped and we are taking our seat back
    /// ([`RtcPlayConnect::auto_rejoin`]): show "reconnecting…". The match goes
    /// on meanwhile (the others see us `Disconnected`); when we are back, the
    /// session is replaced by a rejoining one and this is `false` again.
    pub rejoining: bool,
}

/// A player took a vacant seat of our running drop-in match
/// ([`RtcPlayConnect::with_drop_in`]): the session lets it in at `handle` (its
/// inputs count from a frame the peers agree on, `SessionEvent::PeerRejoined`),
/// and it is in [`ConnectedPeers::peers`].
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDroppedIn {
    /// The new player.
    pub peer: PeerId,
    /// Its player handle (seat).
    pub handle: PlayerHandle,
}

/// A peer (player or spectator) left the running match: sent the moment the
/// socket knows (a peer that closes its game says goodbye, so this does not wait
/// for a timeout). The session marks a departed player's inputs `Disconnected`
/// from an agreed frame on.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLeft {
    /// The peer.
    pub peer: PeerId,
    /// Why it is gone.
    pub reason: DisconnectReason,
    /// It was a spectator watching through us.
    pub spectator: bool,
}

impl ConnectedPeers {
    /// Just connected as `me` (handle `local_handle`) with `peers`.
    pub(crate) fn connected(
        me: PeerId,
        local_handle: PlayerHandle,
        peers: Vec<PeerId>,
        rejoin_token: Option<String>,
    ) -> Self {
        ConnectedPeers {
            me: Some(me),
            local_handle,
            peers,
            spectating: false,
            spectators: Vec::new(),
            transport: HashMap::new(),
            departed: Vec::new(),
            reconnecting: Vec::new(),
            rejoin_token,
            rejoining: false,
        }
    }

    /// The connection type to `peer`: `host`, `srflx`, `prflx`, `relay` or `?`.
    pub fn connection_type(&self, peer: PeerId) -> &'static str {
        match self.transport.get(&peer).and_then(|s| s.candidate_type) {
            Some(CandidateType::Host) => "host",
            Some(CandidateType::ServerReflexive) => "srflx",
            Some(CandidateType::PeerReflexive) => "prflx",
            Some(CandidateType::Relay) => "relay",
            None => "?",
        }
    }
}

/// Adds [`RtcPlayConnect`] handling for input type `I` (add it beside
/// [`RtcPlayPlugin`](crate::RtcPlayPlugin)).
pub struct RtcPlayConnectPlugin<I>(PhantomData<fn() -> I>);

impl<I> Default for RtcPlayConnectPlugin<I> {
    fn default() -> Self {
        RtcPlayConnectPlugin(PhantomData)
    }
}

impl<I: Input + Send + Sync + 'static> Plugin for RtcPlayConnectPlugin<I> {
    fn build(&self, app: &mut App) {
        app.init_resource::<ConnectStatus>()
            .init_resource::<ConnectedPeers>()
            .add_message::<PeerLeft>()
            .add_message::<PeerDroppedIn>()
            .add_systems(
                PreUpdate,
                (
                    drive_connect::<I>,
                    update_transport_clock,
                    pump_state_only,
                    admit_spectators::<I>,
                    seat_dropped_in::<I>,
                    forward_departures::<I>,
                    crate::auto_rejoin::drive_auto_rejoin::<I>,
                )
                    .chain()
                    .before(RtcPlaySystems::Advance),
            )
            .add_message::<crate::state_streams::StateStreamEvent>()
            .add_systems(
                PreUpdate,
                (
                    publish_transport_stats,
                    exchange_desync_reports,
                    crate::state_streams::tick_state_streams,
                )
                    .after(RtcPlaySystems::Advance),
            );
    }
}

/// The request the running match was started with (auto rejoin reuses it).
#[derive(Resource)]
pub(crate) struct ActiveRequest(pub(crate) RtcPlayConnect);

/// The socket while the room fills and connects.
#[derive(Resource)]
struct PendingSocket {
    socket: Socket,
    request: RtcPlayConnect,
    /// The room's players, once it is full.
    players: Vec<PeerId>,
    /// A drop-in room's seats.
    seats: Option<SeatMap>,
}

/// Who holds which seat in a drop-in room (`SocketEvent::Seats`).
#[derive(Debug, Clone)]
pub(crate) struct SeatMap {
    pub(crate) seats: Vec<Option<PeerId>>,
    /// The match ran before we joined: our session takes a running player's state.
    pub(crate) in_progress: bool,
}

/// Shared between the session's transport and the app: the clock of the link
/// conditioner and the latest transport statistics.
#[derive(Resource, Clone, Default)]
pub(crate) struct TransportLink(pub(crate) Arc<LinkShared>);

#[derive(Default)]
pub(crate) struct LinkShared {
    /// `Time<Real>` elapsed, in nanoseconds, as of this update.
    now_nanos: AtomicU64,
    stats: Mutex<HashMap<PeerId, LinkStats>>,
    /// Spectators connected since the last look (the host admits them).
    new_spectators: Mutex<Vec<PeerId>>,
    /// Peers the socket reported gone since the last look.
    departed: Mutex<Vec<(PeerId, DisconnectReason)>>,
    /// Peers whose link is being restarted.
    reconnecting: Mutex<Vec<PeerId>>,
    /// Peers that came back (a link restored, or a player that rejoined).
    returned: Mutex<Vec<PeerId>>,
    /// Players who took a vacant seat since the last look: (peer, seat).
    dropped_in: Mutex<Vec<(PeerId, usize)>>,
    /// Our signaling connection is gone (the socket said `SignalingLost`).
    pub(crate) signaling_lost: std::sync::atomic::AtomicBool,
    /// Messages for the reliable channel (desync reports).
    reliable_out: Mutex<Vec<(PeerId, Vec<u8>)>>,
    /// Messages from the reliable channel, at most [`RELIABLE_INBOX`].
    reliable_in: Mutex<Vec<(PeerId, Vec<u8>)>>,
    /// State-stream datagrams out, sent at the session's next poll.
    pub(crate) state_out: Mutex<Vec<(PeerId, Vec<u8>)>>,
    /// State-stream datagrams in, kept from the session, at most [`STATE_INBOX`].
    pub(crate) state_in: Mutex<Vec<(PeerId, Vec<u8>)>>,
}

/// State-stream datagrams held for the state streams (the oldest dropped).
const STATE_INBOX: usize = 4096;

/// Reliable messages kept until the app reads them (a peer sending more is
/// dropped: only desync reports travel there, a few per match).
const RELIABLE_INBOX: usize = 64;

impl LinkShared {
    /// A fresh link whose clock reads `now`.
    pub(crate) fn at(now: Duration) -> Arc<LinkShared> {
        let link = LinkShared::default();
        let nanos = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        link.now_nanos.store(nanos, Ordering::Relaxed);
        Arc::new(link)
    }
}

/// The socket (with the conditioner, if any) as the session's transport.
struct SocketTransport {
    socket: ConditionedTransport<Socket>,
    link: Arc<LinkShared>,
    peers: Vec<PeerId>,
    last_stats: Duration,
}

impl SocketTransport {
    /// The connected `socket` (conditioned as `request` asks) towards `peers`.
    fn new(
        socket: Socket,
        request: &RtcPlayConnect,
        link: Arc<LinkShared>,
        peers: Vec<PeerId>,
    ) -> Self {
        let conditions = request.netem.unwrap_or_else(LinkConditions::perfect);
        SocketTransport {
            socket: ConditionedTransport::new(socket, conditions, request.netem_seed),
            link,
            peers,
            last_stats: Duration::ZERO,
        }
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.link.now_nanos.load(Ordering::Relaxed))
    }
}

impl Transport for SocketTransport {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        let now = self.now();
        self.socket.set_now(now);
        self.socket.send_to(peer, datagram);
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        let now = self.now();
        self.socket.set_now(now);
        if let Ok(mut outgoing) = self.link.state_out.lock() {
            for (peer, bytes) in outgoing.drain(..) {
                self.socket.send_to(peer, &bytes);
            }
        }
        let from = out.len();
        self.socket.receive(out);
        // State-stream datagrams are not the session's: keep them for the streams.
        if out[from..].iter().any(|(_, d)| is_state_datagram(d)) {
            let mut mine = Vec::with_capacity(out.len() - from);
            if let Ok(mut inbox) = self.link.state_in.lock() {
                for (peer, datagram) in out.drain(from..) {
                    if is_state_datagram(&datagram) {
                        if inbox.len() >= STATE_INBOX {
                            inbox.remove(0);
                        }
                        inbox.push((peer, datagram));
                    } else {
                        mine.push((peer, datagram));
                    }
                }
            }
            out.extend(mine);
        }
        let socket = self.socket.inner_mut();
        if let Ok(mut outgoing) = self.link.reliable_out.lock() {
            for (peer, bytes) in outgoing.drain(..) {
                if let Err(e) = socket.send_reliable(peer, &bytes) {
                    tracing::warn!("rtcplay: desync report to {peer} not sent: {e}");
                }
            }
        }
        let incoming = socket.receive_reliable();
        if let Ok(mut inbox) = self.link.reliable_in.lock() {
            let room = RELIABLE_INBOX.saturating_sub(inbox.len());
            inbox.extend(incoming.into_iter().take(room).map(|m| (m.from, m.data)));
        }
        // Socket events after the start: spectators arrive; peers leave (handed
        // to the session at once instead of waiting for its timeout).
        for event in self.socket.inner_mut().events() {
            match event {
                SocketEvent::SpectatorConnected(peer) => {
                    if let Ok(mut new) = self.link.new_spectators.lock() {
                        new.push(peer);
                    }
                    self.peers.push(peer);
                }
                SocketEvent::PeerReconnecting(peer) => {
                    if let Ok(mut reconnecting) = self.link.reconnecting.lock() {
                        if !reconnecting.contains(&peer) {
                            reconnecting.push(peer);
                        }
                    }
                }
                SocketEvent::PeerReconnected(peer) => {
                    if let Ok(mut reconnecting) = self.link.reconnecting.lock() {
                        reconnecting.retain(|p| *p != peer);
                    }
                    if let Ok(mut returned) = self.link.returned.lock() {
                        returned.push(peer);
                    }
                    if !self.peers.contains(&peer) {
                        self.peers.push(peer);
                    }
                }
                SocketEvent::PlayerDroppedIn { peer, seat } => {
                    if let Ok(mut dropped_in) = self.link.dropped_in.lock() {
                        dropped_in.push((peer, seat));
                    }
                    if !self.peers.contains(&peer) {
                        self.peers.push(peer);
                    }
                }
                SocketEvent::SignalingLost => {
                    self.link.signaling_lost.store(true, Ordering::Relaxed);
                }
                SocketEvent::PeerDisconnected { peer, reason } => {
                    if let Ok(mut reconnecting) = self.link.reconnecting.lock() {
                        reconnecting.retain(|p| *p != peer);
                    }
                    self.peers.retain(|p| *p != peer);
                    if let Ok(mut stats) = self.link.stats.lock() {
                        stats.remove(&peer);
                    }
                    if let Ok(mut departed) = self.link.departed.lock() {
                        departed.push((peer, reason));
                    }
                }
                _ => {}
            }
        }
        if now >= self.last_stats + Duration::from_millis(500) || self.last_stats.is_zero() {
            self.last_stats = now.max(Duration::from_nanos(1));
            let socket = self.socket.inner_mut();
            let fresh: Vec<_> = self
                .peers
                .iter()
                .filter_map(|p| socket.stats(*p).map(|s| (*p, s)))
                .collect();
            if let Ok(mut stats) = self.link.stats.lock() {
                stats.extend(fresh);
            }
        }
    }
}

fn drive_connect<I: Input + Send + Sync + 'static>(world: &mut World) {
    if let Some(request) = world.remove_resource::<RtcPlayConnect>() {
        // A new request replaces whatever was pending.
        world.remove_resource::<PendingSocket>();
        match Socket::new(request.socket_config()) {
            Ok(socket) => {
                world.insert_resource(PendingSocket {
                    socket,
                    request,
                    players: Vec::new(),
                    seats: None,
                });
                *world.resource_mut::<ConnectStatus>() = ConnectStatus::Connecting;
            }
            Err(e) => {
                *world.resource_mut::<ConnectStatus>() = ConnectStatus::Failed(e.to_string());
            }
        }
    }
    let Some(mut pending) = world.get_resource_mut::<PendingSocket>() else {
        return;
    };
    let mut status = None;
    let mut all_connected = false;
    let mut early_spectators = Vec::new();
    let mut early_drop_ins = Vec::new();
    for event in pending.socket.events() {
        match event {
            SocketEvent::WaitingForPlayers { have, need } => {
                status = Some(ConnectStatus::WaitingForPlayers { have, need });
            }
            SocketEvent::RoomFull { players } => {
                pending.players = players;
                status = Some(ConnectStatus::ConnectingPeers);
            }
            SocketEvent::Seats { seats, in_progress } => {
                pending.seats = Some(SeatMap { seats, in_progress });
            }
            SocketEvent::AllConnected => all_connected = true,
            SocketEvent::SpectatorConnected(peer) => early_spectators.push(peer),
            // A newcomer took a seat before our session started: it is seated
            // as soon as the session runs.
            SocketEvent::PlayerDroppedIn { peer, seat } => early_drop_ins.push((peer, seat)),
            SocketEvent::PeerDisconnected { peer, reason } => {
                status = Some(ConnectStatus::Failed(format!(
                    "{peer} disconnected before the match started ({reason:?})"
                )));
            }
            SocketEvent::Error(e) => status = Some(ConnectStatus::Failed(e.to_string())),
            _ => {}
        }
        if matches!(status, Some(ConnectStatus::Failed(_))) {
            break;
        }
    }
    if let Some(ConnectStatus::Failed(reason)) = status {
        world.remove_resource::<PendingSocket>();
        *world.resource_mut::<ConnectStatus>() = ConnectStatus::Failed(reason);
        return;
    }
    if let Some(status) = status {
        *world.resource_mut::<ConnectStatus>() = status;
    }
    let link = world
        .get_resource_or_insert_with(TransportLink::default)
        .0
        .clone();
    if let Ok(mut new) = link.new_spectators.lock() {
        new.extend(early_spectators);
    }
    if let Ok(mut dropped_in) = link.dropped_in.lock() {
        dropped_in.extend(early_drop_ins);
    }
    if !all_connected {
        return;
    }
    let Some(PendingSocket {
        mut socket,
        request,
        players,
        seats,
    }) = world.remove_resource::<PendingSocket>()
    else {
        return;
    };
    let Some(me) = socket.id() else {
        *world.resource_mut::<ConnectStatus>() =
            ConnectStatus::Failed("connected without a peer id".into());
        return;
    };
    match start_session::<I>(me, socket, &request, players, seats, link) {
        Ok(Started::StateOnly(link, peers)) => {
            world.insert_resource(*link);
            world.insert_resource(ActiveRequest(request));
            *world.resource_mut::<ConnectedPeers>() = peers;
            *world.resource_mut::<ConnectStatus>() = ConnectStatus::Running;
        }
        Ok(Started::Session(session, peers)) => {
            world.insert_resource(*session);
            world.insert_resource(ActiveRequest(request));
            *world.resource_mut::<ConnectedPeers>() = peers;
            *world.resource_mut::<ConnectStatus>() = ConnectStatus::Running;
        }
        Err(reason) => *world.resource_mut::<ConnectStatus>() = ConnectStatus::Failed(reason),
    }
}

/// Build the P2P or spectator session over the connected socket.
pub(crate) fn start_session<I: Input + Send + Sync + 'static>(
    me: PeerId,
    mut socket: Socket,
    request: &RtcPlayConnect,
    mut players: Vec<PeerId>,
    seats: Option<SeatMap>,
    link: Arc<LinkShared>,
) -> Result<Started<I>, String> {
    let mut config = request.session.clone();
    config.num_players = request.players;
    let rejoin_token = socket.rejoin_token();
    let mut builder = SessionBuilder::<I>::new().with_config(config);
    let in_progress = seats.as_ref().is_some_and(|s| s.in_progress);
    if (request.rejoin_token.is_some() || in_progress) && !request.spectate {
        builder = builder.rejoining(rtcplay::session::new_incarnation());
    }
    if request.state_only {
        if players.is_empty() {
            players = socket.connected_peers();
            players.push(me);
        }
        players.sort();
        players.dedup();
        let others = players.iter().copied().filter(|p| *p != me).collect();
        let transport = SocketTransport::new(socket, request, link, others);
        let local_handle = players.iter().position(|p| *p == me).unwrap_or(0);
        let peers = ConnectedPeers::connected(me, local_handle, players, None);
        return Ok(Started::StateOnly(
            Box::new(StateOnlyLink(transport)),
            peers,
        ));
    }
    if request.spectate {
        let host = *players.first().ok_or("the room announced no players")?;
        let session = builder
            .start_spectator_session(host)
            .map_err(|e| e.to_string())?;
        let transport = SocketTransport::new(socket, request, link, vec![host]);
        let peers = ConnectedPeers {
            spectating: true,
            ..ConnectedPeers::connected(me, 0, players, None)
        };
        return Ok(Started::Session(
            Box::new(RtcPlaySession::spectator(session, transport)),
            peers,
        ));
    }
    if players.is_empty() {
        players = socket.connected_peers();
        players.push(me);
        players.sort();
        players.dedup();
    }
    // Handles: the seats of a drop-in room (vacant ones too), else the players
    // in ascending id order.
    let seats: Vec<Option<PeerId>> = match seats {
        Some(map) => map.seats,
        None => players.iter().copied().map(Some).collect(),
    };
    let mut local_handle = 0;
    for (handle, seat) in seats.iter().enumerate() {
        let kind = match seat {
            Some(peer) if *peer == me => {
                local_handle = handle;
                PlayerType::Local
            }
            Some(peer) => PlayerType::Remote(*peer),
            None => PlayerType::Vacant,
        };
        builder = builder.add_player(kind, handle);
    }
    let session = builder.start_p2p_session().map_err(|e| e.to_string())?;
    let others = players.iter().copied().filter(|p| *p != me).collect();
    let transport = SocketTransport::new(socket, request, link, others);
    let players: Vec<PeerId> = seats.iter().flatten().copied().collect();
    let peers = ConnectedPeers::connected(me, local_handle, players, rejoin_token);
    Ok(Started::Session(
        Box::new(RtcPlaySession::p2p(session, transport)),
        peers,
    ))
}

/// What a connected socket became.
pub(crate) enum Started<I: Input> {
    /// A rollback session (P2P or spectator) owns it.
    Session(Box<RtcPlaySession<I>>, ConnectedPeers),
    /// No session: the state streams alone use it.
    StateOnly(Box<StateOnlyLink>, ConnectedPeers),
}

/// The socket of a state-only match: pumped every update for the state streams.
#[derive(Resource)]
pub(crate) struct StateOnlyLink(SocketTransport);

/// A state-only match's socket: send what the state streams queued, set
/// aside what arrived for them (anything else is not for this match: dropped),
/// and pass on the socket's events as the session's transport does.
fn pump_state_only(
    link: Option<ResMut<StateOnlyLink>>,
    mut scratch: Local<Vec<(PeerId, Vec<u8>)>>,
) {
    let Some(mut link) = link else {
        return;
    };
    scratch.clear();
    link.0.receive(&mut scratch);
    if !scratch.is_empty() {
        tracing::debug!(
            "rtcplay: {} datagrams that are not state datagrams dropped (state-only match)",
            scratch.len()
        );
    }
}

/// The host starts sending confirmed inputs to spectators that connected.
fn admit_spectators<I: Input + Send + Sync + 'static>(
    link: Option<Res<TransportLink>>,
    time: Res<Time<Real>>,
    session: Option<ResMut<RtcPlaySession<I>>>,
    mut peers: ResMut<ConnectedPeers>,
) {
    let (Some(link), Some(mut session)) = (link, session) else {
        return;
    };
    let RtcPlaySession::P2P { session, .. } = &mut *session else {
        return;
    };
    let new: Vec<PeerId> = match link.0.new_spectators.lock() {
        Ok(mut new) => std::mem::take(&mut *new),
        Err(_) => return,
    };
    for peer in new {
        match session.add_spectator(peer, time.elapsed()) {
            Ok(()) => {
                tracing::info!("rtcplay: spectator {peer} joined");
                peers.spectators.push(peer);
            }
            Err(e) => tracing::warn!("rtcplay: spectator {peer} refused: {e}"),
        }
    }
}

/// Players who took a vacant seat: the session lets them in, the game gets
/// [`PeerDroppedIn`].
fn seat_dropped_in<I: Input + Send + Sync + 'static>(
    link: Option<Res<TransportLink>>,
    session: Option<ResMut<RtcPlaySession<I>>>,
    mut peers: ResMut<ConnectedPeers>,
    mut joined: MessageWriter<PeerDroppedIn>,
) {
    let (Some(link), Some(mut session)) = (link, session) else {
        return;
    };
    let RtcPlaySession::P2P { session, .. } = &mut *session else {
        return;
    };
    let dropped_in: Vec<(PeerId, usize)> = match link.0.dropped_in.lock() {
        Ok(mut new) => std::mem::take(&mut *new),
        Err(_) => return,
    };
    for (peer, handle) in dropped_in {
        match session.seat_player(handle, peer) {
            Ok(()) => {
                tracing::info!("rtcplay: {peer} took seat {handle}");
                if !peers.peers.contains(&peer) {
                    peers.peers.push(peer);
                }
                joined.write(PeerDroppedIn { peer, handle });
            }
            Err(e) => tracing::warn!("rtcplay: {peer} cannot take seat {handle}: {e}"),
        }
    }
}

/// Peers the socket reported gone: the session disconnects them at once, the
/// game gets [`PeerLeft`], and [`ConnectStatus`] becomes `Ended` when no other
/// player (for a spectator: no host) is left.
fn forward_departures<I: Input + Send + Sync + 'static>(
    link: Option<Res<TransportLink>>,
    session: Option<ResMut<RtcPlaySession<I>>>,
    mut peers: ResMut<ConnectedPeers>,
    mut status: ResMut<ConnectStatus>,
    mut left: MessageWriter<PeerLeft>,
) {
    let Some(link) = link else {
        return;
    };
    let mut session = session;
    if let Ok(reconnecting) = link.0.reconnecting.lock() {
        if peers.reconnecting != *reconnecting {
            peers.reconnecting.clone_from(&reconnecting);
        }
    }
    if let Ok(mut returned) = link.0.returned.lock() {
        for peer in returned.drain(..) {
            peers.departed.retain(|(p, _)| *p != peer);
        }
    }
    let departed: Vec<(PeerId, DisconnectReason)> = match link.0.departed.lock() {
        Ok(mut departed) => std::mem::take(&mut *departed),
        Err(_) => return,
    };
    for (peer, reason) in departed {
        if peers.departed.iter().any(|(p, _)| *p == peer) {
            continue;
        }
        let spectator = peers.spectators.contains(&peer);
        peers.spectators.retain(|p| *p != peer);
        peers.transport.remove(&peer);
        peers.departed.push((peer, reason));
        if let Some(RtcPlaySession::P2P { session, .. }) = session.as_deref_mut() {
            session.disconnect_peer(peer);
        }
        tracing::info!("rtcplay: {peer} left ({reason:?})");
        left.write(PeerLeft {
            peer,
            reason,
            spectator,
        });
    }
    // Not over while we are taking our own seat back: the others are gone from
    // our old socket's view only.
    if *status != ConnectStatus::Running || peers.rejoining {
        return;
    }
    let gone = |p: &PeerId| peers.departed.iter().any(|(d, _)| d == p);
    let remaining = peers
        .peers
        .iter()
        .filter(|p| Some(**p) != peers.me && !gone(p))
        .count();
    let host_gone = peers.spectating && peers.peers.first().is_some_and(gone);
    if remaining == 0 || host_gone {
        let who: Vec<String> = peers
            .departed
            .iter()
            .filter(|(p, _)| peers.peers.contains(p))
            .map(|(p, reason)| format!("{p} ({reason:?})"))
            .collect();
        *status = ConnectStatus::Ended(format!("left: {}", who.join(", ")));
    }
}

/// Desync forensics over the reliable channel: our reports go out; a peer's
/// report is compared with our values of that frame, announced as
/// [`RtcPlayEvent::DesyncForensics`], logged, and written beside the replay
/// being recorded (if any).
fn exchange_desync_reports(world: &mut World) {
    let Some(link) = world.get_resource::<TransportLink>().map(|l| l.0.clone()) else {
        return;
    };
    // (A state-only match has no rollback plugin and no reports.)
    let Some(mut trace) = world.get_resource_mut::<ForensicsTrace>() else {
        return;
    };
    let outgoing = std::mem::take(&mut trace.outbox);
    if !outgoing.is_empty() {
        if let Ok(mut out) = link.reliable_out.lock() {
            out.extend(outgoing);
        }
    }
    let incoming = match link.reliable_in.lock() {
        Ok(mut inbox) => std::mem::take(&mut *inbox),
        Err(_) => return,
    };
    for (peer, bytes) in incoming {
        let report = world
            .resource_scope(|world, trace: Mut<ForensicsTrace>| trace.compare(world, peer, &bytes));
        let Some(mut report) = report else {
            continue;
        };
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(replay) = world
            .get_resource::<crate::RtcPlayRecording>()
            .and_then(|r| r.path().map(std::path::Path::to_path_buf))
        {
            let file = replay.with_extension(format!("desync-{}-peer{}.txt", report.frame, peer.0));
            let text = crate::forensics::report_text(&report, Some(&replay.display().to_string()));
            match std::fs::write(&file, text) {
                Ok(()) => report.file = Some(file.display().to_string()),
                Err(e) => tracing::warn!("rtcplay: cannot write {}: {e}", file.display()),
            }
        }
        let values: Vec<String> = report.values.iter().map(ToString::to_string).collect();
        tracing::error!(
            "rtcplay: desync with {peer} at frame {}: differing values {values:?}{}",
            report.frame,
            report
                .file
                .as_deref()
                .map(|f| format!("; report in {f}"))
                .unwrap_or_default()
        );
        world.write_message(RtcPlayEvent::DesyncForensics(report));
    }
}

/// The conditioner runs on the app's clock (`Time<Real>`, manual in tests).
fn update_transport_clock(link: Option<Res<TransportLink>>, time: Res<Time<Real>>) {
    if let Some(link) = link {
        let nanos = u64::try_from(time.elapsed().as_nanos()).unwrap_or(u64::MAX);
        link.0.now_nanos.store(nanos, Ordering::Relaxed);
    }
}

fn publish_transport_stats(link: Option<Res<TransportLink>>, mut peers: ResMut<ConnectedPeers>) {
    let Some(link) = link else {
        return;
    };
    let latest = match link.0.stats.try_lock() {
        Ok(stats) => stats.clone(),
        Err(_) => return,
    };
    peers.transport.extend(latest);
}
