//! The rollback session: GGPO-style peer-to-peer, spectator and sync-test sessions.
//!
//! The session is sans-IO: it never reads a clock or opens a socket. Time is an
//! argument (`now`, any monotonic [`Duration`](std::time::Duration) since a fixed
//! epoch) and datagrams flow through a [`Transport`](crate::datagram::Transport). Each
//! frame the game adds its local input and calls `advance_frame`; the session answers
//! with an ordered list of [`Request`]s — save, load, advance — which the game carries
//! out in order.
//!
//! ```
//! use rtcplay::netem::LinkConditions;
//! use rtcplay::session::{PlayerType, Request, SessionBuilder};
//! use rtcplay::transport::{MemoryNetwork, PeerId};
//! use std::time::Duration;
//!
//! let (a, b) = (PeerId(0), PeerId(1));
//! let mut net = MemoryNetwork::new(&[a, b], LinkConditions::lan(), 1);
//! let mut sessions: Vec<_> = [(a, b, 0), (b, a, 1)]
//!     .into_iter()
//!     .map(|(_me, other, local)| {
//!         SessionBuilder::<u8>::new()
//!             .with_num_players(2)
//!             .add_player(PlayerType::Local, local)
//!             .add_player(PlayerType::Remote(other), 1 - local)
//!             .start_p2p_session()
//!             .unwrap()
//!     })
//!     .collect();
//! let mut state = [0u32; 2];
//! for tick in 0..200u64 {
//!     let now = Duration::from_millis(tick * 16);
//!     net.set_now(now);
//!     for (i, s) in sessions.iter_mut().enumerate() {
//!         let me = [a, b][i];
//!         if !s.is_running() {
//!             s.poll(now, &mut net.endpoint(me));
//!             continue;
//!         }
//!         s.add_local_input(s.local_player_handles()[0], 1).unwrap();
//!         if let Ok(requests) = s.advance_frame(now, &mut net.endpoint(me)) {
//!             for r in requests {
//!                 if let Request::Advance { inputs, .. } = r {
//!                     state[i] += inputs.iter().map(|(v, _)| u32::from(*v)).sum::<u32>();
//!                 }
//!                 // Save and Load would store and restore the game state here.
//!             }
//!         }
//!     }
//! }
//! assert!(sessions[0].current_frame() > 100);
//! ```

mod absence;
mod builder;
mod checksum;
mod error;
mod event;
mod input_queue;
mod p2p;
mod peer;
pub(crate) mod protocol;
mod rejoin;
pub mod replay;
mod request;
mod rtt;
mod spectator;
pub mod state_transfer;
mod stats;
mod synctest;
mod time_sync;

pub use builder::{PlayerType, SessionBuilder, SessionConfig};
pub use checksum::Checksum;
pub use error::SessionError;
pub use event::SessionEvent;
pub use p2p::P2PSession;
pub use protocol::{DatagramError, MAX_DATAGRAM_SIZE, PROTOCOL_VERSION};
pub use rejoin::new_incarnation;
pub use replay::{Replay, ReplayError, ReplayEvent, ReplaySession};
pub use request::{InputStatus, Request};
pub use spectator::SpectatorSession;
pub use stats::{DropCounters, PeerStats, SessionStats};
pub use synctest::SyncTestSession;
pub use time_sync::TickRateAdvice;

/// A frame number. Frame 0 is the first simulated frame.
pub type Frame = u32;

/// Index of a player, `0..num_players`.
pub type PlayerHandle = usize;

/// What a game input must be: small, serde-serializable (bincode 2, standard
/// configuration) and comparable. Implemented for every such type.
pub trait Input:
    Clone + PartialEq + Default + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned
{
}

impl<T> Input for T where
    T: Clone
        + PartialEq
        + Default
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
{
}

/// Encode an input with bincode 2's standard configuration.
pub(crate) fn encode_input<I: Input>(input: &I) -> Result<Vec<u8>, SessionError> {
    bincode::serde::encode_to_vec(input, bincode::config::standard())
        .map_err(|e| SessionError::InvalidInput(e.to_string()))
}

/// Decode an input; `None` when the bytes are not exactly one `I`.
pub(crate) fn decode_input<I: Input>(bytes: &[u8]) -> Option<I> {
    let config = bincode::config::standard().with_limit::<{ 64 * 1024 }>();
    match bincode::serde::decode_from_slice::<I, _>(bytes, config) {
        Ok((input, used)) if used == bytes.len() => Some(input),
        _ => None,
    }
}

/// Runs the examples in `docs/session.md` as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/session.md")]
struct SessionGuide;
