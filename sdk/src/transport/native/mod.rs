//! Native backend: webrtc-rs 0.21 data channels driven by a tokio runtime that the
//! [`Socket`] owns on a background thread.

mod boost;
mod channels;
mod failover;
mod handler;
mod link;
pub(crate) mod peer;
mod room;

pub use socket::Socket;

mod socket;
