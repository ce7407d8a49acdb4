//! The game thread's handle to a mesh of WebRTC connections.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::channels::frame_data;
use super::link::{Inbox, LinkHandle};
use super::room::{run_room, RoomParams};
use crate::transport::{
    Channel, LinkStats, PeerId, Received, SocketConfig, SocketEvent, Target, Transport,
    TransportError, MAX_MESSAGE_SIZE,
};

/// Waits longer than this are cut to it (so `Duration::MAX` cannot overflow a clock).
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long dropping a socket waits for its connections to say goodbye.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Messages from the network thread to the game thread, in the order they happened.
#[derive(Debug)]
pub(crate) enum Control {
    /// Sends to this peer can go: start routing them (sent when its first message
    /// arrives or when it connects, whichever is first).
    Link(PeerId, LinkHandle),
    /// A peer is gone: stop routing sends to it.
    Unlink(PeerId),
    /// Fresh statistics.
    Stats(PeerId, LinkStats),
    /// We joined and got an id (and, as a player, a rejoin token).
    Joined(PeerId, Option<String>),
    /// An event for the game.
    Event(SocketEvent),
}

/// A full-mesh WebRTC socket: joins a room through the signaling server and connects
/// to every other member with an unreliable and a reliable data channel.
///
/// The socket owns a single-threaded tokio runtime on a background thread. Every
/// method here returns at once: sends are queued, [`receive`](Self::receive) and
/// [`events`](Self::events) drain what has arrived. Dropping the socket closes every
/// connection (the peers are told, so they see
/// [`DisconnectReason::Closed`](crate::transport::DisconnectReason::Closed)) and
/// stops its thread.
///
/// ```no_run
/// use rtcplay::transport::{native::Socket, SocketConfig, SocketEvent, Target};
///
/// let mut socket = Socket::new(SocketConfig::new("ws://127.0.0.1:3536", "lobby", 2))?;
/// loop {
///     for event in socket.events() {
///         if let SocketEvent::PeerConnected(peer) = event {
///             socket.send_reliable(peer, b"welcome")?;
///         }
///     }
///     socket.send_unreliable(Target::All, b"my input for this tick")?;
///     for message in socket.receive() {
///         println!("{} sent {} bytes", message.from, message.data.len());
///     }
///     # break;
///     // ... simulate and render a frame ...
/// }
/// # Ok::<(), rtcplay::transport::TransportError>(())
/// ```
pub struct Socket {
    thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    closed: Receiver<()>,
    control: Receiver<Control>,
    unreliable_in: Receiver<Received>,
    reliable_in: Receiver<Received>,
    /// Peers sends can go to (connected, or whose first messages have arrived).
    links: HashMap<PeerId, LinkHandle>,
    /// Peers whose `PeerConnected`/`SpectatorConnected` has been reported.
    connected: BTreeSet<PeerId>,
    stats: HashMap<PeerId, LinkStats>,
    events: VecDeque<SocketEvent>,
    me: Option<PeerId>,
    rejoin_token: Option<String>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("me", &self.me)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// Start joining the room described by `config`. Returns at once; progress is
    /// reported through [`events`](Self::events).
    pub fn new(config: SocketConfig) -> Result<Socket, TransportError> {
        if !(2..=8).contains(&config.players) {
            return Err(TransportError::InvalidConfig(format!(
                "players must be 2..=8, got {}",
                config.players
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TransportError::Runtime(e.to_string()))?;
        let (control_tx, control) = crossbeam_channel::unbounded();
        let (unreliable_tx, unreliable_in) =
            crossbeam_channel::bounded(config.receive_queue.max(1));
        let (reliable_tx, reliable_in) = crossbeam_channel::bounded(config.receive_queue.max(1));
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel();
        let (closed_tx, closed) = crossbeam_channel::bounded(1);
        let params = RoomParams {
            config: Arc::new(config),
            control: control_tx,
            inbox: Inbox {
                unreliable: unreliable_tx,
                reliable: reliable_tx,
            },
        };
        let thread = std::thread::Builder::new()
            .name("rtcplay-net".into())
            .spawn(move || {
                runtime.block_on(run_room(params, shutdown_rx));
                // Drop what the room left running (connection drivers) before we
                // report, so a joined thread has freed everything.
                drop(runtime);
                let _: Result<(), _> = Sender::try_send(&closed_tx, ());
            })
            .map_err(|e| TransportError::Runtime(e.to_string()))?;
        Ok(Socket {
            thread: Some(thread),
            shutdown: Some(shutdown_tx),
            closed,
            control,
            unreliable_in,
            reliable_in,
            links: HashMap::new(),
            connected: BTreeSet::new(),
            stats: HashMap::new(),
            events: VecDeque::new(),
            me: None,
            rejoin_token: None,
        })
    }

    /// Our peer id, once the signaling server has assigned it.
    pub fn id(&mut self) -> Option<PeerId> {
        self.poll_control();
        self.me
    }

    /// This player's rejoin token, once joined (`None` for spectators and on
    /// servers that hold no seats). Keep it where a restarted game finds it
    /// (a file, say): a socket whose [`SocketConfig::rejoin_token`] carries it
    /// takes this player's seat back in its running match.
    pub fn rejoin_token(&mut self) -> Option<String> {
        self.poll_control();
        self.rejoin_token.clone()
    }

    /// Peers that are connected right now (their `PeerConnected` or
    /// `SpectatorConnected` has been reported, their `PeerDisconnected` not yet).
    pub fn connected_peers(&mut self) -> Vec<PeerId> {
        self.poll_control();
        self.connected.iter().copied().collect()
    }

    /// Queue a datagram on the unreliable, unordered channel. When the link cannot
    /// keep up, the oldest queued datagrams are dropped (counted in
    /// [`LinkStats::dropped_unreliable`]) so what arrives stays fresh.
    pub fn send_unreliable(
        &mut self,
        to: impl Into<Target>,
        data: &[u8],
    ) -> Result<(), TransportError> {
        self.send(to.into(), Channel::Unreliable, data)
    }

    /// Queue a message on the reliable, ordered channel.
    pub fn send_reliable(
        &mut self,
        to: impl Into<Target>,
        data: &[u8],
    ) -> Result<(), TransportError> {
        self.send(to.into(), Channel::Reliable, data)
    }

    fn send(&mut self, to: Target, channel: Channel, data: &[u8]) -> Result<(), TransportError> {
        if data.len() > MAX_MESSAGE_SIZE {
            return Err(TransportError::MessageTooLarge {
                size: data.len(),
                max: MAX_MESSAGE_SIZE,
            });
        }
        self.poll_control();
        let frame = frame_data(data);
        let push = |peer: PeerId, link: &LinkHandle, frame| match channel {
            Channel::Unreliable => {
                link.push_unreliable(frame);
                Ok(())
            }
            Channel::Reliable => {
                if link.push_reliable(frame) {
                    Ok(())
                } else {
                    Err(TransportError::QueueFull(peer))
                }
            }
        };
        match to {
            Target::Peer(peer) => {
                let link = self
                    .links
                    .get(&peer)
                    .ok_or(TransportError::NotConnected(peer))?;
                push(peer, link, frame)
            }
            Target::All => {
                let mut result = Ok(());
                for (&peer, link) in &self.links {
                    if let Err(error) = push(peer, link, frame.clone()) {
                        result = Err(error);
                    }
                }
                result
            }
        }
    }

    /// Everything that has arrived on either channel since the last call.
    pub fn receive(&mut self) -> Vec<Received> {
        let mut out: Vec<Received> = self.reliable_in.try_iter().collect();
        out.extend(self.unreliable_in.try_iter());
        out
    }

    /// What has arrived on the reliable channel only (a game that hands the
    /// socket to a session as its [`Transport`] reads its reliable messages here).
    pub fn receive_reliable(&mut self) -> Vec<Received> {
        self.reliable_in.try_iter().collect()
    }

    /// Events since the last call, oldest first.
    pub fn events(&mut self) -> Vec<SocketEvent> {
        self.poll_control();
        self.events.drain(..).collect()
    }

    /// Statistics of the link to `peer`: there from its `PeerConnected` event on,
    /// kept after it disconnects. Byte and drop counters are live; RTT, loss and
    /// rates are refreshed every ping interval.
    pub fn stats(&mut self, peer: PeerId) -> Option<LinkStats> {
        self.poll_control();
        if let Some(link) = self.links.get(&peer) {
            // If the network thread is writing right now, the previous copy will do.
            if let Ok(latest) = link.shared.latest.try_lock() {
                if let Some(latest) = latest.as_ref() {
                    self.stats.insert(peer, latest.clone());
                }
            }
        }
        let mut stats = self.stats.get(&peer).cloned()?;
        if let Some(link) = self.links.get(&peer) {
            link.shared.fill_counters(&mut stats);
        }
        Some(stats)
    }

    /// Block up to `timeout` for the next event. For tools, servers and tests — a game
    /// loop should call [`events`](Self::events) instead.
    pub fn wait_event(&mut self, timeout: Duration) -> Option<SocketEvent> {
        self.poll_control();
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let deadline = std::time::Instant::now() + timeout.min(LONGEST_WAIT);
        while let Ok(control) = self.control.recv_deadline(deadline) {
            self.apply(control);
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
        }
        None
    }

    /// Block up to `timeout` for the next message on either channel. For tools,
    /// servers and tests — a game loop should call [`receive`](Self::receive) instead.
    pub fn wait_message(&mut self, timeout: Duration) -> Option<Received> {
        crossbeam_channel::select! {
            recv(self.reliable_in) -> message => message.ok(),
            recv(self.unreliable_in) -> message => message.ok(),
            default(timeout.min(LONGEST_WAIT)) => None,
        }
    }

    /// Close every connection and stop the network thread. The same as dropping
    /// the socket.
    pub fn close(self) {}

    fn poll_control(&mut self) {
        while let Ok(control) = self.control.try_recv() {
            self.apply(control);
        }
    }

    fn apply(&mut self, control: Control) {
        {
            match control {
                Control::Link(peer, link) => {
                    self.links.insert(peer, link);
                }
                Control::Unlink(peer) => {
                    self.links.remove(&peer);
                    self.connected.remove(&peer);
                }
                Control::Stats(peer, stats) => {
                    self.stats.insert(peer, stats);
                }
                Control::Joined(me, token) => {
                    self.me = Some(me);
                    self.rejoin_token = token;
                    self.events.push_back(SocketEvent::Joined { me });
                }
                Control::Event(event) => {
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
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Let the connections say goodbye, but never hang the game for long: a
        // thread that has not finished by then is left to finish on its own.
        if self.closed.recv_timeout(CLOSE_GRACE).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Transport for Socket {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        // Best effort by contract: a datagram to a gone peer is simply not sent.
        let _ = self.send_unreliable(peer, datagram);
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        out.extend(self.unreliable_in.try_iter().map(|m| (m.from, m.data)));
    }
}
