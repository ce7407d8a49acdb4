#![doc = "rtcplay: real-time peer-to-peer multiplayer for games."]
#![forbid(unsafe_code)]

pub mod datagram;
pub mod netem;
pub mod session;
pub mod signaling;
pub mod state_sync;
pub mod transport;
