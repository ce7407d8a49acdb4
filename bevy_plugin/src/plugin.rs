//! The plugin, its schedules and system sets.

use std::marker::PhantomData;

use bevy::ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
use bevy::prelude::*;
use rtcplay::session::{Frame, Input};

use crate::driver::advance_session;
use crate::inputs::{LocalInputs, PlayerInputs};
use crate::rollback_id::{RollbackGeneration, RollbackIdCounter};
use crate::snapshot::SnapshotRegistry;
use crate::stats::{publish_diagnostics, register_diagnostics, NetworkStats, RtcPlayEvent};

/// Runs once per simulated frame — and again for every re-simulated frame after a
/// rollback. Game logic goes here. Single-threaded and deterministic.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct RollbackSchedule;

/// Runs once per new frame before the session advances: write this endpoint's
/// input into [`LocalInputs`] here.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadInputs;

/// System sets of the plugin in `PreUpdate`.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum RtcPlaySystems {
    /// Advance the session: read inputs, save, load, re-simulate, simulate.
    Advance,
    /// Publish stats and diagnostics.
    Diagnostics,
}

/// The frame being simulated inside [`RollbackSchedule`] (and, outside it, the next
/// frame to simulate).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollbackFrame {
    /// The frame number.
    pub frame: Frame,
    /// The newest frame that can no longer change.
    pub confirmed: Option<Frame>,
}

/// Context of the `Time` seen inside [`RollbackSchedule`]: elapsed time follows the
/// rollback frame (`frame × frame duration`), delta is one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct RollbackTime;

/// Adds rollback networking for input type `I`.
pub struct RtcPlayPlugin<I> {
    /// Snapshot slots kept (the deepest rollback the session can ask for, plus two).
    pub snapshot_slots: usize,
    /// At most this many frames are simulated per app update when catching up.
    pub max_frames_per_update: u32,
    /// Keep the hash of every rolled-back value at each checksummed frame, so a
    /// P2P desync names the diverging entities (one pass over the hashable
    /// values every `checksum_interval` frames; see `docs/replays.md`).
    pub desync_forensics: bool,
    _input: PhantomData<fn() -> I>,
}

impl<I> Default for RtcPlayPlugin<I> {
    fn default() -> Self {
        RtcPlayPlugin {
            snapshot_slots: 48,
            max_frames_per_update: 4,
            desync_forensics: true,
            _input: PhantomData,
        }
    }
}

/// Settings the driver reads.
#[derive(Resource, Debug, Clone, Copy)]
pub(crate) struct DriverSettings {
    pub max_frames_per_update: u32,
    pub desync_forensics: bool,
}

impl<I: Input + Send + Sync + 'static> Plugin for RtcPlayPlugin<I> {
    fn build(&self, app: &mut App) {
        // Registration may have happened before the plugin was added: keep it.
        if !app.world().contains_resource::<SnapshotRegistry>() {
            app.insert_resource(SnapshotRegistry::new(self.snapshot_slots));
        }
        let mut rollback = Schedule::new(RollbackSchedule);
        rollback.set_executor(SingleThreadedExecutor::new());
        let mut inputs = Schedule::new(ReadInputs);
        inputs.set_executor(SingleThreadedExecutor::new());
        app.add_schedule(rollback)
            .add_schedule(inputs)
            .init_resource::<crate::messages::MessageRegistry>()
            .insert_resource(DriverSettings {
                max_frames_per_update: self.max_frames_per_update,
                desync_forensics: self.desync_forensics,
            })
            .init_resource::<crate::forensics::ForensicsTrace>()
            .init_resource::<RollbackIdCounter>()
            .init_resource::<RollbackGeneration>()
            .init_resource::<RollbackFrame>()
            .init_resource::<LocalInputs<I>>()
            .init_resource::<PlayerInputs<I>>()
            .init_resource::<NetworkStats>()
            .init_resource::<crate::driver::TickClock>()
            .init_resource::<crate::driver::ForeignInputWarning>()
            .init_resource::<crate::inputs::LocalPlayers>()
            .init_resource::<crate::checksum::ConfirmedChecksums>()
            .init_resource::<crate::desync::SyncTestTrace>()
            .add_message::<RtcPlayEvent>()
            .configure_sets(
                PreUpdate,
                (RtcPlaySystems::Advance, RtcPlaySystems::Diagnostics).chain(),
            )
            .init_resource::<crate::replay::ReplayControl>()
            .add_systems(
                PreUpdate,
                (advance_session::<I>, crate::replay::record_replay::<I>)
                    .chain()
                    .in_set(RtcPlaySystems::Advance),
            )
            .add_systems(Last, crate::replay::finish_recording_on_exit::<I>)
            .add_systems(
                PreUpdate,
                publish_diagnostics.in_set(RtcPlaySystems::Diagnostics),
            );
        register_diagnostics(app);
    }
}
