//! The exclusive system that advances the session and carries out its requests.

use std::time::Duration;

use bevy::prelude::*;
use rtcplay::session::{Input, Request, SessionError, SessionEvent};

use crate::checksum::ConfirmedChecksums;
use crate::desync::SyncTestTrace;
use crate::forensics::ForensicsTrace;
use crate::inputs::{LocalInputs, LocalPlayers, PlayerInputs};
use crate::messages::MessageRegistry;
use crate::plugin::{DriverSettings, ReadInputs, RollbackFrame, RollbackSchedule, RollbackTime};
use crate::session::RtcPlaySession;
use crate::snapshot::SnapshotRegistry;
use crate::stats::{update_stats, RtcPlayEvent};

/// Whether the game was told that it wrote input for players it does not play.
#[derive(Resource, Debug, Default)]
pub(crate) struct ForeignInputWarning(bool);

/// Time owed to the simulation.
#[derive(Resource, Debug, Default)]
pub(crate) struct TickClock {
    owed: Duration,
}

/// Advance the session by as many frames as real time allows (at most
/// `max_frames_per_update`), carrying out saves, loads and steps in order.
pub(crate) fn advance_session<I: Input + Send + Sync + 'static>(world: &mut World) {
    if !world.contains_resource::<RtcPlaySession<I>>() {
        return;
    }
    let (now, delta) = world
        .get_resource::<Time<Real>>()
        .map_or((Duration::ZERO, Duration::ZERO), |t| {
            (t.elapsed(), t.delta())
        });
    let mut max_frames = world
        .get_resource::<DriverSettings>()
        .map_or(4, |s| s.max_frames_per_update);
    world.resource_scope(|world, mut session: Mut<RtcPlaySession<I>>| {
        let session = &mut *session;
        if let RtcPlaySession::Replay(replay) = session {
            // Faster playback needs more frames per update.
            max_frames *= replay.speed().ceil().max(1.0) as u32;
        }
        crate::replay::apply_replay_control(world, session);
        // Known as soon as the session is: the game may look before frame 0.
        let handles = session.local_handles();
        if world.resource::<LocalPlayers>().0 != handles {
            world.resource_mut::<LocalPlayers>().0 = handles;
        }
        let step = session.frame_duration();
        let ticks = {
            let mut clock = world.resource_mut::<TickClock>();
            clock.owed += delta;
            let mut ticks = 0;
            while clock.owed >= step && ticks < max_frames {
                clock.owed -= step;
                ticks += 1;
            }
            // Never build an unbounded backlog (e.g. after the window was dragged).
            clock.owed = clock.owed.min(step * max_frames);
            ticks
        };
        // Poll first: synchronization round trips are answered at once (not on
        // ticks), and the frame in which they complete already runs frame 0.
        let was_running = session.is_running();
        if !was_running {
            session.poll(now);
        }
        if session.is_running() && ticks > 0 {
            for _ in 0..ticks {
                tick(world, session, now);
            }
        } else if was_running {
            session.poll(now);
        }
        let mut events = Vec::new();
        session.drain_events(&mut events);
        for e in events {
            if let SessionEvent::DesyncDetected {
                frame, peer, parts, ..
            } = &e
            {
                world
                    .resource_mut::<ForensicsTrace>()
                    .on_desync(*frame, *peer, parts);
            }
            world.write_message(RtcPlayEvent::Session(e));
        }
        crate::replay::publish_replay_state(world, session);
        update_stats(world, session);
    });
}

fn tick<I: Input + Send + Sync + 'static>(
    world: &mut World,
    session: &mut RtcPlaySession<I>,
    now: Duration,
) {
    if let RtcPlaySession::Replay(replay) = session {
        let requests = replay.advance_frame();
        carry_out(world, session, requests);
        return;
    }
    let handles = session.local_handles();
    let _ = world.try_run_schedule(ReadInputs);
    let mut local = std::mem::take(&mut world.resource_mut::<LocalInputs<I>>().0);
    for &handle in &handles {
        let input = local.remove(&handle).unwrap_or_default();
        if let Err(e) = session.add_local_input(handle, input) {
            tracing::warn!("rtcplay: local input for player {handle} refused: {e}");
        }
    }
    if !local.is_empty() {
        let mut warned = world.resource_mut::<ForeignInputWarning>();
        if !warned.0 {
            warned.0 = true;
            let mut foreign: Vec<_> = local.keys().copied().collect();
            foreign.sort_unstable();
            tracing::warn!(
                "rtcplay: LocalInputs holds input for player(s) {foreign:?}, but this endpoint \
                 plays {handles:?}: that input is dropped. Write input for the handles in \
                 LocalPlayers (warned once)"
            );
        }
    }
    let requests = match session.advance(now) {
        Ok(requests) => requests,
        Err(
            SessionError::PredictionThreshold
            | SessionError::WaitingForInputs
            | SessionError::NotSynchronized,
        ) => return,
        Err(SessionError::MismatchedChecksum {
            frame,
            original,
            resimulated,
            parts,
        }) => {
            let values = world.resource_scope(|world, trace: Mut<SyncTestTrace>| {
                world.resource_scope(|world, snapshots: Mut<SnapshotRegistry>| {
                    trace.diverged(&snapshots, world, frame)
                })
            });
            world.write_message(RtcPlayEvent::SyncTestMismatch {
                frame,
                original,
                resimulated,
                parts,
                values,
            });
            return;
        }
        Err(e) => {
            tracing::warn!("rtcplay: advance failed: {e}");
            return;
        }
    };
    carry_out(world, session, requests);
}

/// Carry out a session's requests in order: save (and report checksums), load,
/// simulate, export and import states.
pub(crate) fn carry_out<I: Input + Send + Sync + 'static>(
    world: &mut World,
    session: &mut RtcPlaySession<I>,
    requests: Vec<Request<I>>,
) {
    let step = session.nominal_frame_duration();
    let trace_values = matches!(session, RtcPlaySession::SyncTest(_));
    let forensics = matches!(session, RtcPlaySession::P2P { .. })
        && world
            .get_resource::<DriverSettings>()
            .is_some_and(|s| s.desync_forensics);
    world.resource_scope(|world, mut snapshots: Mut<SnapshotRegistry>| {
        world.resource_scope(|world, mut messages: Mut<MessageRegistry>| {
            for request in requests {
                match request {
                    Request::Save { frame } => {
                        snapshots.save(world, frame);
                        if session.wants_checksum(frame) {
                            let checksum = snapshots.checksum(world);
                            world
                                .resource_mut::<ConfirmedChecksums>()
                                .saved(frame, checksum.total);
                            session.report_checksum(frame, checksum);
                            if trace_values {
                                world.resource_scope(|world, mut trace: Mut<SyncTestTrace>| {
                                    trace.record(&mut snapshots, world, frame);
                                });
                            } else if forensics {
                                world.resource_scope(|world, mut trace: Mut<ForensicsTrace>| {
                                    trace.record(&mut snapshots, world, frame);
                                });
                            }
                        }
                    }
                    Request::Load { frame } => snapshots.load(world, frame),
                    Request::Advance { frame, inputs } => {
                        world.resource_mut::<PlayerInputs<I>>().0 = inputs;
                        world.resource_mut::<RollbackFrame>().frame = frame;
                        run_rollback_schedule(world, frame, step);
                        for collector in &mut messages.0 {
                            collector.collect(world, frame);
                        }
                    }
                    Request::Export { frame } => {
                        let exported = crate::transfer::export_frame(&snapshots, frame)
                            .map_err(|e| e.to_string())
                            .and_then(|state| {
                                session
                                    .export_state(frame, state)
                                    .map_err(|e| e.to_string())
                            });
                        if let Err(e) = exported {
                            tracing::error!(
                                "rtcplay: cannot hand frame {frame} to a rejoining player: {e}"
                            );
                        }
                    }
                    Request::Import { frame, state } => {
                        if let Err(e) = crate::transfer::import_state(&mut snapshots, world, &state)
                        {
                            tracing::error!("rtcplay: rejoining at frame {frame} failed: {e}");
                        }
                        world.resource_mut::<RollbackFrame>().frame = frame;
                    }
                }
            }
            let confirmed = session.confirmed_frame();
            let mut rf = world.resource_mut::<RollbackFrame>();
            rf.frame = session.current_frame();
            rf.confirmed = confirmed;
            if let Some(confirmed) = confirmed {
                world
                    .resource_mut::<ConfirmedChecksums>()
                    .confirm(confirmed);
                for collector in &mut messages.0 {
                    collector.release(world, confirmed);
                }
            }
        });
    });
}

/// Run the rollback schedule with `Time` following the rollback frame.
fn run_rollback_schedule(world: &mut World, frame: u32, step: Duration) {
    let mut rollback_time = Time::<RollbackTime>::default();
    rollback_time.advance_to(step * frame);
    rollback_time.advance_by(step);
    let outer = world
        .get_resource_mut::<Time>()
        .map(|mut t| std::mem::replace(&mut *t, rollback_time.as_generic()));
    let _ = world.try_run_schedule(RollbackSchedule);
    if let (Some(outer), Some(mut t)) = (outer, world.get_resource_mut::<Time>()) {
        *t = outer;
    }
}
