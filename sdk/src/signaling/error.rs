//! The signaling layer's error type.

use super::protocol::ErrorCode;

/// Everything that can go wrong in the signaling client or server.
#[derive(Debug, thiserror::Error)]
pub enum SignalingError {
    /// The URL is not a `ws://` URL the client can use.
    #[error("invalid signaling url {0:?}")]
    BadUrl(String),
    /// Binding, accepting or connecting a socket failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket handshake or connection failed.
    #[error("websocket error: {0}")]
    WebSocket(String),
    /// The server refused a request.
    #[error("server refused: {code}: {message}")]
    Refused {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail from the server.
        message: String,
    },
    /// The server sent something this client cannot understand.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server did not answer in time.
    #[error("timed out waiting for the signaling server")]
    Timeout,
    /// The connection to the server is closed.
    #[error("signaling connection closed")]
    Closed,
    /// A cluster setting is wrong, or this build cannot run a cluster node.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The outgoing queue is full (the connection is stalled).
    #[error("signaling send queue is full")]
    QueueFull,
}
