//! What the session tells the game about the network and its peers.

use super::{Frame, TickRateAdvice};
use crate::datagram::PeerId;

/// A session notification, drained with `events()`.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A synchronization round trip with `peer` completed.
    Synchronizing {
        /// The remote peer.
        peer: PeerId,
        /// Round trips done.
        count: u32,
        /// Round trips needed.
        total: u32,
    },
    /// `peer` is synchronized.
    Synchronized {
        /// The remote peer.
        peer: PeerId,
    },
    /// Every peer is synchronized: `advance_frame` now works.
    Running,
    /// Nothing has been heard from `peer` for a while.
    NetworkInterrupted {
        /// The silent peer.
        peer: PeerId,
        /// Time left before it is disconnected.
        disconnect_in: std::time::Duration,
    },
    /// `peer` was heard again after an interruption.
    NetworkResumed {
        /// The peer.
        peer: PeerId,
    },
    /// `peer` is disconnected; its players' inputs are `Disconnected` from `frame` on.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// The first frame without its inputs (agreed by all remaining peers).
        frame: Frame,
    },
    /// A fresh session of `peer` (its process restarted) asks to rejoin the match.
    /// Its players stay `Disconnected` until [`PeerRejoined`](Self::PeerRejoined).
    PeerRejoining {
        /// The peer.
        peer: PeerId,
    },
    /// `peer`'s players are back: their inputs count again from `frame` (the same
    /// frame on every peer). Before it they are `Disconnected`.
    PeerRejoined {
        /// The peer.
        peer: PeerId,
        /// The first frame with its players' inputs again.
        frame: Frame,
    },
    /// This session rejoined its match: the game state of `state_frame` arrived
    /// (the `Import` request), and the local players' inputs count from `frame` on.
    Rejoined {
        /// The first frame in which the local players take part again.
        frame: Frame,
        /// The frame of the imported state.
        state_frame: Frame,
        /// Size of the handover (the game's state plus the session's part).
        state_bytes: usize,
        /// From our first request to the donor to the state's last chunk (the
        /// donor's export, its offer and every chunk).
        transfer: std::time::Duration,
    },
    /// A confirmed frame's checksum differs between this peer and `peer`.
    DesyncDetected {
        /// The frame.
        frame: Frame,
        /// The peer that disagrees.
        peer: PeerId,
        /// This peer's checksum.
        local: u64,
        /// The remote peer's checksum.
        remote: u64,
        /// Names of the checksum parts that differ (empty when the game reported no parts).
        parts: Vec<String>,
    },
    /// The recommended tick rate changed (time sync).
    TickRate(TickRateAdvice),
    /// Adaptive input delay chose a new delay.
    InputDelayChanged {
        /// The new delay in frames.
        frames: u32,
    },
}
