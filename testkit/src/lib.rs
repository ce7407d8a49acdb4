//! Helpers for rtcplay's own tests, tools and benchmarks (not published).
//!
//! - [`server`]: a real signaling server on 127.0.0.1 with its own runtime;
//! - [`events`]: waiting for a socket's events with a deadline;
//! - [`process`]: child processes that die with the test;
//! - [`chromium`]: a real headless Chromium showing a page that runs the
//!   JavaScript client printed in `docs/signaling.md`, so a browser peer can share
//!   a room with native peers;
//! - [`turn`]: a real coturn on 127.0.0.1;
//! - [`proxy`]: a TCP proxy a test can cut (a client's network dropping);
//! - [`cluster`]: a real NATS server and `rtcplay-signal` cluster nodes;
//! - [`sim`]: the test game (a small deterministic arena) that the session tests,
//!   the NAT lab and `rtcplay-lab-peer` play.

#![allow(clippy::unwrap_used)]

pub mod chromium;
pub mod cluster;
pub mod events;
pub mod process;
pub mod proxy;
pub mod server;
pub mod sim;
pub mod turn;
