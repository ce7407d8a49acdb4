//! Benchmarks for rtcplay, compared side by side with peers (ggrs, webrtc-rs,
//! raw UDP). Results and the commands that produce them are in `BENCHMARKS.md`.
#![forbid(unsafe_code)]

pub mod input_script;
pub mod percentiles;
pub mod session_mesh;
pub mod session_traffic;
pub mod signal_clients;
