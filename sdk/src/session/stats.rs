//! Numbers a game can show or log about its session.

use std::time::Duration;

/// Network statistics of one remote peer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerStats {
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// Mean deviation of the round-trip time.
    pub jitter: Duration,
    /// Frames the remote peer is ahead of us (negative: behind), estimated.
    pub local_frame_advantage: i32,
    /// The remote peer's own estimate of its advantage over us.
    pub remote_frame_advantage: i32,
    /// Datagrams sent to the peer per second (last full second).
    pub datagrams_out_per_sec: u32,
    /// Datagrams received from the peer per second.
    pub datagrams_in_per_sec: u32,
    /// Payload bytes sent per second.
    pub bytes_out_per_sec: u32,
    /// Payload bytes received per second.
    pub bytes_in_per_sec: u32,
    /// Rollbacks caused by this peer's inputs differing from predictions.
    pub rollbacks: u64,
    /// Frames of our inputs the peer has not acknowledged yet.
    pub unacked_frames: u32,
}

/// Totals for the whole session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Rollbacks performed.
    pub rollbacks: u64,
    /// Frames re-simulated by rollbacks.
    pub rollback_frames: u64,
    /// Deepest rollback so far, in frames.
    pub max_rollback_depth: u32,
    /// Depth of the latest rollback.
    pub last_rollback_depth: u32,
    /// Frames simulated for the first time.
    pub frames_advanced: u64,
    /// Datagrams sent in total.
    pub datagrams_sent: u64,
    /// Payload bytes sent in total.
    pub bytes_sent: u64,
    /// Datagrams received and accepted in total.
    pub datagrams_received: u64,
    /// Checksums of confirmed frames compared with a peer's.
    pub checksums_compared: u64,
}

/// Datagrams dropped on receipt, by reason. Nothing from the network panics or
/// corrupts state; it is counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Truncated, trailing bytes, bad varints, out-of-range fields, oversize.
    pub malformed: u64,
    /// Not a session datagram, or another protocol version.
    pub wrong_version: u64,
    /// Another session's datagram.
    pub wrong_session: u64,
    /// From a peer that is not part of this session (or already disconnected).
    pub unknown_peer: u64,
    /// Inputs that do not decode as the game's input type, or do not fit the
    /// receiver's state (wrong player count, missing base input).
    pub bad_inputs: u64,
}

impl DropCounters {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.wrong_version
            + self.wrong_session
            + self.unknown_peer
            + self.bad_inputs
    }
}
