//! Signaling: how peers find each other and exchange WebRTC offers, answers and
//! ICE candidates before they can talk directly.
//!
//! - [`protocol`] (backend-free): the versioned JSON wire format, documented in
//!   `docs/signaling.md`.
//! - `server` (native): [`SignalingServer`], an embeddable WebSocket server with
//!   rooms, N-player matchmaking and limits against bad or abusive clients.
//! - `client` (native): [`SignalingClient`], used by the native transport.

mod error;
pub mod protocol;

#[cfg(feature = "native")]
mod client;
#[cfg(feature = "native")]
mod rate_limit;
#[cfg(feature = "native")]
mod rooms;
#[cfg(feature = "native")]
mod server;

#[cfg(feature = "native")]
pub use client::{ClientConfig, SignalingClient};
pub use error::SignalingError;
pub use protocol::{
    ClientMessage, ErrorCode, IceServer, PeerId, ServerMessage, SignalData, Welcome,
    PROTOCOL_VERSION,
};
#[cfg(feature = "native")]
pub use server::{ServerConfig, ServerStats, SignalingServer};
