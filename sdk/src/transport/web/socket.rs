//! The game's handle to a mesh of browser WebRTC connections.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::browser::Browser;
use super::dispatch::Shared;
use super::room::WebRoom;
use crate::transport::{
    Channel, LinkStats, PeerId, Received, SocketConfig, SocketEvent, Target, Transport,
    TransportError,
};

/// A full-mesh WebRTC socket in the browser: joins a room through the signaling
/// server and connects to every other member with an unreliable and a reliable
/// data channel — the same rules, wire format and game-facing API as the native
/// [`Socket`](crate::transport::Socket), with the browser's `RTCPeerConnection`
/// and `WebSocket` underneath.
///
/// It runs on the page's event loop: the browser's callbacks do the networking
/// between frames, and every method here returns at once (there is no blocking
/// `wait_event`: a page must not block). Dropping the socket says goodbye to every
/// peer (they see
/// [`DisconnectReason::Closed`](crate::transport::DisconnectReason::Closed)) and
/// leaves the signaling server.
///
/// ```no_run
/// use rtcplay::transport::{Socket, SocketConfig, SocketEvent, Target};
///
/// // Called once per animation frame.
/// fn frame(socket: &mut Socket) -> Result<(), rtcplay::transport::TransportError> {
///     for event in socket.events() {
///         if let SocketEvent::PeerConnected(peer) = event {
///             socket.send_reliable(peer, b"welcome")?;
///         }
///     }
///     socket.send_unreliable(Target::All, b"my input for this tick")?;
///     for message in socket.receive() {
///         // ... apply message.data from message.from ...
///     }
///     Ok(())
/// }
/// let socket = Socket::new(SocketConfig::new("ws://127.0.0.1:3536", "lobby", 2));
/// ```
pub struct Socket {
    /// The key of this socket's state in [`SOCKETS`].
    key: u64,
}

thread_local! {
    /// The state of every socket created on this thread. A browser runs the page
    /// on one thread; keeping the state here (and only a key in [`Socket`]) makes
    /// the handle `Send + Sync`, as engines (Bevy resources) require, without any
    /// unsafe code. Used from another thread, a socket reports
    /// [`TransportError::Runtime`].
    static SOCKETS: RefCell<HashMap<u64, Rc<Shared>>> = RefCell::new(HashMap::new());
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").finish_non_exhaustive()
    }
}

impl Socket {
    /// Start joining the room described by `config`. Returns at once; progress is
    /// reported through [`events`](Self::events). Fails on a bad configuration
    /// (players outside 2..=8, a URL that is not `ws://` or `wss://`) and outside a
    /// browser page or worker.
    pub fn new(config: SocketConfig) -> Result<Socket, TransportError> {
        let browser = Browser::get().ok_or_else(|| {
            TransportError::Runtime("the web backend runs in a browser page or worker".into())
        })?;
        let shared = Shared::new(WebRoom::new(config, browser)?);
        shared.room.borrow_mut().attach(Rc::downgrade(&shared));
        shared.run();
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        SOCKETS.with(|sockets| sockets.borrow_mut().insert(key, shared));
        Ok(Socket { key })
    }

    fn try_room<T>(&self, f: impl FnOnce(&mut WebRoom) -> T) -> Result<T, TransportError> {
        let shared = SOCKETS
            .with(|sockets| sockets.borrow().get(&self.key).cloned())
            .ok_or_else(|| {
                TransportError::Runtime(
                    "a web socket is used on another thread than the one that created it".into(),
                )
            })?;
        // Inputs that arrived while the room was busy are handled first.
        shared.run();
        let result = f(&mut shared.room.borrow_mut());
        shared.run();
        Ok(result)
    }

    fn room<T: Default>(&self, f: impl FnOnce(&mut WebRoom) -> T) -> T {
        self.try_room(f).unwrap_or_default()
    }

    /// Our peer id, once the signaling server has assigned it.
    pub fn id(&mut self) -> Option<PeerId> {
        self.room(|room| room.me())
    }

    /// This player's rejoin token, once joined (`None` for spectators and on
    /// servers that hold no seats). Keep it where a reloaded page finds it
    /// (`sessionStorage`, say): a socket whose [`SocketConfig::rejoin_token`]
    /// carries it takes this player's seat back in its running match.
    pub fn rejoin_token(&mut self) -> Option<String> {
        self.room(|room| room.rejoin_token.clone())
    }

    /// Peers that are connected right now (their `PeerConnected` or
    /// `SpectatorConnected` has been reported, their `PeerDisconnected` not yet).
    pub fn connected_peers(&mut self) -> Vec<PeerId> {
        self.room(|room| room.connected_peers())
    }

    /// Send a datagram on the unreliable, unordered channel. When the data
    /// channel's buffer is over [`SocketConfig::send_buffer_limit`], datagrams wait
    /// in a small queue whose oldest entries are dropped (counted in
    /// [`LinkStats::dropped_unreliable`]) so what arrives stays fresh.
    pub fn send_unreliable(
        &mut self,
        to: impl Into<Target>,
        data: &[u8],
    ) -> Result<(), TransportError> {
        self.try_room(|room| room.send(to.into(), Channel::Unreliable, data))?
    }

    /// Send a message on the reliable, ordered channel.
    pub fn send_reliable(
        &mut self,
        to: impl Into<Target>,
        data: &[u8],
    ) -> Result<(), TransportError> {
        self.try_room(|room| room.send(to.into(), Channel::Reliable, data))?
    }

    /// Everything that has arrived on either channel since the last call.
    pub fn receive(&mut self) -> Vec<Received> {
        self.room(|room| room.receive())
    }

    /// What has arrived on the reliable channel only (a game that hands the
    /// socket to a session as its [`Transport`] reads its reliable messages here).
    pub fn receive_reliable(&mut self) -> Vec<Received> {
        self.room(|room| room.receive_reliable())
    }

    /// Events since the last call, oldest first.
    pub fn events(&mut self) -> Vec<SocketEvent> {
        self.room(|room| room.events())
    }

    /// Statistics of the link to `peer`: there from the start of its connection
    /// attempt, kept after it disconnects. Candidate types come from the browser's
    /// `getStats()` shortly after `PeerConnected`.
    pub fn stats(&mut self, peer: PeerId) -> Option<LinkStats> {
        self.room(|room| room.stats(peer))
    }

    /// Close every connection and leave. The same as dropping the socket.
    pub fn close(self) {}
}

impl Drop for Socket {
    fn drop(&mut self) {
        let shared = SOCKETS.with(|sockets| sockets.borrow_mut().remove(&self.key));
        if let Some(shared) = shared {
            if let Ok(mut room) = shared.room.try_borrow_mut() {
                room.close();
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
        self.room(|room| room.receive_unreliable(out));
    }
}
