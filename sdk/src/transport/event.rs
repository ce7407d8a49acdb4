//! What the socket tells the game.

use super::{PeerId, TransportError};

/// Why a peer is no longer connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer said goodbye (its socket was closed or dropped).
    Closed,
    /// Nothing arrived from the peer within the disconnect timeout.
    Timeout,
    /// The WebRTC connection failed or closed underneath us.
    ConnectionFailed,
    /// The peer's link was down and its signaling connection closed: its process
    /// (or its network) is gone, and the link cannot be restarted without it.
    Left,
}

/// An event for the game, drained with `Socket::events`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketEvent {
    /// This socket joined the room and got its id from the signaling server.
    Joined {
        /// Our own peer id in the room.
        me: PeerId,
    },
    /// The room is still filling: `have` players are in it (this one included).
    WaitingForPlayers {
        /// Players in the room so far.
        have: usize,
        /// Players the room needs.
        need: usize,
    },
    /// The room has all its players; connections to them are being set up.
    RoomFull {
        /// Every player's id, ascending (ours included unless we spectate). The
        /// first is the host that spectators follow.
        players: Vec<PeerId>,
    },
    /// Right after [`RoomFull`](Self::RoomFull) in drop-in rooms
    /// ([`SocketConfig::start_with`](super::SocketConfig::start_with)) and when we
    /// rejoin any room: who holds which seat. Seat i is player handle i; `None`
    /// is a free seat (a vacant player for the session). Seats are taken in
    /// order, so the free ones are the last. A seat stays its player's while it
    /// is away, so this also names players `RoomFull` (those connected now)
    /// does not.
    Seats {
        /// Seat i's player, or `None` while free.
        seats: Vec<Option<PeerId>>,
        /// The match was running before we joined (we dropped in, or rejoined):
        /// our session must take a running player's state (a rejoining session).
        in_progress: bool,
    },
    /// Drop-in rooms only: a player took a free seat of the running match. The
    /// socket connects to it (`PeerConnected` follows); let it into the session
    /// (`P2PSession::seat_player(seat, peer)`).
    PlayerDroppedIn {
        /// The new player.
        peer: PeerId,
        /// Its seat (player handle).
        seat: usize,
    },
    /// A peer is connected: both channels are open and a hello/ack round trip on each
    /// has succeeded, so messages sent from now on are delivered.
    PeerConnected(PeerId),
    /// A spectator connected to this socket (only the room's host serves
    /// spectators): send it the match's confirmed inputs, e.g. with
    /// `P2PSession::add_spectator`.
    SpectatorConnected(PeerId),
    /// The link to a connected peer stalled (nothing arrived for
    /// `SocketConfig::restart_after`, or its WebRTC connection failed): the socket is
    /// setting up a fresh connection to it through signaling. Messages to it are
    /// dropped meanwhile. Either [`PeerReconnected`](Self::PeerReconnected) or
    /// [`PeerDisconnected`](Self::PeerDisconnected) follows, the latter at most
    /// `SocketConfig::disconnect_timeout` later.
    PeerReconnecting(PeerId),
    /// The link to a peer that was reconnecting is back: messages flow again.
    PeerReconnected(PeerId),
    /// A previously connected peer (player or spectator) is gone.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// The room is full and every player in it is connected (for a spectator: the
    /// host is connected).
    AllConnected,
    /// The signaling connection closed during the match, or failed the check
    /// the socket makes when a link stalls (our own network may be what failed):
    /// its local address is gone from this machine, or it did not answer a ping
    /// within 10 s. Links that are up keep working, but a stalled link can no
    /// longer be restarted and no rejoining peer can reach this socket. A player
    /// holding its rejoin token can take its seat back on a new socket
    /// (`SocketConfig::rejoin_token`, then a rejoining session); the Bevy
    /// plugin does this by itself.
    SignalingLost,
    /// The signaling connection closed during the match (its server, a node
    /// of a cluster, went away) and the socket took its seat back through
    /// another node of [`SocketConfig::fallback_signaling_urls`]: nothing
    /// changed for the match, and stalled links can be restarted again.
    ///
    /// [`SocketConfig::fallback_signaling_urls`]: super::SocketConfig::fallback_signaling_urls
    SignalingResumed,
    /// Something failed; see the error. The socket keeps serving the other peers.
    Error(TransportError),
}
