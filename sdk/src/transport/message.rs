//! Messages as the game sends and receives them.

use super::PeerId;

/// Largest message payload accepted by `send_*`, and the largest a peer can send us:
/// one byte less than [`MAX_WIRE_MESSAGE`](super::wire::MAX_WIRE_MESSAGE), because
/// the transport prefixes each payload with one byte of framing.
pub const MAX_MESSAGE_SIZE: usize = super::wire::MAX_WIRE_MESSAGE - 1;

/// Which data channel a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Unordered, no retransmissions: fresh game state, may be lost or reordered.
    Unreliable,
    /// Ordered and retransmitted: control messages, chat, match setup.
    Reliable,
}

/// Who a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One peer.
    Peer(PeerId),
    /// Every peer a message can go to: the connected ones, and any whose first
    /// messages arrived just before its `PeerConnected`.
    All,
}

impl From<PeerId> for Target {
    fn from(peer: PeerId) -> Self {
        Target::Peer(peer)
    }
}

/// A message that arrived from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Sender.
    pub from: PeerId,
    /// Channel it arrived on.
    pub channel: Channel,
    /// Payload, exactly as sent.
    pub data: Vec<u8>,
}
