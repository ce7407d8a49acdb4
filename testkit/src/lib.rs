//! Helpers for rtcplay's tests and benchmarks that drive real outside programs.
//!
//! - [`chromium`]: a real headless Chromium showing a page that runs the JavaScript
//!   client printed in `docs/signaling.md`, so a browser peer can share a room with
//!   native peers.

pub mod chromium;
