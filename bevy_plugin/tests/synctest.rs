//! Sync-test mode inside Bevy.

#![allow(clippy::unwrap_used)]

mod common;

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use bevy_rtcplay::DivergedValue;
use common::*;

/// Not rolled back, so re-simulation sees a different value: non-deterministic.
#[derive(Resource, Default)]
struct Drift(i32);

/// Perturbs player 1's position only, so the report can name that one entity.
fn drifting_system(mut drift: ResMut<Drift>, mut q: Query<(&Player, &mut Pos)>) {
    drift.0 += 1;
    if drift.0 > 200 {
        for (_, mut pos) in q.iter_mut().filter(|(p, _)| p.handle == 1) {
            pos.x += drift.0 % 2;
        }
    }
}

fn synctest_app(nondeterministic: bool) -> App {
    let mut app = game_app(2, 0);
    app.insert_resource(RtcPlaySession::<Input>::sync_test(2, 6).unwrap())
        .add_systems(
            ReadInputs,
            |mut i: ResMut<LocalInputs<Input>>, f: Res<RollbackFrame>| {
                i.set(1, scripted(1, f.frame));
            },
        );
    if nondeterministic {
        app.init_resource::<Drift>()
            .add_systems(RollbackSchedule, drifting_system);
    }
    app
}

fn mismatches(app: &App) -> Vec<(u32, Vec<String>)> {
    app.world()
        .resource::<Events>()
        .0
        .iter()
        .filter_map(|e| match e {
            RtcPlayEvent::SyncTestMismatch { frame, parts, .. } => Some((*frame, parts.clone())),
            _ => None,
        })
        .collect()
}

fn first_diverged_values(app: &App) -> Vec<DivergedValue> {
    app.world()
        .resource::<Events>()
        .0
        .iter()
        .find_map(|e| match e {
            RtcPlayEvent::SyncTestMismatch { values, .. } => Some(values.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn deterministic_game_passes_sync_test() {
    let mut app = synctest_app(false);
    for _ in 0..300 {
        app.update();
    }
    assert!(app.world().resource::<RollbackFrame>().frame > 250);
    assert_eq!(mismatches(&app), vec![]);
}

#[test]
fn sync_test_flags_a_non_deterministic_system_and_names_the_type() {
    let mut app = synctest_app(true);
    for _ in 0..300 {
        app.update();
    }
    let found = mismatches(&app);
    let (frame, parts) = found.first().cloned().expect("non-determinism caught");
    assert!(frame < 120, "caught late at frame {frame}");
    assert!(parts.contains(&"Pos".to_string()), "parts: {parts:?}");
}

#[test]
fn sync_test_names_the_entity_whose_value_diverged() {
    let mut app = synctest_app(true);
    for _ in 0..300 {
        app.update();
    }
    let mut players = app
        .world_mut()
        .query::<(Entity, &Player, &bevy_rtcplay::Rollback)>();
    let (entity, id) = players
        .iter(app.world())
        .find(|(_, p, _)| p.handle == 1)
        .map(|(e, _, r)| (e, r.id()))
        .expect("player 1 exists");
    let values = first_diverged_values(&app);
    assert!(
        values.contains(&DivergedValue {
            type_name: "Pos".into(),
            rollback_id: Some(id),
            entity: Some(entity),
        }),
        "values: {values:?}"
    );
    // Only player 1 was perturbed: nothing else is blamed.
    assert!(
        values.iter().all(|v| v.rollback_id == Some(id)),
        "values: {values:?}"
    );
}

/// (frame, elapsed, delta) seen by a system in the rollback schedule.
#[derive(Resource, Default)]
struct TimeLog(Vec<(u32, std::time::Duration, std::time::Duration)>);

fn log_time(frame: Res<RollbackFrame>, time: Res<Time>, mut log: ResMut<TimeLog>) {
    log.0.push((frame.frame, time.elapsed(), time.delta()));
}

#[test]
fn time_in_the_rollback_schedule_follows_the_rollback_frame() {
    let mut app = synctest_app(false);
    app.init_resource::<TimeLog>()
        .add_systems(RollbackSchedule, log_time);
    for _ in 0..60 {
        app.update();
    }
    let step = std::time::Duration::from_secs(1) / 60;
    let log = &app.world().resource::<TimeLog>().0;
    // Sync-test re-simulates every frame: the same frame is seen several times,
    // always with the same time.
    assert!(log.len() > 200, "{} steps", log.len());
    for (frame, elapsed, delta) in log {
        assert_eq!(*delta, step);
        assert_eq!(*elapsed, step * (frame + 1), "frame {frame}");
    }
    // Outside the schedule, Time is the app's own again.
    assert_ne!(
        app.world().resource::<Time>().delta(),
        std::time::Duration::ZERO
    );
}

/// `Time` deltas seen inside the rollback schedule.
#[derive(Resource, Default)]
struct Deltas(Vec<std::time::Duration>);

/// The rollback schedule's `Time` follows the session's tick rate, not 60 Hz
/// (it used to be hard-coded for sync-test and spectator sessions).
#[test]
fn sync_test_at_30_hz_steps_time_by_a_thirtieth() {
    let thirtieth = std::time::Duration::from_secs(1) / 30;
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, RtcPlayPlugin::<u8>::default()))
        .insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(thirtieth))
        .init_resource::<Deltas>()
        .insert_resource(
            RtcPlaySession::<u8>::sync_test_with_config(
                rtcplay::session::SessionConfig {
                    num_players: 1,
                    fps: 30,
                    ..Default::default()
                },
                4,
            )
            .unwrap(),
        )
        .add_systems(
            RollbackSchedule,
            |time: Res<Time>, mut d: ResMut<Deltas>| {
                d.0.push(time.delta());
            },
        );
    for _ in 0..60 {
        app.update();
    }
    let deltas = &app.world().resource::<Deltas>().0;
    assert!(deltas.len() >= 50, "{} rollback steps", deltas.len());
    assert!(
        deltas.iter().all(|d| *d == thirtieth),
        "deltas: {:?}",
        &deltas[..deltas.len().min(8)]
    );
    // Sync-test frames become final `check_distance` frames back.
    let frame = app.world().resource::<RollbackFrame>();
    assert_eq!(frame.confirmed, Some(frame.frame - 5));
}
