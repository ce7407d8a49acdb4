//! The browser room: the signaling WebSocket (driven by
//! `signaling::ClientProtocol`), the mesh plan (`transport::mesh_plan`) and the
//! connection attempts it asks for, and what the game reads (events, messages,
//! stats). Everything runs on the page's event loop, one [`Input`] at a time.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Weak;
use std::time::Duration;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{MessageEvent, WebSocket};

use super::browser::Browser;
use super::dispatch::{callback, Input, Shared};
use super::peer::{PeerEnd, PeerOutput, PeerStart, WebPeer};
use crate::signaling::{
    ClientMessage, ClientProtocol, ClientStep, ClientTick, ClientTimers, SignalData, Welcome,
    PROTOCOL_VERSION,
};
use crate::transport::mesh_plan::{MeshAction, MeshPlan, MeshSettings};
use crate::transport::{
    Channel, IceServerConfig, LinkStats, PeerId, Received, SocketConfig, SocketEvent, Target,
    TransportError, MAX_MESSAGE_SIZE,
};

/// How often the signaling client pings the server, and when a silent server
/// counts as dead (the native client's defaults).
const SIGNALING_TIMERS: ClientTimers = ClientTimers {
    keepalive_interval: Duration::from_secs(10),
    dead_after: Duration::from_secs(30),
    probe_timeout: Duration::from_secs(10),
};

/// How long connections stay open after the socket is dropped, so the goodbye
/// frames reach the peers.
const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// The room's state.
pub(super) struct WebRoom {
    config: SocketConfig,
    browser: Browser,
    shared: Weak<Shared>,
    ws: Option<WebSocket>,
    ws_handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    client: Option<ClientProtocol>,
    /// Until the welcome: when joining has taken too long.
    join_deadline: Option<Duration>,
    plan: Option<MeshPlan>,
    ice_servers: Vec<IceServerConfig>,
    me: Option<PeerId>,
    /// Our rejoin token from the welcome.
    pub(super) rejoin_token: Option<String>,
    peers: HashMap<PeerId, WebPeer>,
    /// Inputs the room gives itself (handled before the browser's next one).
    follow_ups: VecDeque<Input>,
    events: VecDeque<SocketEvent>,
    /// Received game messages: reliable, unreliable.
    inbox: [VecDeque<Received>; 2],
    connected: BTreeSet<PeerId>,
    /// Statistics of links that have ended.
    final_stats: HashMap<PeerId, LinkStats>,
    timer: Option<(i32, Duration)>,
    timer_callback: Option<Closure<dyn FnMut()>>,
    closed: bool,
}

impl WebRoom {
    /// A room whose signaling connection is opening.
    pub(super) fn new(config: SocketConfig, browser: Browser) -> Result<WebRoom, TransportError> {
        if !(2..=8).contains(&config.players) {
            return Err(TransportError::InvalidConfig(format!(
                "players must be 2..=8, got {}",
                config.players
            )));
        }
        let url = &config.signaling_url;
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(TransportError::InvalidConfig(format!(
                "the signaling URL must start with ws:// or wss://, got {url:?}"
            )));
        }
        let ws = WebSocket::new(url).map_err(|error| {
            TransportError::InvalidConfig(format!("cannot open {url}: {error:?}"))
        })?;
        let join_deadline = Some(browser.now() + config.handshake_timeout);
        Ok(WebRoom {
            config,
            browser,
            shared: Weak::new(),
            ws: Some(ws),
            ws_handlers: Vec::new(),
            client: None,
            join_deadline,
            plan: None,
            ice_servers: Vec::new(),
            me: None,
            rejoin_token: None,
            peers: HashMap::new(),
            follow_ups: VecDeque::new(),
            events: VecDeque::new(),
            inbox: [VecDeque::new(), VecDeque::new()],
            connected: BTreeSet::new(),
            final_stats: HashMap::new(),
            timer: None,
            timer_callback: None,
            closed: false,
        })
    }

    /// Wire the WebSocket's events and the timer to `shared`.
    pub(super) fn attach(&mut self, shared: Weak<Shared>) {
        if let Some(ws) = &self.ws {
            let on_open = callback(&shared, |_: JsValue| Some(Input::SignalingOpen));
            let on_message = callback(&shared, |event: JsValue| {
                let event: MessageEvent = event.unchecked_into();
                Some(match event.data().as_string() {
                    Some(text) => Input::SignalingText(text),
                    None => Input::SignalingOther,
                })
            });
            let on_close = callback(&shared, |_: JsValue| Some(Input::SignalingClosed));
            ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            self.ws_handlers = vec![on_open, on_message, on_close];
        }
        let weak = shared.clone();
        self.timer_callback = Some(Closure::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.deliver(Input::Timer);
            }
        }));
        self.shared = shared;
    }

    fn now(&self) -> Duration {
        self.browser.now()
    }

    /// The next input the room gave itself.
    pub(super) fn take_follow_up(&mut self) -> Option<Input> {
        self.follow_ups.pop_front()
    }

    /// Handle one input.
    pub(super) fn handle(&mut self, shared: &Weak<Shared>, input: Input) {
        if self.closed {
            return;
        }
        let now = self.now();
        match input {
            Input::Timer => {
                self.timer = None;
                self.on_timer(shared, now);
            }
            Input::SignalingOpen => {
                let config = &self.config;
                let join = ClientMessage::Join {
                    version: PROTOCOL_VERSION,
                    room: config.room.clone(),
                    players: config.players,
                    token: config.token.clone(),
                    room_secret: config.room_secret.clone(),
                    spectator: config.spectator,
                    spectator_secret: config.spectator_secret.clone(),
                    no_spectators: config.no_spectators,
                    rejoin_token: config.rejoin_token.clone(),
                    start_with: config.start_with,
                    resume: false,
                };
                let (client, text) = ClientProtocol::new(&join, SIGNALING_TIMERS, now);
                self.client = Some(client);
                self.send_text(&text);
            }
            Input::SignalingText(text) => {
                let Some(client) = &mut self.client else {
                    return;
                };
                match client.on_text(now, &text) {
                    ClientStep::Nothing => {}
                    ClientStep::Welcome(welcome) => self.on_welcome(welcome),
                    ClientStep::Event(message) => {
                        if let Some(plan) = &mut self.plan {
                            let mut out = Vec::new();
                            plan.server_message(now, message, &mut out);
                            self.carry_out(shared, now, out);
                        }
                    }
                    ClientStep::Failed(error) => {
                        self.events
                            .push_back(SocketEvent::Error(TransportError::from(error)));
                        self.close_signaling(shared, now);
                    }
                }
            }
            Input::SignalingOther => {
                if let Some(client) = &mut self.client {
                    client.on_other_frame(now);
                }
            }
            Input::SignalingClosed => self.close_signaling(shared, now),
            Input::Peer {
                remote,
                attempt,
                input,
            } => {
                let Some(peer) = self.peers.get_mut(&remote) else {
                    return;
                };
                if peer.attempt != attempt {
                    return;
                }
                let mut out = Vec::new();
                peer.on_input(shared, now, input, &mut out);
                self.on_peer_outputs(shared, now, remote, out);
            }
            Input::StartFailed {
                remote,
                attempt,
                error,
            } => {
                let can_signal = self.can_signal();
                if let Some(plan) = &mut self.plan {
                    if plan.is_current(remote, attempt) {
                        let mut out = Vec::new();
                        plan.attempt_failed(now, remote, error, can_signal, &mut out);
                        self.carry_out(shared, now, out);
                    }
                }
            }
        }
    }

    fn on_timer(&mut self, shared: &Weak<Shared>, now: Duration) {
        if self.join_deadline.is_some_and(|deadline| now >= deadline) {
            self.events
                .push_back(SocketEvent::Error(TransportError::Signaling(
                    "no welcome within the handshake timeout".into(),
                )));
            self.close_signaling(shared, now);
        }
        if let Some(client) = &mut self.client {
            match client.poll(now) {
                ClientTick::Nothing => {}
                ClientTick::Send(text) => self.send_text(&text),
                ClientTick::Dead => self.close_signaling(shared, now),
            }
        }
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.next_wakeup().is_some_and(|at| at <= now))
            .map(|(&remote, _)| remote)
            .collect();
        for remote in due {
            if let Some(peer) = self.peers.get_mut(&remote) {
                let mut out = Vec::new();
                peer.poll(shared, now, &mut out);
                self.on_peer_outputs(shared, now, remote, out);
            }
        }
        if let Some(plan) = &mut self.plan {
            if plan.next_wakeup().is_some_and(|at| at <= now) {
                let mut out = Vec::new();
                plan.poll(now, &mut out);
                self.carry_out(shared, now, out);
            }
        }
    }

    fn on_welcome(&mut self, welcome: Welcome) {
        self.join_deadline = None;
        let me = welcome.peer_id;
        self.me = Some(me);
        self.rejoin_token = welcome.rejoin_token.clone();
        self.ice_servers = self.config.ice_servers.clone();
        self.ice_servers
            .extend(welcome.ice_servers.iter().map(|server| IceServerConfig {
                urls: server.urls.clone(),
                username: server.username.clone(),
                credential: server.credential.clone(),
            }));
        let has_turn = self
            .ice_servers
            .iter()
            .any(|server| server.urls.iter().any(|url| url.starts_with("turn:")));
        self.events.push_back(SocketEvent::Joined { me });
        let mut out = Vec::new();
        self.plan = Some(MeshPlan::new(
            MeshSettings::from(&self.config),
            me,
            has_turn,
            &mut out,
        ));
        let shared = self.shared.clone();
        self.carry_out(&shared, self.now(), out);
    }

    fn can_signal(&self) -> bool {
        self.ws.is_some() && self.client.as_ref().is_some_and(|c| c.is_joined())
    }

    fn send_text(&self, text: &str) {
        if let Some(ws) = &self.ws {
            // A failure means the socket is closing: its close event follows.
            let _ = ws.send_with_str(text);
        }
    }

    /// The signaling connection is over (closed, failed, dead or refused).
    fn close_signaling(&mut self, shared: &Weak<Shared>, now: Duration) {
        let Some(ws) = self.ws.take() else {
            return;
        };
        detach_socket(&ws);
        let _ = ws.close();
        self.ws_handlers.clear();
        let was_joined = self.client.take().is_some_and(|c| c.is_joined());
        if self.join_deadline.take().is_some() && !was_joined {
            if !matches!(self.events.back(), Some(SocketEvent::Error(_))) {
                self.events
                    .push_back(SocketEvent::Error(TransportError::Signaling(
                        "the signaling connection closed before the welcome".into(),
                    )));
            }
            return;
        }
        if let Some(plan) = &mut self.plan {
            let mut out = Vec::new();
            plan.signaling_closed(&mut out);
            self.carry_out(shared, now, out);
        }
    }

    /// Carry out what the mesh plan decided.
    fn carry_out(&mut self, shared: &Weak<Shared>, now: Duration, actions: Vec<MeshAction>) {
        for action in actions {
            match action {
                MeshAction::Start(spec) => {
                    self.end_attempt(spec.remote, now);
                    let start = PeerStart {
                        remote: spec.remote,
                        attempt: spec.number,
                        offerer: spec.offerer,
                        relay_only: spec.relay_only,
                        handshake_timeout: spec.handshake_timeout,
                        config: &self.config,
                        ice_servers: &self.ice_servers,
                        now,
                    };
                    match WebPeer::start(start, shared) {
                        Ok(peer) => {
                            self.peers.insert(spec.remote, peer);
                        }
                        Err(message) => self.follow_ups.push_back(Input::StartFailed {
                            remote: spec.remote,
                            attempt: spec.number,
                            error: TransportError::WebRtc {
                                peer: spec.remote,
                                message,
                            },
                        }),
                    }
                }
                MeshAction::Signal { remote, data } => {
                    if let Some(peer) = self.peers.get_mut(&remote) {
                        peer.on_signal(shared, data);
                    }
                }
                MeshAction::Close(remote) => self.end_attempt(remote, now),
                MeshAction::Unlink(remote) => {
                    self.connected.remove(&remote);
                    if let Some(peer) = self.peers.get_mut(&remote) {
                        peer.sendable = false;
                    }
                }
                MeshAction::SendSignal { remote, data } => self.send_signal(remote, data),
                MeshAction::ProbeSignaling => {
                    if let Some(text) = self.client.as_mut().and_then(|c| c.probe(now)) {
                        self.send_text(&text);
                    }
                }
                MeshAction::Event(event) => {
                    if let SocketEvent::PeerConnected(peer)
                    | SocketEvent::SpectatorConnected(peer)
                    | SocketEvent::PeerReconnected(peer) = event
                    {
                        self.connected.insert(peer);
                    }
                    self.events.push_back(event);
                }
            }
        }
    }

    /// Close the attempt to `remote`, keeping its last statistics.
    fn end_attempt(&mut self, remote: PeerId, now: Duration) {
        if let Some(mut peer) = self.peers.remove(&remote) {
            self.final_stats.insert(remote, peer.stats(now, true));
            peer.close();
        }
    }

    fn on_peer_outputs(
        &mut self,
        shared: &Weak<Shared>,
        now: Duration,
        remote: PeerId,
        outputs: Vec<PeerOutput>,
    ) {
        for output in outputs {
            match output {
                PeerOutput::Signal(data) => self.send_signal(remote, data),
                PeerOutput::Data(channel, data) => {
                    let queue = &mut self.inbox[match channel {
                        Channel::Reliable => 0,
                        Channel::Unreliable => 1,
                    }];
                    if queue.len() < self.config.receive_queue.max(1) {
                        queue.push_back(Received {
                            from: remote,
                            channel,
                            data,
                        });
                    } else if let Some(peer) = self.peers.get_mut(&remote) {
                        peer.counters.dropped_incoming += 1;
                    }
                }
                PeerOutput::Connected => {
                    if let Some(plan) = &mut self.plan {
                        let mut out = Vec::new();
                        plan.attempt_connected(remote, &mut out);
                        self.carry_out(shared, now, out);
                    }
                }
                PeerOutput::End(end) => {
                    // Later outputs of an ended attempt do not matter.
                    self.end_attempt(remote, now);
                    let can_signal = self.can_signal();
                    if let Some(plan) = &mut self.plan {
                        let mut out = Vec::new();
                        match end {
                            PeerEnd::Disconnected(reason) => {
                                plan.attempt_disconnected(now, remote, reason, &mut out);
                            }
                            PeerEnd::Failed(error) => {
                                plan.attempt_failed(now, remote, error, can_signal, &mut out);
                            }
                        }
                        self.carry_out(shared, now, out);
                    }
                    return;
                }
            }
        }
    }

    fn send_signal(&self, to: PeerId, data: SignalData) {
        if self.can_signal() {
            self.send_text(&ClientMessage::Signal { to, data }.to_json());
        }
    }

    /// Set the timer for the earliest wakeup of any core.
    pub(super) fn arm_timer(&mut self) {
        if self.closed {
            return;
        }
        let next = [
            self.join_deadline,
            self.client.as_ref().and_then(ClientProtocol::next_wakeup),
            self.plan.as_ref().and_then(MeshPlan::next_wakeup),
        ]
        .into_iter()
        .chain(self.peers.values().map(WebPeer::next_wakeup))
        .flatten()
        .min();
        if self.timer.map(|(_, at)| Some(at)) == Some(next) {
            return;
        }
        if let Some((id, _)) = self.timer.take() {
            self.browser.clear_timeout(id);
        }
        let (Some(at), Some(callback)) = (next, &self.timer_callback) else {
            return;
        };
        let delay = at.saturating_sub(self.now());
        if let Some(id) = self.browser.set_timeout(callback, delay) {
            self.timer = Some((id, at));
        }
    }

    // --- what the game calls -------------------------------------------------------

    pub(super) fn me(&self) -> Option<PeerId> {
        self.me
    }

    pub(super) fn connected_peers(&self) -> Vec<PeerId> {
        self.connected.iter().copied().collect()
    }

    pub(super) fn send(
        &mut self,
        to: Target,
        channel: Channel,
        data: &[u8],
    ) -> Result<(), TransportError> {
        if data.len() > MAX_MESSAGE_SIZE {
            return Err(TransportError::MessageTooLarge {
                size: data.len(),
                max: MAX_MESSAGE_SIZE,
            });
        }
        match to {
            Target::Peer(remote) => match self.peers.get_mut(&remote) {
                Some(peer) if peer.sendable => peer.send_game(channel, data),
                _ => Err(TransportError::NotConnected(remote)),
            },
            Target::All => {
                let mut result = Ok(());
                for peer in self.peers.values_mut().filter(|peer| peer.sendable) {
                    if let Err(error) = peer.send_game(channel, data) {
                        result = Err(error);
                    }
                }
                result
            }
        }
    }

    pub(super) fn receive(&mut self) -> Vec<Received> {
        let [reliable, unreliable] = &mut self.inbox;
        reliable.drain(..).chain(unreliable.drain(..)).collect()
    }

    pub(super) fn receive_reliable(&mut self) -> Vec<Received> {
        self.inbox[0].drain(..).collect()
    }

    pub(super) fn receive_unreliable(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        out.extend(
            self.inbox[1]
                .drain(..)
                .map(|message| (message.from, message.data)),
        );
    }

    pub(super) fn events(&mut self) -> Vec<SocketEvent> {
        self.events.drain(..).collect()
    }

    pub(super) fn stats(&mut self, remote: PeerId) -> Option<LinkStats> {
        let now = self.now();
        match self.peers.get_mut(&remote) {
            Some(peer) => Some(peer.stats(now, false)),
            None => self.final_stats.get(&remote).cloned(),
        }
    }

    /// Say goodbye to every peer, leave the signaling server and stop.
    pub(super) fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some((id, _)) = self.timer.take() {
            self.browser.clear_timeout(id);
        }
        self.timer_callback = None;
        let connections: Vec<_> = self.peers.drain().map(|(_, peer)| peer.leave()).collect();
        if !connections.is_empty() {
            let close_all = Closure::once_into_js(move || {
                for pc in connections {
                    pc.close();
                }
            });
            self.browser.set_timeout_once(close_all, CLOSE_GRACE);
        }
        if let Some(ws) = self.ws.take() {
            detach_socket(&ws);
            let _ = ws.close();
        }
        self.ws_handlers.clear();
    }
}

fn detach_socket(ws: &WebSocket) {
    ws.set_onopen(None);
    ws.set_onmessage(None);
    ws.set_onclose(None);
}
