//! Replays in Bevy: apps record their match with `RtcPlayRecording`; a fresh app
//! plays the file through the same rollback schedule to the same states, and
//! `ReplayControl` pauses, steps, changes speed and seeks.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use common::*;
use rtcplay::netem::LinkConditions;
use rtcplay::session::replay::ReplayEvent;

const BUILD: &str = "plugin-test 1";

/// Three apps over `poor` links, each recording; returns the apps and their files.
fn recorded_match() -> (Vec<App>, Vec<Vec<u8>>) {
    let (mut apps, net) = p2p_apps(3, LinkConditions::poor(), 5);
    for app in &mut apps {
        app.insert_resource(RtcPlayRecording::in_memory(BUILD));
    }
    let mut now = Duration::ZERO;
    run(&mut apps, &net, 1200, &mut now);
    // Exiting ends the recordings cleanly.
    for app in &mut apps {
        app.world_mut().write_message(AppExit::Success);
        app.update();
    }
    let files = apps
        .iter()
        .map(|a| {
            let rec = a.world().resource::<RtcPlayRecording>();
            assert!(rec.is_finished(), "{:?}", rec.error());
            rec.bytes().to_vec()
        })
        .collect();
    (apps, files)
}

fn replay_app(file: &[u8]) -> App {
    let mut app = game_app(3, 0);
    app.insert_resource(RtcPlaySession::<Input>::replay(file, BUILD).unwrap());
    app
}

fn control(app: &App) -> &ReplayControl {
    app.world().resource::<ReplayControl>()
}

#[test]
fn a_recorded_lossy_match_replays_to_the_same_states_in_a_fresh_app() {
    let (apps, files) = recorded_match();
    for (live, file) in apps.iter().zip(&files) {
        let mut app = replay_app(file);
        let mut updates = 0;
        while control(&app).end_frame() == 0 || control(&app).frame() < control(&app).end_frame() {
            app.update();
            updates += 1;
            assert!(updates < 5000, "the replay does not end");
        }
        let end = control(&app).end_frame();
        assert!(end + 20 >= confirmed(live), "replay ends at {end}");
        let live_log = &live.world().resource::<StateLog>().0;
        let replay_log = &app.world().resource::<StateLog>().0;
        for f in 0..end {
            assert_eq!(replay_log.get(&f), live_log.get(&f), "frame {f}");
        }
        let verified = control(&app).checksums_verified();
        let recorded = rtcplay::session::Replay::decode(file)
            .unwrap()
            .checksum_frames()
            .count();
        assert!(
            verified as usize == recorded && recorded >= 5,
            "{verified} checksums verified of {recorded} recorded, end {end}"
        );
        assert!(control(&app).first_mismatch().is_none());
        let events = &app.world().resource::<Events>().0;
        assert!(events
            .iter()
            .any(|e| matches!(e, RtcPlayEvent::Replay(ReplayEvent::Ended { .. }))));
    }
}

#[test]
fn pause_step_speed_and_seek_control_the_playback() {
    let (apps, files) = recorded_match();
    let live_log = apps[1].world().resource::<StateLog>().0.clone();
    let mut app = replay_app(&files[1]);
    for _ in 0..300 {
        app.update();
    }
    let at = control(&app).frame();
    assert!((250..=300).contains(&at), "at {at} after 300 updates");
    // Paused: nothing advances; a step advances one frame.
    app.world_mut().resource_mut::<ReplayControl>().paused = true;
    for _ in 0..10 {
        app.update();
    }
    assert_eq!(control(&app).frame(), at);
    app.world_mut().resource_mut::<ReplayControl>().step();
    app.update();
    assert_eq!(control(&app).frame(), at + 1);
    // ×4: about four frames per update.
    {
        let mut c = app.world_mut().resource_mut::<ReplayControl>();
        c.paused = false;
        c.speed = 4.0;
    }
    for _ in 0..50 {
        app.update();
    }
    let fast = control(&app).frame() - (at + 1);
    assert!(
        (180..=220).contains(&fast),
        "{fast} frames in 50 updates at x4"
    );
    // Back to frame 100: the states from there are simulated again, equal.
    app.world_mut().resource_mut::<ReplayControl>().seek(100);
    app.world_mut().resource_mut::<ReplayControl>().paused = true;
    app.update();
    assert_eq!(control(&app).frame(), 100);
    app.world_mut().resource_mut::<ReplayControl>().paused = false;
    let sims_before = app.world().resource::<Simulations>().0.get(&150).copied();
    for _ in 0..40 {
        app.update();
    }
    let sims_after = app.world().resource::<Simulations>().0.get(&150).copied();
    assert!(
        sims_after > sims_before,
        "frame 150 was not simulated again"
    );
    let log = &app.world().resource::<StateLog>().0;
    for f in 100..control(&app).frame() {
        assert_eq!(log.get(&f), live_log.get(&f), "frame {f} after the seek");
    }
    // Forward past the end: refused, clearly.
    let end = control(&app).end_frame();
    app.world_mut()
        .resource_mut::<ReplayControl>()
        .seek(end + 100);
    app.update();
    assert!(control(&app)
        .last_error()
        .unwrap()
        .contains("outside the recorded frames"));
    assert!(control(&app).first_mismatch().is_none());
}

#[test]
fn a_replay_from_another_build_is_refused_with_a_clear_error() {
    let (_, files) = recorded_match();
    let err = RtcPlaySession::<Input>::replay(&files[0], "plugin-test 2")
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("recorded by build `plugin-test 1`"),
        "{err}"
    );
    let err = RtcPlaySession::<Input>::replay_file("/nonexistent/match.rtcreplay", BUILD)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("/nonexistent/match.rtcreplay"),
        "{err}"
    );
}
