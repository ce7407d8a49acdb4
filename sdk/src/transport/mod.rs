//! Moving game datagrams between peers.
//!
//! [`Transport`] is the small, backend-free interface the rollback session speaks.
//! It is implemented by the WebRTC socket (native backend) and by the in-memory
//! network used in tests and simulations ([`MemoryNetwork`]).
//!
//! The game-facing types here ([`SocketConfig`], [`SocketEvent`], [`LinkStats`],
//! [`TransportError`], [`Received`], ...) use no tokio, threads or clocks, so a browser
//! backend can share them. The native backend (webrtc-rs + tokio) lives in
//! [`native`], behind the `native` cargo feature. See `docs/transport.md`.

mod config;
mod error;
mod event;
pub mod link_protocol;
mod memory;
pub mod mesh_plan;
mod message;
mod stats;
pub mod wire;

#[cfg(feature = "native")]
pub mod native;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;

#[cfg(all(feature = "native", not(all(feature = "web", target_arch = "wasm32"))))]
pub use native::Socket;
/// The socket of the backend this build uses: [`native::Socket`] with the `native`
/// feature, [`web::Socket`] in a wasm32 build with the `web` feature. Game code
/// written against it builds for the desktop and the browser.
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub use web::Socket;

pub use crate::datagram::{PeerId, Transport};
pub use config::{IceServerConfig, SocketConfig};
pub use error::TransportError;
pub use event::{DisconnectReason, SocketEvent};
pub use memory::{MemoryEndpoint, MemoryNetwork, SharedEndpoint, SharedMemoryNetwork};
pub use message::{Channel, Received, Target, MAX_MESSAGE_SIZE};
pub use stats::{CandidateType, ConnectionState, LinkStats, SetupTimings};

/// Compiles the examples in `docs/transport.md` as doc tests.
#[cfg(all(doctest, feature = "native"))]
#[doc = include_str!("../../../docs/transport.md")]
struct TransportGuide;
