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
}

/// An event for the game, drained with `Socket::events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// This socket joined the room and got its id from the signaling server.
    Joined {
        /// Our own peer id in the room.
        me: PeerId,
    },
    /// A peer is connected: both channels are open and a hello/ack round trip on each
    /// has succeeded, so messages sent from now on are delivered.
    PeerConnected(PeerId),
    /// A previously connected peer is gone.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// The room is full and every peer in it is connected.
    AllConnected,
    /// Something failed; see the error. The socket keeps serving the other peers.
    Error(TransportError),
}
