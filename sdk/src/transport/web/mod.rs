//! Browser backend (cargo feature `web`, target `wasm32-unknown-unknown`): the
//! browser's `RTCPeerConnection`, `RTCDataChannel` and `WebSocket` through
//! web-sys, driven by the page's event loop — no tokio, no threads.
//!
//! It drives the same sans-IO cores as the native backend (the signaling
//! client's protocol, the mesh plan, the link protocol), so both backends follow
//! one set of rules and interoperate in one room. What differs is listed in
//! `docs/transport.md`.

mod browser;
mod candidate_stats;
mod dispatch;
mod peer;
mod room;
mod socket;

pub use socket::Socket;
