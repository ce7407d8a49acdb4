//! One connection attempt to one peer in the browser: an `RTCPeerConnection` with
//! the two pre-negotiated data channels, driven by the link protocol
//! (`transport::link_protocol`), exactly as the native backend drives it.

use std::collections::VecDeque;
use std::rc::Weak;
use std::time::Duration;

use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelType,
    RtcIceCandidateInit, RtcIceConnectionState, RtcIceServer, RtcIceTransportPolicy,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState, RtcSdpType,
    RtcSessionDescriptionInit,
};

use super::candidate_stats::{selected_pair, CandidatePair};
use super::dispatch::{callback, spawn, Input, PeerInput, Shared};
use crate::signaling::SignalData;
use crate::transport::link_protocol::{
    Incoming, LinkAction, LinkFailure, LinkProtocol, LinkTimers,
};
use crate::transport::wire::{WireFrame, MAX_WIRE_MESSAGE};
use crate::transport::{
    Channel, ConnectionState, DisconnectReason, IceServerConfig, LinkStats, PeerId, SetupTimings,
    SocketConfig, TransportError,
};

/// SCTP stream ids of the two channels (negotiated out of band, as natively).
const UNRELIABLE_ID: u16 = 0;
const RELIABLE_ID: u16 = 1;
const CHANNELS: [Channel; 2] = [Channel::Unreliable, Channel::Reliable];

fn index(channel: Channel) -> usize {
    match channel {
        Channel::Unreliable => 0,
        Channel::Reliable => 1,
    }
}

/// What an attempt asks the room to do.
#[derive(Debug)]
pub(super) enum PeerOutput {
    /// Send this signal to the remote through the signaling server.
    Signal(SignalData),
    /// A game payload arrived.
    Data(Channel, Vec<u8>),
    /// Hello acknowledged on both channels: the peer is connected.
    Connected,
    /// The attempt or connection is over.
    End(PeerEnd),
}

/// How an attempt ended.
#[derive(Debug)]
pub(super) enum PeerEnd {
    /// A connected peer went away.
    Disconnected(DisconnectReason),
    /// The attempt failed before connecting.
    Failed(TransportError),
}

/// Counters of one link.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) dropped_unreliable: u64,
    pub(super) dropped_incoming: u64,
    pub(super) dropped_oversize: u64,
    pub(super) malformed: u64,
}

/// How to start an attempt.
pub(super) struct PeerStart<'a> {
    pub(super) remote: PeerId,
    pub(super) attempt: u32,
    pub(super) offerer: bool,
    pub(super) relay_only: bool,
    pub(super) handshake_timeout: Duration,
    pub(super) config: &'a SocketConfig,
    pub(super) ice_servers: &'a [IceServerConfig],
    pub(super) now: Duration,
}

/// One connection attempt (and, once connected, the connection).
pub(super) struct WebPeer {
    pub(super) remote: PeerId,
    pub(super) attempt: u32,
    offerer: bool,
    pc: RtcPeerConnection,
    channels: [RtcDataChannel; 2],
    link: LinkProtocol,
    started: Duration,
    timings: SetupTimings,
    channels_opened: [bool; 2],
    remote_description_set: bool,
    answering: bool,
    pending_candidates: Vec<RtcIceCandidateInit>,
    connected: bool,
    /// Game sends can go (the remote's first game message arrived, or we connected).
    pub(super) sendable: bool,
    candidates: Option<CandidatePair>,
    candidates_asked: bool,
    /// Game messages waiting for the data channel's buffer to drain.
    queues: [VecDeque<Vec<u8>>; 2],
    pub(super) counters: Counters,
    /// (time, bytes in, bytes out) of the previous rate sample, and the rates.
    rate_sample: (Duration, u64, u64),
    rates: (f64, f64),
    send_buffer_limit: usize,
    unreliable_queue: usize,
    reliable_queue: usize,
    /// The most the remote accepts per message, once the SCTP transport knows.
    max_message: Option<usize>,
    /// Event handlers; detached before they are dropped.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

fn js_error(error: JsValue) -> String {
    error
        .as_string()
        .or_else(|| {
            Reflect::get(&error, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{error:?}"))
}

fn configuration(ice_servers: &[IceServerConfig], relay_only: bool) -> RtcConfiguration {
    let configuration = RtcConfiguration::new();
    let servers = Array::new();
    for server in ice_servers {
        let ice = RtcIceServer::new();
        let urls = Array::new();
        for url in &server.urls {
            urls.push(&JsValue::from_str(url));
        }
        ice.set_urls(&urls);
        if let Some(username) = &server.username {
            ice.set_username(username);
        }
        if let Some(credential) = &server.credential {
            ice.set_credential(credential);
        }
        servers.push(&ice);
    }
    configuration.set_ice_servers(&servers);
    if relay_only {
        configuration.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
    }
    configuration
}

fn data_channel(pc: &RtcPeerConnection, channel: Channel, low_water: u32) -> RtcDataChannel {
    let init = RtcDataChannelInit::new();
    init.set_negotiated(true);
    match channel {
        Channel::Unreliable => {
            init.set_ordered(false);
            init.set_max_retransmits(0);
            init.set_id(UNRELIABLE_ID);
        }
        Channel::Reliable => {
            init.set_ordered(true);
            init.set_id(RELIABLE_ID);
        }
    }
    let label = match channel {
        Channel::Unreliable => "unreliable",
        Channel::Reliable => "reliable",
    };
    let dc = pc.create_data_channel_with_data_channel_dict(label, &init);
    dc.set_binary_type(RtcDataChannelType::Arraybuffer);
    dc.set_buffered_amount_low_threshold(low_water);
    dc
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    init
}

/// The `sdp` of a description the browser created.
fn sdp_of(description: &JsValue) -> Option<String> {
    Reflect::get(description, &JsValue::from_str("sdp"))
        .ok()?
        .as_string()
}

/// An input for one attempt.
fn attempt_input(remote: PeerId, attempt: u32, input: PeerInput) -> Input {
    Input::Peer {
        remote,
        attempt,
        input,
    }
}

/// Create our offer or answer and set it as the local description; its SDP.
async fn describe(pc: &RtcPeerConnection, kind: RtcSdpType) -> Result<String, String> {
    let promise = if kind == RtcSdpType::Offer {
        pc.create_offer()
    } else {
        pc.create_answer()
    };
    let created = JsFuture::from(promise).await.map_err(js_error)?;
    let sdp = sdp_of(&created).ok_or("the browser's description has no SDP")?;
    JsFuture::from(pc.set_local_description(&description(kind, &sdp)))
        .await
        .map_err(js_error)?;
    Ok(sdp)
}

impl WebPeer {
    /// Create the connection and its channels, attach the handlers and, as the
    /// offerer, start the offer.
    pub(super) fn start(start: PeerStart<'_>, shared: &Weak<Shared>) -> Result<WebPeer, String> {
        let pc = RtcPeerConnection::new_with_configuration(&configuration(
            start.ice_servers,
            start.relay_only,
        ))
        .map_err(js_error)?;
        let low_water = u32::try_from(start.config.send_buffer_limit / 2).unwrap_or(u32::MAX);
        let channels = CHANNELS.map(|channel| data_channel(&pc, channel, low_water));
        let mut peer = WebPeer {
            remote: start.remote,
            attempt: start.attempt,
            offerer: start.offerer,
            pc,
            channels,
            link: LinkProtocol::new(
                LinkTimers::from_config(start.config, start.handshake_timeout),
                start.now,
            ),
            started: start.now,
            timings: SetupTimings::default(),
            channels_opened: [false; 2],
            remote_description_set: false,
            answering: false,
            pending_candidates: Vec::new(),
            connected: false,
            sendable: false,
            candidates: None,
            candidates_asked: false,
            queues: [VecDeque::new(), VecDeque::new()],
            counters: Counters::default(),
            rate_sample: (start.now, 0, 0),
            rates: (0.0, 0.0),
            send_buffer_limit: start.config.send_buffer_limit.max(1),
            unreliable_queue: start.config.unreliable_queue.max(1),
            reliable_queue: start.config.reliable_queue.max(1),
            max_message: None,
            handlers: Vec::new(),
        };
        peer.attach(shared);
        if peer.offerer {
            peer.offer(shared);
        }
        Ok(peer)
    }

    /// Wire the browser's events to inputs for this attempt.
    fn attach(&mut self, shared: &Weak<Shared>) {
        let (remote, attempt) = (self.remote, self.attempt);
        let peer_input = move |input: PeerInput| Some(attempt_input(remote, attempt, input));
        let on_candidate = callback(shared, move |event: JsValue| {
            let event: RtcPeerConnectionIceEvent = event.unchecked_into();
            let signal = match event.candidate() {
                None => SignalData::EndOfCandidates,
                // An empty candidate ends one generation; the `null` one ends all.
                Some(candidate) if candidate.candidate().is_empty() => return None,
                Some(candidate) => SignalData::Candidate {
                    candidate: candidate.candidate(),
                    sdp_mid: candidate.sdp_mid(),
                    sdp_mline_index: candidate.sdp_m_line_index(),
                },
            };
            peer_input(PeerInput::LocalCandidate(signal))
        });
        self.pc
            .set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        let pc = self.pc.clone();
        let on_ice_state = callback(shared, move |_: JsValue| {
            peer_input(PeerInput::IceState(pc.ice_connection_state()))
        });
        self.pc
            .set_oniceconnectionstatechange(Some(on_ice_state.as_ref().unchecked_ref()));
        let pc = self.pc.clone();
        let on_pc_state = callback(shared, move |_: JsValue| {
            peer_input(PeerInput::PcState(pc.connection_state()))
        });
        self.pc
            .set_onconnectionstatechange(Some(on_pc_state.as_ref().unchecked_ref()));
        self.handlers
            .extend([on_candidate, on_ice_state, on_pc_state]);
        for channel in CHANNELS {
            let dc = &self.channels[index(channel)];
            let on_open = callback(shared, move |_: JsValue| {
                peer_input(PeerInput::Open(channel))
            });
            dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            let on_message = callback(shared, move |event: JsValue| {
                let event: MessageEvent = event.unchecked_into();
                let data = event.data();
                let bytes = data
                    .dyn_ref::<js_sys::ArrayBuffer>()
                    .map(|buffer| Uint8Array::new(buffer).to_vec());
                peer_input(PeerInput::Message(channel, bytes))
            });
            dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            let on_low = callback(shared, move |_: JsValue| {
                peer_input(PeerInput::BufferLow(channel))
            });
            dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
            let on_close = callback(shared, move |_: JsValue| peer_input(PeerInput::Closed));
            dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            self.handlers
                .extend([on_open, on_message, on_low, on_close]);
        }
    }

    fn offer(&self, shared: &Weak<Shared>) {
        let (remote, attempt, pc) = (self.remote, self.attempt, self.pc.clone());
        spawn(shared, async move {
            let input = match describe(&pc, RtcSdpType::Offer).await {
                Ok(sdp) => PeerInput::LocalDescription(SignalData::Offer { sdp }),
                Err(error) => PeerInput::Failed(error),
            };
            Some(attempt_input(remote, attempt, input))
        });
    }

    /// Set the remote's description; as the answerer, then answer.
    fn accept(&mut self, shared: &Weak<Shared>, kind: RtcSdpType, sdp: String) {
        let (remote, attempt, pc) = (self.remote, self.attempt, self.pc.clone());
        let shared_for_answer = shared.clone();
        spawn(shared, async move {
            let set = JsFuture::from(pc.set_remote_description(&description(kind, &sdp))).await;
            if let Err(error) = set {
                return Some(attempt_input(
                    remote,
                    attempt,
                    PeerInput::Failed(js_error(error)),
                ));
            }
            if kind != RtcSdpType::Offer {
                return Some(attempt_input(
                    remote,
                    attempt,
                    PeerInput::RemoteDescriptionSet,
                ));
            }
            // Candidates that waited can go in while we answer.
            if let Some(shared) = shared_for_answer.upgrade() {
                shared.deliver(attempt_input(
                    remote,
                    attempt,
                    PeerInput::RemoteDescriptionSet,
                ));
            }
            let input = match describe(&pc, RtcSdpType::Answer).await {
                Ok(sdp) => PeerInput::LocalDescription(SignalData::Answer { sdp }),
                Err(error) => PeerInput::Failed(error),
            };
            Some(attempt_input(remote, attempt, input))
        });
    }

    fn add_candidate(&self, init: &RtcIceCandidateInit) {
        let promise = self
            .pc
            .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(init));
        // A bad candidate from the remote costs that candidate only.
        wasm_bindgen_futures::spawn_local(async move {
            let _ = JsFuture::from(promise).await;
        });
    }

    /// A signal from the remote, handed over by the mesh plan.
    pub(super) fn on_signal(&mut self, shared: &Weak<Shared>, data: SignalData) {
        match data {
            SignalData::Offer { sdp } if !self.offerer && !self.answering => {
                self.answering = true;
                self.accept(shared, RtcSdpType::Offer, sdp);
            }
            SignalData::Answer { sdp } if self.offerer && !self.answering => {
                self.answering = true;
                self.accept(shared, RtcSdpType::Answer, sdp);
            }
            // Out of turn or repeated: not ours to act on.
            SignalData::Offer { .. } | SignalData::Answer { .. } => {}
            SignalData::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
            } => {
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(sdp_mid.as_deref());
                init.set_sdp_m_line_index(sdp_mline_index);
                if self.remote_description_set {
                    self.add_candidate(&init);
                } else {
                    self.pending_candidates.push(init);
                }
            }
            // The mesh plan's own signal, never handed to an attempt.
            SignalData::EndOfCandidates | SignalData::Restart => {}
        }
    }

    /// An event of this attempt.
    pub(super) fn on_input(
        &mut self,
        shared: &Weak<Shared>,
        now: Duration,
        input: PeerInput,
        out: &mut Vec<PeerOutput>,
    ) {
        let mut actions = Vec::new();
        match input {
            PeerInput::LocalDescription(signal) | PeerInput::LocalCandidate(signal) => {
                out.push(PeerOutput::Signal(signal));
            }
            PeerInput::RemoteDescriptionSet => {
                self.remote_description_set = true;
                for init in std::mem::take(&mut self.pending_candidates) {
                    self.add_candidate(&init);
                }
            }
            PeerInput::IceState(state) => match state {
                RtcIceConnectionState::Connected | RtcIceConnectionState::Completed => {
                    self.timings.ice_connected.get_or_insert(now - self.started);
                }
                RtcIceConnectionState::Failed if !self.connected => {
                    out.push(PeerOutput::End(PeerEnd::Failed(TransportError::IceFailed(
                        self.remote,
                    ))));
                }
                _ => {}
            },
            PeerInput::PcState(state) => match state {
                RtcPeerConnectionState::Connected => {
                    self.timings
                        .dtls_connected
                        .get_or_insert(now - self.started);
                }
                RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed => {
                    // A peer that leaves says goodbye first (a `bye` frame); a
                    // connection that closes without one is restarted like a
                    // failed one.
                    let end = if self.connected {
                        PeerEnd::Disconnected(DisconnectReason::ConnectionFailed)
                    } else if self.timings.ice_connected.is_none() {
                        PeerEnd::Failed(TransportError::IceFailed(self.remote))
                    } else {
                        PeerEnd::Failed(
                            self.webrtc_error(format!("connection {state:?} during setup")),
                        )
                    };
                    out.push(PeerOutput::End(end));
                }
                _ => {}
            },
            PeerInput::Open(channel) => {
                self.channels_opened[index(channel)] = true;
                if self.channels_opened.iter().all(|open| *open) {
                    self.timings.channels_open.get_or_insert(now - self.started);
                }
                self.max_message = self.max_message.or_else(|| self.remote_max_message());
                self.link.channel_open(now, channel, &mut actions);
            }
            PeerInput::Message(channel, bytes) => {
                let Some(bytes) = bytes else {
                    self.counters.malformed += 1;
                    return;
                };
                match self.link.message(now, channel, &bytes, &mut actions) {
                    Incoming::Data(payload) => {
                        self.counters.bytes_in += payload.len() as u64;
                        let payload = payload.to_vec();
                        // Publish before the data: a reply must be possible.
                        self.carry_out(shared, now, std::mem::take(&mut actions), out);
                        out.push(PeerOutput::Data(channel, payload));
                    }
                    Incoming::Malformed => self.counters.malformed += 1,
                    Incoming::Control | Incoming::Ignored => {}
                }
            }
            PeerInput::BufferLow(channel) => self.flush(channel),
            PeerInput::Closed => {
                self.link.channel_closed(&mut actions);
                if actions.is_empty() {
                    // The protocol had already ended (e.g. a bye came first).
                    out.push(PeerOutput::End(if self.connected {
                        PeerEnd::Disconnected(DisconnectReason::Closed)
                    } else {
                        PeerEnd::Failed(self.webrtc_error("data channel closed during setup"))
                    }));
                }
            }
            PeerInput::CandidateTypes(pair) => {
                self.candidates_asked = false;
                self.candidates = Some(pair);
            }
            PeerInput::Failed(message) => {
                if !self.connected {
                    out.push(PeerOutput::End(PeerEnd::Failed(self.webrtc_error(message))));
                }
            }
        }
        self.carry_out(shared, now, actions, out);
    }

    /// The link protocol's timers (hellos, deadline, pings, silence).
    pub(super) fn poll(&mut self, shared: &Weak<Shared>, now: Duration, out: &mut Vec<PeerOutput>) {
        let mut actions = Vec::new();
        self.link.poll(now, &mut actions);
        self.carry_out(shared, now, actions, out);
        if self.connected && self.candidates.is_none() {
            self.ask_candidate_types(shared);
        }
    }

    /// When [`poll`](Self::poll) next has work.
    pub(super) fn next_wakeup(&self) -> Option<Duration> {
        self.link.next_wakeup()
    }

    fn carry_out(
        &mut self,
        shared: &Weak<Shared>,
        now: Duration,
        actions: Vec<LinkAction>,
        out: &mut Vec<PeerOutput>,
    ) {
        for action in actions {
            match action {
                LinkAction::Send(channel, frame) => {
                    // Control frames go at once; a failed one is a lost datagram.
                    let _ = self.channels[index(channel)].send_with_u8_array(&frame);
                }
                LinkAction::PeerReady => self.sendable = true,
                LinkAction::SetupDone => {}
                LinkAction::Connected => {
                    if !self.connected {
                        self.connected = true;
                        self.sendable = true;
                        self.timings.hello_acked = Some(now - self.started);
                        self.ask_candidate_types(shared);
                        out.push(PeerOutput::Connected);
                    }
                }
                LinkAction::Disconnected(reason) => {
                    out.push(PeerOutput::End(PeerEnd::Disconnected(reason)));
                }
                LinkAction::Failed(LinkFailure::HandshakeTimeout) => {
                    out.push(PeerOutput::End(PeerEnd::Failed(
                        TransportError::HandshakeTimeout(self.remote),
                    )));
                }
                LinkAction::Failed(LinkFailure::ClosedDuringSetup) => {
                    out.push(PeerOutput::End(PeerEnd::Failed(
                        self.webrtc_error("remote closed during setup"),
                    )));
                }
            }
        }
    }

    fn ask_candidate_types(&mut self, shared: &Weak<Shared>) {
        if self.candidates_asked {
            return;
        }
        self.candidates_asked = true;
        let (remote, attempt, pc) = (self.remote, self.attempt, self.pc.clone());
        spawn(shared, async move {
            let pair = selected_pair(&pc).await.unwrap_or_default();
            Some(attempt_input(
                remote,
                attempt,
                PeerInput::CandidateTypes(pair),
            ))
        });
    }

    fn webrtc_error(&self, message: impl Into<String>) -> TransportError {
        TransportError::WebRtc {
            peer: self.remote,
            message: message.into(),
        }
    }

    /// `pc.sctp.maxMessageSize`: the most the remote accepts (0 or absent: unknown).
    fn remote_max_message(&self) -> Option<usize> {
        let sctp = Reflect::get(&self.pc, &JsValue::from_str("sctp")).ok()?;
        let size = Reflect::get(&sctp, &JsValue::from_str("maxMessageSize"))
            .ok()?
            .as_f64()?;
        (size >= 1.0).then_some(size as usize)
    }

    /// Queue a game payload; it goes at once while the channel's buffer has room.
    pub(super) fn send_game(
        &mut self,
        channel: Channel,
        payload: &[u8],
    ) -> Result<(), TransportError> {
        let frame = WireFrame::Data(payload).encode();
        if frame.len() > self.max_message.unwrap_or(MAX_WIRE_MESSAGE) {
            self.counters.dropped_oversize += 1;
            return Ok(());
        }
        let queue = &mut self.queues[index(channel)];
        match channel {
            Channel::Unreliable => {
                if queue.len() >= self.unreliable_queue {
                    // Fresh beats complete: the oldest goes.
                    queue.pop_front();
                    self.counters.dropped_unreliable += 1;
                }
            }
            Channel::Reliable => {
                if queue.len() >= self.reliable_queue {
                    return Err(TransportError::QueueFull(self.remote));
                }
            }
        }
        queue.push_back(frame);
        self.flush(channel);
        Ok(())
    }

    /// Hand queued messages to the channel while its buffer is under the limit.
    fn flush(&mut self, channel: Channel) {
        let dc = &self.channels[index(channel)];
        let queue = &mut self.queues[index(channel)];
        while dc.buffered_amount() as usize <= self.send_buffer_limit {
            let Some(frame) = queue.pop_front() else {
                break;
            };
            match dc.send_with_u8_array(&frame) {
                Ok(()) => self.counters.bytes_out += frame.len() as u64 - 1,
                Err(_) if channel == Channel::Unreliable => {
                    self.counters.dropped_unreliable += 1;
                }
                Err(_) => {
                    // Not open (yet, or any more): keep it for the next flush.
                    queue.push_front(frame);
                    break;
                }
            }
        }
    }

    /// Statistics now.
    pub(super) fn stats(&mut self, now: Duration, ended: bool) -> LinkStats {
        let Counters {
            bytes_in,
            bytes_out,
            ..
        } = self.counters;
        let (then, in_then, out_then) = self.rate_sample;
        let span = now.saturating_sub(then).as_secs_f64();
        if span >= 0.5 {
            self.rates = (
                bytes_in.saturating_sub(in_then) as f64 / span,
                bytes_out.saturating_sub(out_then) as f64 / span,
            );
            self.rate_sample = (now, bytes_in, bytes_out);
        }
        let (rtt, last_rtt) = self.link.rtt();
        LinkStats {
            state: if ended {
                ConnectionState::Disconnected
            } else if self.connected {
                ConnectionState::Connected
            } else {
                ConnectionState::Connecting
            },
            rtt,
            last_rtt,
            loss: self.link.loss(now),
            bytes_in_per_sec: self.rates.0,
            bytes_out_per_sec: self.rates.1,
            bytes_in,
            bytes_out,
            dropped_unreliable: self.counters.dropped_unreliable,
            dropped_incoming: self.counters.dropped_incoming,
            dropped_oversize: self.counters.dropped_oversize,
            candidate_type: self.candidates.and_then(|pair| pair.local),
            remote_candidate_type: self.candidates.and_then(|pair| pair.remote),
            setup: self.timings,
        }
    }

    /// Stop listening: no handler of this attempt runs again.
    fn detach(&mut self) {
        self.pc.set_onicecandidate(None);
        self.pc.set_oniceconnectionstatechange(None);
        self.pc.set_onconnectionstatechange(None);
        for dc in &self.channels {
            dc.set_onopen(None);
            dc.set_onmessage(None);
            dc.set_onbufferedamountlow(None);
            dc.set_onclose(None);
        }
        self.handlers.clear();
    }

    /// Close the attempt now.
    pub(super) fn close(mut self) {
        self.detach();
        self.pc.close();
    }

    /// Say goodbye and stop listening; returns the connection, to be closed once
    /// the goodbye has had a moment to leave.
    pub(super) fn leave(mut self) -> RtcPeerConnection {
        let mut actions = Vec::new();
        self.link.leave(&mut actions);
        for action in actions {
            if let LinkAction::Send(channel, frame) = action {
                let _ = self.channels[index(channel)].send_with_u8_array(&frame);
            }
        }
        self.detach();
        self.pc.clone()
    }
}
