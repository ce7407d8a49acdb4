//! The transport layer's error type.

use super::PeerId;
use crate::signaling::{ErrorCode, SignalingError};

/// Everything that can go wrong in the transport, as a value (never a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// A message exceeds [`MAX_MESSAGE_SIZE`](super::MAX_MESSAGE_SIZE).
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Size of the rejected message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The peer is not (or no longer) connected, and nothing has arrived from it
    /// that would make it sendable early.
    #[error("{0} is not connected")]
    NotConnected(PeerId),
    /// The reliable queue to a peer is full; the message was not queued.
    #[error("reliable queue to {0} is full")]
    QueueFull(PeerId),
    /// The configuration cannot work (e.g. room size out of range).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The signaling server could not be reached, or failed.
    #[error("signaling failed: {0}")]
    Signaling(String),
    /// The signaling server refused our `join` (e.g. `seat_taken`,
    /// `rejoin_refused`, `unauthorized`; docs/signaling.md lists the codes).
    #[error("signaling failed: server refused: {code}: {message}")]
    JoinRefused {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail from the server.
        message: String,
    },
    /// The signaling connection closed before the room was complete.
    #[error("signaling connection closed before every peer connected")]
    SignalingClosed,
    /// A peer did not finish connecting within the handshake timeout.
    #[error("{0} did not connect within the handshake timeout")]
    HandshakeTimeout(PeerId),
    /// A peer left the room (its signaling connection closed) before it connected.
    #[error("{0} left the room before connecting")]
    PeerLeft(PeerId),
    /// ICE could not find a working path to a peer.
    #[error("ICE failed for {0}")]
    IceFailed(PeerId),
    /// The WebRTC stack reported an error for a peer.
    #[error("WebRTC error with {peer}: {message}")]
    WebRtc {
        /// The peer the error concerns.
        peer: PeerId,
        /// What went wrong.
        message: String,
    },
    /// The background runtime could not be started or has stopped.
    #[error("transport runtime: {0}")]
    Runtime(String),
}

impl From<SignalingError> for TransportError {
    fn from(error: SignalingError) -> Self {
        match error {
            SignalingError::Refused { code, message } => {
                TransportError::JoinRefused { code, message }
            }
            other => TransportError::Signaling(other.to_string()),
        }
    }
}
