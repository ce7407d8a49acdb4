//! # bevy_rtcplay
//!
//! Networked rollback for Bevy 0.19 on top of [`rtcplay`]: add [`RtcPlayPlugin`], say
//! which components and resources roll back, and write game systems in
//! [`RollbackSchedule`] as if the game were local.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy_rtcplay::prelude::*;
//!
//! #[derive(Component, Clone, Copy, Hash, PartialEq, Default)]
//! struct Position(i32, i32);
//!
//! fn read_input(players: Res<LocalPlayers>, mut inputs: ResMut<LocalInputs<u8>>) {
//!     for &handle in &players.0 {
//!         inputs.set(handle, 0b0001); // every player of this endpoint presses "right"
//!     }
//! }
//!
//! fn movement(inputs: Res<PlayerInputs<u8>>, mut q: Query<&mut Position>) {
//!     for mut p in &mut q {
//!         if inputs.get(0).0 & 1 != 0 {
//!             p.0 += 1;
//!         }
//!     }
//! }
//!
//! App::new()
//!     .add_plugins((MinimalPlugins, RtcPlayPlugin::<u8>::default()))
//!     .rollback_component_with_checksum::<Position>()
//!     .add_systems(ReadInputs, read_input)
//!     .add_systems(RollbackSchedule, movement)
//!     .insert_resource(RtcPlaySession::<u8>::sync_test(2, 7).unwrap())
//!     .run();
//! ```
//!
//! See `docs/bevy.md` for the schedule tree, entity handling, messages and pitfalls.

#![forbid(unsafe_code)]

mod app_ext;
#[cfg(any(feature = "native", feature = "web"))]
mod auto_rejoin;
mod checksum;
#[cfg(any(feature = "native", feature = "web"))]
mod connect;
mod desync;
mod driver;
mod forensics;
mod inputs;
mod messages;
mod plugin;
mod replay;
#[cfg(any(feature = "native", feature = "web"))]
mod replication;
mod rollback_id;
mod session;
mod snapshot;
#[cfg(any(feature = "native", feature = "web"))]
mod state_streams;
mod stats;
mod transfer;

pub use app_ext::RollbackApp;
pub use checksum::{ConfirmedChecksums, StableHasher};
#[cfg(any(feature = "native", feature = "web"))]
pub use connect::{
    ConnectStatus, ConnectedPeers, PeerDroppedIn, PeerLeft, RtcPlayConnect, RtcPlayConnectPlugin,
};
pub use desync::DivergedValue;
pub use forensics::DesyncReport;
pub use inputs::{LocalInputs, LocalPlayers, PlayerInputs};
pub use messages::Confirmed;
pub use plugin::{
    ReadInputs, RollbackFrame, RollbackSchedule, RollbackTime, RtcPlayPlugin, RtcPlaySystems,
};
pub use replay::{ReplayControl, RtcPlayRecording};
#[cfg(any(feature = "native", feature = "web"))]
pub use replication::{
    Interpolate, Replicated, ReplicationApp, ReplicationStats, Smoothing, PRESENCE_STREAM,
};
pub use rollback_id::{Rollback, RollbackId};
pub use session::{BoxedTransport, RtcPlayError, RtcPlaySession};
pub use snapshot::{load_world, save_world};
#[cfg(any(feature = "native", feature = "web"))]
pub use state_streams::{StateStreamEvent, StateStreams};
pub use stats::{NetworkStats, RtcPlayDiagnostics, RtcPlayEvent};
pub use transfer::TransferError;

/// The link conditioner, re-exported so a game needs no direct `rtcplay`
/// dependency to simulate latency and loss: `LinkConditions::good()`, or
/// `"poor".parse::<Preset>()?.conditions()` (presets `perfect`, `lan`, `good`,
/// `average`, `poor`, `lossy`). Conditions apply to this peer's traffic in both
/// directions, so `poor` on both peers of a match doubles its effect (~870 ms
/// RTT instead of ~435 ms).
pub use rtcplay::netem::{LinkConditions, Preset};

/// Everything a game usually needs.
pub mod prelude {
    pub use crate::{
        Confirmed, ConfirmedChecksums, LinkConditions, LocalInputs, LocalPlayers, NetworkStats,
        PlayerInputs, Preset, ReadInputs, ReplayControl, Rollback, RollbackApp, RollbackFrame,
        RollbackSchedule, RtcPlayEvent, RtcPlayPlugin, RtcPlayRecording, RtcPlaySession,
        RtcPlaySystems,
    };
    #[cfg(any(feature = "native", feature = "web"))]
    pub use crate::{
        ConnectStatus, ConnectedPeers, PeerLeft, Replicated, ReplicationApp, RtcPlayConnect,
        RtcPlayConnectPlugin, Smoothing, StateStreams,
    };
    pub use rtcplay::session::{InputStatus, SessionEvent};
}

/// Runs the example in `docs/replication.md` as a doc test (compiled).
#[cfg(all(doctest, feature = "native"))]
#[doc = include_str!("../../docs/replication.md")]
struct ReplicationGuide;

/// Runs the examples in `docs/replays.md` as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/replays.md")]
struct ReplaysGuide;
