#![doc = "rtcplay: real-time peer-to-peer multiplayer for games."]
#![forbid(unsafe_code)]

pub mod signaling;
pub mod transport;
