//! Per-peer statistics the game can show or adapt to.

use std::time::Duration;

/// Connection state of one peer, as the game sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionState {
    /// Offer/answer, ICE, DTLS, SCTP or the hello round trip are in progress.
    #[default]
    Connecting,
    /// Hello acknowledged on both channels; messages flow.
    Connected,
    /// The peer is gone (closed, timed out or failed).
    Disconnected,
}

/// Which kind of path the selected ICE candidate pair uses on our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateType {
    /// A local interface address (LAN or loopback).
    Host,
    /// Our public address as seen by a STUN server.
    ServerReflexive,
    /// Learned from an incoming connectivity check.
    PeerReflexive,
    /// Through a TURN relay.
    Relay,
}

/// When each connection stage finished, measured from the moment the peer was
/// created (right after the room became full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetupTimings {
    /// ICE found a working candidate pair.
    pub ice_connected: Option<Duration>,
    /// DTLS handshake done (peer connection state "connected").
    pub dtls_connected: Option<Duration>,
    /// SCTP association up and both data channels open.
    pub channels_open: Option<Duration>,
    /// Hello acknowledged on both channels: the peer counts as connected.
    pub hello_acked: Option<Duration>,
}

/// Statistics of the link to one peer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkStats {
    /// Connection state.
    pub state: ConnectionState,
    /// Smoothed round-trip time of pings on the unreliable channel.
    pub rtt: Option<Duration>,
    /// Round-trip time of the latest ping answered.
    pub last_rtt: Option<Duration>,
    /// Fraction (0..=1) of recent pings that got no answer.
    pub loss: f32,
    /// Payload bytes received per second (recent window).
    pub bytes_in_per_sec: f64,
    /// Payload bytes sent per second (recent window).
    pub bytes_out_per_sec: f64,
    /// Total payload bytes received.
    pub bytes_in: u64,
    /// Total payload bytes sent.
    pub bytes_out: u64,
    /// Unreliable datagrams dropped on our side because the link could not keep up
    /// (the oldest queued ones are dropped first).
    pub dropped_unreliable: u64,
    /// Received messages dropped because the game did not drain them in time.
    pub dropped_incoming: u64,
    /// Messages (either channel) dropped because they exceed the size limit the
    /// remote advertised; never happens with a peer that accepts
    /// [`MAX_MESSAGE_SIZE`](super::MAX_MESSAGE_SIZE) as the docs require.
    pub dropped_oversize: u64,
    /// Type of our side of the selected ICE candidate pair.
    pub candidate_type: Option<CandidateType>,
    /// Type of the remote side of the selected ICE candidate pair. Through NATs our
    /// side is often reported as `Host` (the base of a server-reflexive candidate)
    /// while the remote side is server-reflexive; a relayed path has `Relay` on at
    /// least one side.
    pub remote_candidate_type: Option<CandidateType>,
    /// How long each connection stage took.
    pub setup: SetupTimings,
}
