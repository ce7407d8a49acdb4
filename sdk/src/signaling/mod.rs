//! Signaling: how peers find each other and exchange WebRTC offers, answers and
//! ICE candidates before they can talk directly.
//!
//! - [`protocol`] (backend-free): the versioned JSON wire format, documented in
//!   `docs/signaling.md`.
//! - `server` (native): [`SignalingServer`], an embeddable WebSocket server with
//!   rooms, N-player matchmaking and limits against bad or abusive clients.
//! - `client` (native): [`SignalingClient`], used by the native transport.
//!
//! # Quick start
//!
//! A server on an ephemeral port and two clients matched into one room:
//!
//! ```
//! use rtcplay::signaling::{
//!     ServerConfig, ServerMessage, SignalData, SignalingClient, SignalingServer,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     let server = SignalingServer::bind("127.0.0.1:0", ServerConfig::default()).await?;
//!     let (mut a, welcome_a) = SignalingClient::join(&server.url(), "duel", 2, None).await?;
//!     let (mut b, welcome_b) = SignalingClient::join(&server.url(), "duel", 2, None).await?;
//!     for client in [&mut a, &mut b] {
//!         while let Some(event) = client.next_event().await {
//!             if let ServerMessage::RoomFull { peers } = event {
//!                 assert_eq!(peers.len(), 2);
//!                 break;
//!             }
//!         }
//!     }
//!     // The higher id offers to the lower one.
//!     let (offerer, answerer, to) = if welcome_b.peer_id > welcome_a.peer_id {
//!         (&b, &mut a, welcome_a.peer_id)
//!     } else {
//!         (&a, &mut b, welcome_b.peer_id)
//!     };
//!     offerer.signal(to, SignalData::Offer { sdp: "v=0 ...".into() })?;
//!     let relayed = answerer.next_event().await;
//!     assert!(matches!(relayed, Some(ServerMessage::Signal { .. })));
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod client_protocol;
#[cfg(feature = "native")]
pub mod cluster;
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
mod turn_credentials;

#[cfg(feature = "native")]
pub use client::{ClientConfig, SignalingClient};
pub use client_protocol::{ClientProtocol, ClientStep, ClientTick, ClientTimers};
#[cfg(feature = "native")]
pub use cluster::{ClusterConfig, ClusterStats};
pub use error::SignalingError;
pub use protocol::{
    ClientMessage, ErrorCode, IceServer, PeerId, ServerMessage, SignalData, Welcome,
    PROTOCOL_VERSION,
};
#[cfg(feature = "native")]
pub use server::{
    ServerConfig, ServerStats, SignalingServer, WebFiles, JOIN_BURST, MAX_WEB_FILES_BYTES,
    SIGNAL_HEADROOM,
};
#[cfg(feature = "native")]
pub use turn_credentials::{turn_password, TurnConfig};
