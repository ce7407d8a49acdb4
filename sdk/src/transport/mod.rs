//! Moving game datagrams between peers.
//!
//! [`Transport`] is the small, backend-free interface the rollback session speaks.
//! It is implemented by the WebRTC socket (native backend) and by the in-memory
//! network used in tests and simulations ([`MemoryNetwork`]).

mod datagram;
mod memory;

pub use datagram::{PeerId, Transport};
pub use memory::{MemoryEndpoint, MemoryNetwork, SharedEndpoint, SharedMemoryNetwork};
