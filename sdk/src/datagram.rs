//! The vocabulary every layer shares: who a peer is ([`PeerId`]) and the datagram
//! interface between a session and whatever carries its bytes ([`Transport`]).
//!
//! It sits at the crate root so the session, netem and signaling depend on it
//! rather than on `transport` (which re-exports both).

use serde::{Deserialize, Serialize};

/// Identifies one peer in a room. Assigned by the signaling server; unique within a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(pub u32);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// An unreliable, unordered datagram channel to a set of peers.
///
/// Implementations never block: `send_to` enqueues (or drops, when the link is
/// overloaded) and `receive` drains whatever has arrived.
pub trait Transport {
    /// Queue one datagram for `peer`. Delivery is best effort.
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]);
    /// Move every datagram that has arrived into `out`, with its sender.
    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>);
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        (**self).send_to(peer, datagram);
    }
    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        (**self).receive(out);
    }
}
