//! One WebRTC connection to one peer, with two pre-negotiated data channels.
//!
//! A peer runs as one tokio task ([`spawn_peer`]). It builds the `RTCPeerConnection`,
//! exchanges offer/answer and trickled candidates through its owner (who relays them
//! over signaling), proves both channels with a hello/ack round trip, then serves the
//! link: RTT pings, keepalive-based disconnect detection, stats. Each data channel is
//! drained by its own reader task and fed by its own writer task, so a busy channel
//! never stalls the connection. The task ends — closing the connection and stopping
//! every helper task — when the peer is gone or the owner drops its [`PeerHandle`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use webrtc::error::Error as RtcError;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCIceCandidateType, RTCIceConnectionState, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry, SettingEngineBuilder,
    StatsSelector,
};

use super::boost::BoostRuntime;
use super::channels::{read_channel, write_channel, Channels};
use super::handler::{Handler, Internal};
use super::link::{Inbox, LinkHandle, LinkPublisher, LinkShared};
use super::socket::Control;
use crate::transport::link_protocol::{LinkAction, LinkFailure, LinkProtocol, LinkTimers};
use crate::transport::wire::MAX_WIRE_MESSAGE;
use crate::transport::{
    CandidateType, Channel, ConnectionState, DisconnectReason, IceServerConfig, LinkStats, PeerId,
    SetupTimings, SocketConfig, TransportError,
};

/// How long a working server-reflexive pair waits for a host pair to win
/// (webrtc-rs default: 500 ms).
const SRFLX_ACCEPTANCE_WAIT: Duration = Duration::from_millis(50);

/// Binding requests per candidate pair before it counts as failed (fast connect).
const ICE_MAX_BINDING_REQUESTS: u16 = 100;
/// How long a closing peer waits for its goodbye to be acknowledged.
const BYE_FLUSH: Duration = Duration::from_millis(100);

/// Offer/answer/candidate messages a peer wants relayed to its remote, or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerSignal {
    /// SDP offer.
    Offer(String),
    /// SDP answer.
    Answer(String),
    /// A trickled ICE candidate.
    Candidate {
        /// `candidate:...` attribute.
        candidate: String,
        /// Media id.
        sdp_mid: Option<String>,
        /// Media line index.
        sdp_mline_index: Option<u16>,
    },
    /// Gathering finished.
    EndOfCandidates,
}

/// What a peer task reports to its owner.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// Relay this to the remote.
    Signal(PeerSignal),
    /// Hello acknowledged on both channels: the peer is connected. Its link was
    /// handed to the game thread just before (or earlier, with its first message).
    Connected,
    /// Fresh statistics (sent on every ping tick and on state changes).
    Stats(LinkStats),
    /// A connected peer went away. The task has ended.
    Disconnected(DisconnectReason),
    /// The peer never connected. The task has ended.
    Failed(TransportError),
}

/// Everything a peer task needs.
#[derive(Debug, Clone)]
pub(crate) struct PeerParams {
    /// The remote peer.
    pub(crate) remote: PeerId,
    /// Whether we send the offer (the higher id offers).
    pub(crate) offerer: bool,
    /// Socket configuration (timeouts, queues, bind address).
    pub(crate) config: Arc<SocketConfig>,
    /// ICE servers (configured plus announced by signaling).
    pub(crate) ice_servers: Vec<IceServerConfig>,
    /// Gather and use TURN relay candidates only (the configured policy, or the
    /// second attempt after a direct one failed).
    pub(crate) relay_only: bool,
    /// Time from the start of this attempt until the peer must be connected.
    pub(crate) handshake_timeout: Duration,
    /// The game's inbox.
    pub(crate) inbox: Inbox,
    /// The game thread's control channel (the link's handle goes there).
    pub(crate) control: crossbeam_channel::Sender<Control>,
    /// Number of this attempt to connect to `remote` (events are tagged with it).
    pub(crate) attempt: u32,
    /// Where events go, tagged with the remote's id and the attempt.
    pub(crate) events: mpsc::UnboundedSender<(PeerId, u32, PeerEvent)>,
}

/// The owner's handle: feed remote signals in; drop it to close the connection.
#[derive(Debug)]
pub(crate) struct PeerHandle {
    signals: mpsc::UnboundedSender<PeerSignal>,
    task: JoinHandle<()>,
}

impl PeerHandle {
    /// Pass on a signal from the remote. Ignored if the task has ended.
    pub(crate) fn signal(&self, signal: PeerSignal) {
        let _ = self.signals.send(signal);
    }

    /// Close the connection (politely: the remote gets a goodbye) and wait for the
    /// task to finish.
    pub(crate) async fn close(self) {
        let PeerHandle { signals, task } = self;
        drop(signals);
        let _ = task.await;
    }
}

/// Start a peer task on the current tokio runtime.
pub(crate) fn spawn_peer(params: PeerParams) -> PeerHandle {
    let (signals, signal_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run_peer(params, signal_rx));
    PeerHandle { signals, task }
}

/// Why the serving loop ended.
enum End {
    /// The owner dropped the handle: close politely.
    OwnerGone,
    /// The remote is gone.
    Disconnected(DisconnectReason),
    /// The connection never came up.
    Failed(TransportError),
}

/// Candidate types of the selected ICE pair.
#[derive(Debug, Default, Clone, Copy)]
struct CandidatePair {
    local: Option<CandidateType>,
    remote: Option<CandidateType>,
}

async fn run_peer(params: PeerParams, mut signals: mpsc::UnboundedReceiver<PeerSignal>) {
    let remote = params.remote;
    let attempt = params.attempt;
    let events = params.events.clone();
    let (internal_tx, mut internal_rx) = mpsc::unbounded_channel();
    let internal_tx = Arc::new(internal_tx);
    let (boost_runtime, boost) = BoostRuntime::new(params.config.fast_connect);
    let link = LinkShared::new(LinkTimers::from_config(
        &params.config,
        params.handshake_timeout,
    ));

    let built = build_connection(&params, boost_runtime, Arc::downgrade(&internal_tx)).await;
    let (pc, channels) = match built {
        Ok(parts) => parts,
        Err(error) => {
            let _ = events.send((remote, attempt, PeerEvent::Failed(error)));
            return;
        }
    };

    let mut helpers: Vec<JoinHandle<()>> = Vec::new();
    let handle = start_writers(&channels, &params.config, &link, &mut helpers);
    let publisher = LinkPublisher::new(remote, handle, params.control.clone());
    for channel in [Channel::Unreliable, Channel::Reliable] {
        helpers.push(tokio::spawn(read_channel(
            channels.get(channel).clone(),
            channel,
            remote,
            params.inbox.clone(),
            link.clone(),
            publisher.clone(),
            Arc::downgrade(&internal_tx),
        )));
    }

    let mut task = PeerTask {
        params,
        pc: pc.clone(),
        channels,
        link,
        publisher,
        boost,
        internal_tx,
        started: Instant::now(),
        timings: SetupTimings::default(),
        channels_opened: [false; 2],
        remote_description_set: false,
        pending_candidates: Vec::new(),
        connected: false,
        candidate_types: None,
        rate_sample: (Instant::now(), 0, 0),
        rates: (0.0, 0.0),
    };
    let end = task.serve(&mut signals, &mut internal_rx).await;

    // Tear down: goodbye if we chose to leave, then close and stop every helper.
    task.boost.store(false, Ordering::Relaxed);
    task.link.closed.store(true, Ordering::Relaxed);
    let mut goodbye = Vec::new();
    if let Ok(mut protocol) = task.link.protocol.lock() {
        protocol.leave(&mut goodbye);
    }
    if matches!(end, End::OwnerGone) && !goodbye.is_empty() {
        for action in goodbye {
            if let LinkAction::Send(channel, frame) = action {
                let _ = task
                    .channels
                    .get(channel)
                    .try_send(BytesMut::from(&frame[..]))
                    .await;
            }
        }
        // Give the goodbye a moment to be acknowledged before the connection goes.
        let flushed = async {
            while task
                .channels
                .reliable
                .outstanding_bytes()
                .await
                .unwrap_or(0)
                > 0
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let _ = tokio::time::timeout(BYE_FLUSH, flushed).await;
    }
    let _ = pc.close().await;
    for helper in &helpers {
        helper.abort();
    }
    let state = ConnectionState::Disconnected;
    let _ = events.send((remote, attempt, PeerEvent::Stats(task.stats(state))));
    match end {
        End::OwnerGone => {}
        End::Disconnected(reason) => {
            let _ = events.send((remote, attempt, PeerEvent::Disconnected(reason)));
        }
        End::Failed(error) => {
            let _ = events.send((remote, attempt, PeerEvent::Failed(error)));
        }
    }
}

/// The game-side queues of a link and the writer tasks that drain them into the
/// data channels. Nothing is queued until the link is published to the game thread.
fn start_writers(
    channels: &Channels,
    config: &SocketConfig,
    link: &Arc<LinkShared>,
    helpers: &mut Vec<JoinHandle<()>>,
) -> LinkHandle {
    let (unreliable_tx, unreliable_rx) = crossbeam_channel::bounded(config.unreliable_queue.max(1));
    let (reliable_tx, reliable_rx) = crossbeam_channel::bounded(config.reliable_queue.max(1));
    let handle = LinkHandle {
        unreliable_tx,
        unreliable_rx: unreliable_rx.clone(),
        unreliable_wake: Arc::new(Notify::new()),
        reliable_tx,
        reliable_wake: Arc::new(Notify::new()),
        shared: link.clone(),
    };
    let queues = [
        (Channel::Unreliable, unreliable_rx, &handle.unreliable_wake),
        (Channel::Reliable, reliable_rx, &handle.reliable_wake),
    ];
    for (channel, queue, wake) in queues {
        helpers.push(tokio::spawn(write_channel(
            channels.get(channel).clone(),
            channel,
            queue,
            wake.clone(),
            link.clone(),
        )));
    }
    handle
}

async fn build_connection(
    params: &PeerParams,
    runtime: Arc<BoostRuntime>,
    target: Weak<mpsc::UnboundedSender<Internal>>,
) -> Result<(Arc<dyn PeerConnection>, Channels), TransportError> {
    let remote = params.remote;
    let webrtc_error = |e: RtcError| TransportError::WebRtc {
        peer: remote,
        message: e.to_string(),
    };
    let config = &params.config;
    let ice_servers = params
        .ice_servers
        .iter()
        .map(|server| RTCIceServer {
            urls: server.urls.clone(),
            username: server.username.clone().unwrap_or_default(),
            credential: server.credential.clone().unwrap_or_default(),
        })
        .collect();
    let mut settings = SettingEngineBuilder::new()
        // The answerer is the DTLS server (`a=setup:passive`): the offerer's ClientHello
        // then goes out as soon as ICE connects (faster, and no lost first message with
        // browsers).
        .with_answering_dtls_role(rtc::peer_connection::transport::RTCDtlsRole::Server)
        .with_include_loopback_candidate(config.bind_ip.is_loopback())
        .with_multicast_dns_mode(mdns_mode())
        // One limit for what we advertise, accept and send (the negotiated size is
        // the smaller of both sides' offers; browsers offer more).
        .with_sctp_max_message_size(
            rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize::Bounded(
                MAX_WIRE_MESSAGE as u32,
            ),
        );
    if params.relay_only {
        // Relay candidates normally wait (2 s) for a direct path to win; with relays
        // only there is nothing to wait for.
        settings = settings.with_relay_acceptance_min_wait(Some(Duration::ZERO));
    }
    if config.fast_connect {
        settings = settings
            // Through NATs the first checks of a pair are dropped until the other
            // side's checks open the mapping (and trickled candidates arrive over
            // signaling): give each pair ~1 s of retries instead of the default 7.
            .with_ice_connection_attempts(
                Some(Duration::from_millis(10)),
                Some(ICE_MAX_BINDING_REQUESTS),
            )
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            // A server-reflexive pair (through NATs) is otherwise held back 500 ms
            // in case a host pair wins; on a LAN host pairs answer within a few ms.
            .with_srflx_acceptance_min_wait(Some(SRFLX_ACCEPTANCE_WAIT));
    }
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(ice_servers)
                .with_ice_transport_policy(if params.relay_only {
                    RTCIceTransportPolicy::Relay
                } else {
                    RTCIceTransportPolicy::All
                })
                .build(),
        )
        .with_setting_engine(settings.build())
        .with_runtime(runtime)
        .with_handler(Arc::new(Handler { target }))
        .with_udp_addrs(vec![std::net::SocketAddr::new(config.bind_ip, 0)])
        .with_data_channel_send_buffer_limit(config.send_buffer_limit)
        .build()
        .await
        .map_err(webrtc_error)?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let channels = Channels::create(pc.as_ref()).await.map_err(webrtc_error)?;
    Ok((pc, channels))
}

struct PeerTask {
    params: PeerParams,
    pc: Arc<dyn PeerConnection>,
    channels: Channels,
    link: Arc<LinkShared>,
    publisher: LinkPublisher,
    boost: Arc<AtomicBool>,
    /// Kept alive here: the handler and channel tasks hold only `Weak` references.
    #[allow(dead_code)]
    internal_tx: Arc<mpsc::UnboundedSender<Internal>>,
    started: Instant,
    timings: SetupTimings,
    /// Which channels have opened (for the setup timings).
    channels_opened: [bool; 2],
    remote_description_set: bool,
    pending_candidates: Vec<RTCIceCandidateInit>,
    connected: bool,
    candidate_types: Option<CandidatePair>,
    /// Previous (time, bytes in, bytes out) sample for the per-second rates.
    rate_sample: (Instant, u64, u64),
    rates: (f64, f64),
}

fn index(channel: Channel) -> usize {
    match channel {
        Channel::Unreliable => 0,
        Channel::Reliable => 1,
    }
}

impl PeerTask {
    fn remote(&self) -> PeerId {
        self.params.remote
    }

    fn emit(&self, event: PeerEvent) {
        let _ = self
            .params
            .events
            .send((self.remote(), self.params.attempt, event));
    }

    fn webrtc_error(&self, error: RtcError) -> TransportError {
        TransportError::WebRtc {
            peer: self.remote(),
            message: error.to_string(),
        }
    }

    fn elapsed(&self) -> Option<Duration> {
        Some(self.started.elapsed())
    }

    async fn serve(
        &mut self,
        signals: &mut mpsc::UnboundedReceiver<PeerSignal>,
        internal: &mut mpsc::UnboundedReceiver<Internal>,
    ) -> End {
        let stats = self.stats(ConnectionState::Connecting);
        self.emit(PeerEvent::Stats(stats));
        if self.params.offerer {
            if let Err(error) = self.send_offer().await {
                return End::Failed(error);
            }
        }
        let config = self.params.config.clone();
        // Stats (and the end of the setup boost) every ping interval once connected.
        let mut stats_timer = tokio::time::interval(config.ping_interval);
        stats_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            // The protocol's next timer: a hello to repeat, the handshake deadline,
            // a ping (with the silence check).
            // (A timer beyond what an Instant can hold, from an endless timeout,
            // is checked again in an hour.)
            let later = tokio::time::Instant::now() + Duration::from_secs(3600);
            let wakeup = self
                .protocol(|p| p.next_wakeup())
                .flatten()
                .and_then(|at| self.link.epoch.checked_add(at))
                .map_or(later, |at| tokio::time::Instant::from_std(at).min(later));
            tokio::select! {
                signal = signals.recv() => match signal {
                    None => return End::OwnerGone,
                    Some(signal) => {
                        if let Err(error) = self.on_signal(signal).await {
                            if !self.connected {
                                return End::Failed(error);
                            }
                        }
                    }
                },
                Some(event) = internal.recv() => {
                    let was_connected = self.connected;
                    if let Some(end) = self.on_internal(event).await {
                        return end;
                    }
                    if self.connected && !was_connected {
                        // First stats (and the end of the boost) one interval from now.
                        stats_timer.reset();
                    }
                }
                _ = tokio::time::sleep_until(wakeup) => {
                    let mut actions = Vec::new();
                    let now = self.link.now();
                    self.protocol(|p| p.poll(now, &mut actions));
                    if let Some(end) = self.carry_out(actions).await {
                        return end;
                    }
                }
                _ = stats_timer.tick(), if self.connected => {
                    // Setup is over even if the remote's last hello got lost.
                    self.boost.store(false, Ordering::Relaxed);
                    if self.candidate_types.is_none() {
                        self.candidate_types = selected_candidate_types(self.pc.as_ref()).await;
                    }
                    // Periodic stats go into a slot the game reads, not into a
                    // queue that would grow while the game does not look.
                    let stats = self.stats(ConnectionState::Connected);
                    if let Ok(mut latest) = self.link.latest.lock() {
                        *latest = Some(stats);
                    }
                }
            }
        }
    }

    /// Run `f` on the link's protocol (`None` if its lock is poisoned).
    fn protocol<T>(&self, f: impl FnOnce(&mut LinkProtocol) -> T) -> Option<T> {
        self.link.protocol.lock().ok().map(|mut p| f(&mut p))
    }

    /// Carry out what the link's protocol decided; `Some` when the link ended.
    async fn carry_out(&mut self, actions: Vec<LinkAction>) -> Option<End> {
        for action in actions {
            match action {
                LinkAction::Send(channel, frame) => {
                    let _ = self
                        .channels
                        .get(channel)
                        .try_send(BytesMut::from(&frame[..]))
                        .await;
                }
                LinkAction::PeerReady => self.publisher.publish(),
                // Once both sides have proven both channels, the boost has done its job.
                LinkAction::SetupDone => self.boost.store(false, Ordering::Relaxed),
                LinkAction::Connected => {
                    if !self.connected {
                        self.on_connected().await;
                    }
                }
                LinkAction::Disconnected(reason) => return Some(End::Disconnected(reason)),
                LinkAction::Failed(LinkFailure::HandshakeTimeout) => {
                    return Some(End::Failed(TransportError::HandshakeTimeout(self.remote())));
                }
                LinkAction::Failed(LinkFailure::ClosedDuringSetup) => {
                    return Some(End::Failed(TransportError::WebRtc {
                        peer: self.remote(),
                        message: "remote closed during setup".into(),
                    }));
                }
            }
        }
        None
    }

    async fn send_offer(&mut self) -> Result<(), TransportError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| self.webrtc_error(e))?;
        // The offerer takes the DTLS client role: the remote (an answering native
        // peer does anyway) waits for our ClientHello, which goes out the moment our
        // ICE agent (controlling) has selected a pair. Left to choose (`actpass`),
        // a browser takes the client role and sends its ClientHello as soon as its
        // own checks succeed — before we have selected a pair, when webrtc-rs still
        // drops every non-STUN packet — and DTLS then waits ~50 ms for the
        // browser's retransmission.
        let sdp = offer.sdp.replace("a=setup:actpass", "a=setup:active");
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|e| self.webrtc_error(e))?;
        self.emit(PeerEvent::Signal(PeerSignal::Offer(sdp)));
        Ok(())
    }

    async fn on_signal(&mut self, signal: PeerSignal) -> Result<(), TransportError> {
        match signal {
            PeerSignal::Offer(sdp) if !self.params.offerer && !self.remote_description_set => {
                let offer = RTCSessionDescription::offer(sdp).map_err(|e| self.webrtc_error(e))?;
                self.pc
                    .set_remote_description(offer)
                    .await
                    .map_err(|e| self.webrtc_error(e))?;
                self.remote_description_set = true;
                let answer = self
                    .pc
                    .create_answer(None)
                    .await
                    .map_err(|e| self.webrtc_error(e))?;
                let sdp = answer.sdp.clone();
                self.pc
                    .set_local_description(answer)
                    .await
                    .map_err(|e| self.webrtc_error(e))?;
                self.emit(PeerEvent::Signal(PeerSignal::Answer(sdp)));
                self.flush_candidates().await;
            }
            PeerSignal::Answer(sdp) if self.params.offerer && !self.remote_description_set => {
                let answer =
                    RTCSessionDescription::answer(sdp).map_err(|e| self.webrtc_error(e))?;
                self.pc
                    .set_remote_description(answer)
                    .await
                    .map_err(|e| self.webrtc_error(e))?;
                self.remote_description_set = true;
                self.flush_candidates().await;
            }
            PeerSignal::Offer(_) | PeerSignal::Answer(_) => {
                // Out of turn or repeated: not ours to act on; ignore rather than fail.
                tracing::debug!(peer = %self.remote(), "ignoring unexpected description");
            }
            PeerSignal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
            } => {
                let init = RTCIceCandidateInit {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                    ..Default::default()
                };
                if self.remote_description_set {
                    self.add_candidate(init).await;
                } else {
                    self.pending_candidates.push(init);
                }
            }
            PeerSignal::EndOfCandidates => {}
        }
        Ok(())
    }

    async fn flush_candidates(&mut self) {
        for init in std::mem::take(&mut self.pending_candidates) {
            self.add_candidate(init).await;
        }
    }

    async fn add_candidate(&mut self, init: RTCIceCandidateInit) {
        if let Err(error) = self.pc.add_ice_candidate(init).await {
            // A bad candidate from the remote costs that candidate only.
            tracing::debug!(peer = %self.remote(), %error, "ignoring remote candidate");
            return;
        }
        // add_ice_candidate does not wake the driver; the check would wait a tick.
        if self.params.config.fast_connect {
            self.channels.nudge().await;
        }
    }

    async fn on_internal(&mut self, event: Internal) -> Option<End> {
        match event {
            Internal::LocalCandidate(init) => {
                self.emit(PeerEvent::Signal(PeerSignal::Candidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                }));
            }
            Internal::GatheringComplete => {
                self.emit(PeerEvent::Signal(PeerSignal::EndOfCandidates));
            }
            Internal::IceState(state) => match state {
                RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                    if self.timings.ice_connected.is_none() {
                        self.timings.ice_connected = self.elapsed();
                    }
                    if self.params.config.fast_connect {
                        self.channels.nudge().await;
                    }
                }
                RTCIceConnectionState::Failed if !self.connected => {
                    return Some(End::Failed(TransportError::IceFailed(self.remote())));
                }
                _ => {}
            },
            Internal::PcState(state) => match state {
                RTCPeerConnectionState::Connected => {
                    if self.timings.dtls_connected.is_none() {
                        self.timings.dtls_connected = self.elapsed();
                    }
                    if self.params.config.fast_connect {
                        self.channels.nudge().await;
                    }
                }
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    // A peer that leaves says goodbye first (a `bye` frame ends
                    // the link as `Closed`); a connection that closes without one
                    // went away underneath us, and is restarted like a failed one.
                    return Some(if self.connected {
                        End::Disconnected(DisconnectReason::ConnectionFailed)
                    } else if self.timings.ice_connected.is_none() {
                        End::Failed(TransportError::IceFailed(self.remote()))
                    } else {
                        End::Failed(TransportError::WebRtc {
                            peer: self.remote(),
                            message: format!("connection {state} during setup"),
                        })
                    });
                }
                _ => {}
            },
            Internal::Open(channel) => {
                let now = self.link.now();
                let mut actions = Vec::new();
                self.protocol(|p| p.channel_open(now, channel, &mut actions));
                self.channels_opened[index(channel)] = true;
                if self.channels_opened.iter().all(|open| *open)
                    && self.timings.channels_open.is_none()
                {
                    self.timings.channels_open = self.elapsed();
                }
                return self.carry_out(actions).await;
            }
            Internal::Link(action) => return self.carry_out(vec![action]).await,
            Internal::ChannelClosed => {
                let mut actions = Vec::new();
                self.protocol(|p| p.channel_closed(&mut actions));
                if actions.is_empty() {
                    // The protocol had already ended (e.g. a bye came first).
                    return Some(if self.connected {
                        End::Disconnected(DisconnectReason::Closed)
                    } else {
                        End::Failed(TransportError::WebRtc {
                            peer: self.remote(),
                            message: "data channel closed during setup".into(),
                        })
                    });
                }
                return self.carry_out(actions).await;
            }
        }
        None
    }

    async fn on_connected(&mut self) {
        self.connected = true;
        self.timings.hello_acked = self.elapsed();
        self.publisher.publish();
        self.candidate_types = selected_candidate_types(self.pc.as_ref()).await;
        // Stats first: the socket applies both in order, so a game that asks for
        // the link's stats on `PeerConnected`/`AllConnected` always finds them.
        let stats = self.stats(ConnectionState::Connected);
        self.emit(PeerEvent::Stats(stats));
        self.emit(PeerEvent::Connected);
    }

    fn stats(&mut self, state: ConnectionState) -> LinkStats {
        let link = self.link.clone();
        let bytes_in = link.bytes_in.load(Ordering::Relaxed);
        let bytes_out = link.bytes_out.load(Ordering::Relaxed);
        let (then, in_then, out_then) = self.rate_sample;
        let span = then.elapsed().as_secs_f64();
        if span >= 0.2 {
            self.rates = (
                bytes_in.saturating_sub(in_then) as f64 / span,
                bytes_out.saturating_sub(out_then) as f64 / span,
            );
            self.rate_sample = (Instant::now(), bytes_in, bytes_out);
        }
        let now = link.now();
        let ((rtt, last_rtt), loss) = self
            .protocol(|p| (p.rtt(), p.loss(now)))
            .unwrap_or(((None, None), 0.0));
        let mut stats = LinkStats {
            state,
            rtt,
            last_rtt,
            loss,
            bytes_in_per_sec: self.rates.0,
            bytes_out_per_sec: self.rates.1,
            candidate_type: self.candidate_types.and_then(|pair| pair.local),
            remote_candidate_type: self.candidate_types.and_then(|pair| pair.remote),
            setup: self.timings,
            ..LinkStats::default()
        };
        link.fill_counters(&mut stats);
        stats
    }
}

/// The candidate types of the selected pair (ours, the remote's), from webrtc's stats.
async fn selected_candidate_types(pc: &dyn PeerConnection) -> Option<CandidatePair> {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let pair_id = report.transport()?.selected_candidate_pair_id.clone();
    let (local_id, remote_id) = match report.get(&pair_id)? {
        RTCStatsReportEntry::IceCandidatePair(pair) => (
            pair.local_candidate_id.clone(),
            pair.remote_candidate_id.clone(),
        ),
        _ => return None,
    };
    let kind = |candidate_type: RTCIceCandidateType| match candidate_type {
        RTCIceCandidateType::Host => Some(CandidateType::Host),
        RTCIceCandidateType::Srflx => Some(CandidateType::ServerReflexive),
        RTCIceCandidateType::Prflx => Some(CandidateType::PeerReflexive),
        RTCIceCandidateType::Relay => Some(CandidateType::Relay),
        _ => None,
    };
    // The pair names its candidates "candidate:…"; the entry ids carry a type prefix.
    let mut pair = CandidatePair::default();
    for entry in report.iter() {
        match entry {
            RTCStatsReportEntry::LocalCandidate(c) if entry.id().ends_with(&local_id) => {
                pair.local = kind(c.candidate_type);
            }
            RTCStatsReportEntry::RemoteCandidate(c) if entry.id().ends_with(&remote_id) => {
                pair.remote = kind(c.candidate_type);
            }
            _ => {}
        }
    }
    pair.local.is_some().then_some(pair)
}

/// mDNS only resolves a remote peer's `.local` host candidates (browsers hide
/// their LAN addresses behind them); webrtc-rs opens a multicast socket for it,
/// and on a host with no multicast route (no default route: two laptops on a
/// switch with static addresses, a network namespace with only `lo`) joining the
/// group fails with ENODEV and so would every connection. Where the group cannot
/// be joined, mDNS could not work anyway: connect without it. Probed once.
fn mdns_mode() -> rtc::ice::mdns::MulticastDnsMode {
    use rtc::ice::mdns::MulticastDnsMode;
    static MODE: std::sync::OnceLock<MulticastDnsMode> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| {
        let group = std::net::Ipv4Addr::new(224, 0, 0, 251);
        let joined = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))
            .and_then(|socket| socket.join_multicast_v4(&group, &std::net::Ipv4Addr::UNSPECIFIED));
        match joined {
            Ok(()) => MulticastDnsMode::QueryOnly,
            Err(error) => {
                tracing::debug!("mDNS off: cannot join its multicast group ({error})");
                MulticastDnsMode::Disabled
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::channels::frame_data;
    use super::*;
    use crate::transport::Received;

    struct TestPeer {
        id: PeerId,
        handle: Option<PeerHandle>,
        events: mpsc::UnboundedReceiver<(PeerId, u32, PeerEvent)>,
        unreliable: crossbeam_channel::Receiver<Received>,
        reliable: crossbeam_channel::Receiver<Received>,
        control: crossbeam_channel::Receiver<Control>,
        link: Option<LinkHandle>,
        stats: Option<LinkStats>,
        /// SDP descriptions this peer sent (offer or answer).
        descriptions: Vec<String>,
    }

    fn start(me: u32, remote: u32) -> TestPeer {
        let mut config = SocketConfig::new("ws://unused", "test", 2);
        config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (utx, unreliable) = crossbeam_channel::bounded(64);
        let (rtx, reliable) = crossbeam_channel::bounded(64);
        let (control_tx, control) = crossbeam_channel::unbounded();
        let handle = spawn_peer(PeerParams {
            remote: PeerId(remote),
            offerer: me > remote,
            config: Arc::new(config),
            ice_servers: Vec::new(),
            relay_only: false,
            handshake_timeout: Duration::from_secs(10),
            attempt: 0,
            inbox: Inbox {
                unreliable: utx,
                reliable: rtx,
            },
            control: control_tx,
            events: events_tx,
        });
        TestPeer {
            id: PeerId(me),
            handle: Some(handle),
            events,
            unreliable,
            reliable,
            control,
            link: None,
            stats: None,
            descriptions: Vec::new(),
        }
    }

    /// Relay signals between the two until both report Connected.
    async fn connect(a: &mut TestPeer, b: &mut TestPeer) {
        let connected =
            |p: &TestPeer| p.stats.as_ref().map(|s| s.state) == Some(ConnectionState::Connected);
        while a.link.is_none() || b.link.is_none() || !connected(a) || !connected(b) {
            tokio::select! {
                Some((_, _, event)) = a.events.recv() => route(event, a, b),
                Some((_, _, event)) = b.events.recv() => route(event, b, a),
            }
        }
    }

    fn route(event: PeerEvent, from: &mut TestPeer, to: &mut TestPeer) {
        match event {
            PeerEvent::Signal(signal) => {
                if let PeerSignal::Offer(sdp) | PeerSignal::Answer(sdp) = &signal {
                    from.descriptions.push(sdp.clone());
                }
                if let Some(handle) = &to.handle {
                    handle.signal(signal);
                }
            }
            PeerEvent::Connected => {
                // The link is handed over on the control channel first.
                match from.control.try_recv() {
                    Ok(Control::Link(peer, link)) if peer == to.id => from.link = Some(link),
                    other => panic!("expected the link before Connected, got {other:?}"),
                }
            }
            PeerEvent::Stats(stats) => from.stats = Some(stats),
            PeerEvent::Disconnected(reason) => panic!("{} disconnected: {reason:?}", from.id),
            PeerEvent::Failed(error) => panic!("{} failed: {error}", from.id),
        }
    }

    async fn recv(queue: &crossbeam_channel::Receiver<Received>) -> Received {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(message) = queue.try_recv() {
                return message;
            }
            assert!(Instant::now() < deadline, "no message within 5 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_peers_connect_in_process_and_exchange_on_both_channels() {
        let mut a = start(2, 1);
        let mut b = start(1, 2);
        tokio::time::timeout(Duration::from_secs(10), connect(&mut a, &mut b))
            .await
            .expect("connected within 10 s");
        for (from, to) in [(&a, &b), (&b, &a)] {
            let link = from.link.as_ref().expect("connected");
            link.push_unreliable(frame_data(b"fast"));
            assert!(link.push_reliable(frame_data(b"sure")));
            let got = recv(&to.unreliable).await;
            assert_eq!(
                (got.from, got.channel, &got.data[..]),
                (from.id, Channel::Unreliable, &b"fast"[..])
            );
            let got = recv(&to.reliable).await;
            assert_eq!(
                (got.from, got.channel, &got.data[..]),
                (from.id, Channel::Reliable, &b"sure"[..])
            );
        }
        // One size limit, advertised by both sides (docs/transport.md, Limits).
        let advertised = format!("a=max-message-size:{MAX_WIRE_MESSAGE}");
        for peer in [&a, &b] {
            assert_eq!(peer.descriptions.len(), 1);
            assert!(
                peer.descriptions[0].contains(&advertised),
                "{}",
                peer.descriptions[0]
            );
        }
        // The offerer (a: the higher id) is the DTLS client, whoever answers.
        assert!(
            a.descriptions[0].contains("a=setup:active"),
            "{}",
            a.descriptions[0]
        );
        assert!(
            b.descriptions[0].contains("a=setup:passive"),
            "{}",
            b.descriptions[0]
        );
        let stats = a.stats.as_ref().expect("stats with Connected");
        assert_eq!(stats.candidate_type, Some(CandidateType::Host));
        let setup = stats.setup;
        assert!(
            setup.ice_connected.is_some() && setup.hello_acked.is_some(),
            "{setup:?}"
        );

        // Closing one side politely tells the other.
        a.handle.take().expect("running").close().await;
        let reason = loop {
            match b.events.recv().await {
                Some((_, _, PeerEvent::Disconnected(reason))) => break reason,
                Some(_) => continue,
                None => panic!("peer task ended without an event"),
            }
        };
        assert_eq!(reason, DisconnectReason::Closed);
    }
}
