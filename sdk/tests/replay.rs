//! Replays: matches recorded by their sessions play back to the same states;
//! damaged, cut-off and foreign files are clear errors, never panics.

#![allow(clippy::unwrap_used)]

use rtcplay_testkit::sim;

use std::time::Duration;

use rtcplay::netem::LinkConditions;
use rtcplay::session::replay::{ReplayError, ReplayEvent, REPLAY_FORMAT_VERSION};
use rtcplay::session::{Replay, ReplaySession, Request};
use sim::{Game, Sim, SimOptions};

const BUILD: &str = "sim-game 1";

/// Carries out a replay's requests on `game`; returns the checksums it saved.
fn carry_out(
    replay: &mut ReplaySession<sim::Input>,
    game: &mut Game,
    requests: Vec<Request<sim::Input>>,
) {
    for r in requests {
        match r {
            Request::Save { frame } => {
                assert_eq!(game.frame, frame);
                replay.report_checksum(frame, game.checksum_parts());
            }
            Request::Export { frame } => {
                assert_eq!(game.frame, frame);
                replay.export_state(frame, game.to_bytes()).unwrap();
            }
            Request::Import { frame, state } => {
                *game = Game::from_bytes(&state, game.bodies.len()).unwrap();
                assert_eq!(game.frame, frame);
            }
            Request::Advance { frame, inputs } => {
                assert_eq!(game.frame, frame);
                game.step(&inputs);
            }
            Request::Load { .. } => panic!("a replay never loads a saved state"),
        }
    }
}

/// Plays a whole replay; returns the game and the session.
fn play_all(bytes: &[u8], players: usize) -> (Game, ReplaySession<sim::Input>) {
    let mut replay = ReplaySession::<sim::Input>::from_bytes(bytes, BUILD).unwrap();
    let mut game = Game::new(players);
    while !replay.is_finished() {
        let requests = replay.advance_frame();
        carry_out(&mut replay, &mut game, requests);
    }
    (game, replay)
}

/// A 4-player match under `poor` conditions; player 3 drops out at frame ~1500
/// and its restarted process rejoins. Every session records.
fn recorded_match() -> (Sim, Vec<Vec<u8>>) {
    let mut sim = Sim::new(SimOptions {
        players: 4,
        conditions: LinkConditions::poor(),
        seed: 77,
        ..SimOptions::default()
    });
    for p in &mut sim.peers {
        p.session.start_recording(BUILD).unwrap();
    }
    let mut files = vec![Vec::new(); 4];
    sim.run_until_frame(1500, Duration::from_secs(120));
    for (p, file) in sim.peers.iter_mut().zip(&mut files) {
        file.extend(p.session.take_replay_bytes());
    }
    sim.silence(3);
    sim.run_for(Duration::from_secs(3));
    sim.restart(3, 2);
    // The rejoining session records from the state it receives.
    sim.peers[3].session.start_recording(BUILD).unwrap();
    files[3].clear();
    let frame = sim.peers[0].session.current_frame();
    sim.run_until_frame(frame + 1500, Duration::from_secs(300));
    for (p, file) in sim.peers.iter_mut().zip(&mut files) {
        p.session.finish_recording();
        file.extend(p.session.take_replay_bytes());
    }
    (sim, files)
}

#[test]
fn every_peer_of_a_lossy_match_with_a_rejoin_replays_it_exactly() {
    let (sim, files) = recorded_match();
    sim.assert_in_sync();
    for (i, (p, file)) in sim.peers.iter().zip(&files).enumerate() {
        let decoded = Replay::decode(file).unwrap();
        assert!(decoded.is_complete(), "peer {i}");
        let end = decoded.end_frame();
        let confirmed = p.session.confirmed_frame().unwrap();
        assert!(
            end > confirmed.saturating_sub(10),
            "peer {i}: replay ends at {end}"
        );
        if i == 3 {
            assert!(
                decoded.start_frame() > 1500,
                "the rejoiner's replay starts at its state"
            );
            assert!(decoded.header().initial_state.is_some());
        }
        let (game, replay) = play_all(file, 4);
        assert_eq!(game.frame, end);
        // The live peer's final checksum of the last replayed state is the same.
        assert_eq!(
            Some(&game.checksum()),
            p.history.get(&end),
            "peer {i}: replayed state at frame {end} differs from the live one"
        );
        assert_eq!(replay.checksum_mismatches(), 0, "peer {i}");
        assert!(
            replay.checksums_verified() >= u64::from((end - decoded.start_frame()) / 120 - 2),
            "peer {i}: only {} checksums verified",
            replay.checksums_verified()
        );
    }
    // Player 3 was away: the survivors' files say so (default inputs there).
    let survivor = Replay::decode(&files[0]).unwrap();
    let away = (1500..3000)
        .filter(|f| {
            survivor.inputs::<sim::Input>(*f).unwrap()[3].1
                == rtcplay::session::InputStatus::Disconnected
        })
        .count();
    assert!(away > 30, "player 3 away for {away} frames only");
}

#[test]
fn seeking_lands_on_the_recorded_states() {
    let (sim, files) = recorded_match();
    let p = &sim.peers[1];
    let (mut game, mut replay) = play_all(&files[1], 4);
    for target in [100, 2999, 1, 1234, 0, replay.end_frame() - 1, 700] {
        let requests = replay.seek(target).unwrap();
        carry_out(&mut replay, &mut game, requests);
        assert_eq!(game.frame, target);
        assert_eq!(replay.current_frame(), target);
        if let Some(live) = p.history.get(&target) {
            assert_eq!(&game.checksum(), live, "seek to {target}");
        }
    }
    assert!(matches!(
        replay.seek(replay.end_frame() + 1),
        Err(ReplayError::CannotSeek { .. })
    ));
    // Stepping while paused; speed is clamped.
    replay.pause();
    assert!(replay.advance_frame().is_empty());
    let requests = replay.step();
    carry_out(&mut replay, &mut game, requests);
    assert_eq!(game.frame, 701);
    replay.set_speed(100.0);
    assert_eq!(replay.speed(), 8.0);
    assert_eq!(replay.checksum_mismatches(), 0);
}

#[test]
fn a_game_that_simulates_differently_is_caught_at_the_first_recorded_checksum_after() {
    let (_, files) = recorded_match();
    let mut replay = ReplaySession::<sim::Input>::from_bytes(&files[0], BUILD).unwrap();
    let mut game = Game::new(4);
    while !replay.is_finished() {
        let requests = replay.advance_frame();
        for r in &requests {
            if let Request::Advance { frame: 1000, .. } = r {
                game.bodies[2].score += 1; // a bug only this build has
            }
        }
        carry_out(&mut replay, &mut game, requests);
    }
    let mismatch = replay.first_mismatch().unwrap().clone();
    assert_eq!(
        mismatch.frame, 1080,
        "first recorded checksum after the bug"
    );
    assert!(
        mismatch.parts.contains(&"body2".to_string()),
        "{mismatch:?}"
    );
    let events: Vec<_> = replay.events().collect();
    assert!(events.contains(&ReplayEvent::Mismatch(mismatch)));
}

#[test]
fn cut_off_damaged_and_foreign_files_are_clear_errors() {
    let (_, files) = recorded_match();
    let file = &files[2];
    let full = Replay::decode(file).unwrap();
    // A recording cut off anywhere: an error before the header is whole, after it a
    // replay of fewer frames whose inputs are the full one's.
    let mut last_end = 0;
    for cut in (0..file.len()).step_by(7) {
        match Replay::decode(&file[..cut]) {
            Ok(part) => {
                assert!(!part.is_complete());
                assert!(part.end_frame() >= last_end && part.end_frame() <= full.end_frame());
                last_end = part.end_frame();
                if part.end_frame() > 0 {
                    let f = part.end_frame() - 1;
                    assert_eq!(part.inputs::<sim::Input>(f), full.inputs::<sim::Input>(f));
                }
            }
            Err(ReplayError::Truncated(_) | ReplayError::NotAReplay) => assert!(last_end == 0),
            Err(e) => panic!("cut at {cut}: {e}"),
        }
    }
    assert!(last_end > 2000, "the cut-off file played to {last_end}");
    // Any byte changed after the header: never a panic, never the same replay read
    // silently with other inputs.
    let header_len = 10 + 40;
    for at in (header_len..file.len()).step_by(13) {
        let mut damaged = file.clone();
        damaged[at] ^= 0x5A;
        if let Ok(r) = Replay::decode(&damaged) {
            // A damaged length prefix can make the rest look cut off.
            assert!(
                !r.is_complete(),
                "byte {at} changed and the file still reads whole"
            );
        }
    }
    let mut damaged = file.clone();
    let middle = file.len() / 2;
    damaged[middle] ^= 1;
    let err = Replay::decode(&damaged).unwrap_err();
    assert!(matches!(err, ReplayError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("damaged"));

    let mut newer = file.clone();
    newer[8..10].copy_from_slice(&(REPLAY_FORMAT_VERSION + 1).to_le_bytes());
    let err = Replay::decode(&newer).unwrap_err();
    assert_eq!(
        err,
        ReplayError::UnsupportedVersion {
            found: REPLAY_FORMAT_VERSION + 1
        }
    );
    assert!(err.to_string().contains("this build reads version"));
    assert_eq!(
        Replay::decode(b"PK\x03\x04 a zip").unwrap_err(),
        ReplayError::NotAReplay
    );
    assert_eq!(Replay::decode(&[]).unwrap_err(), ReplayError::NotAReplay);

    let err = ReplaySession::<sim::Input>::from_bytes(file, "sim-game 2")
        .err()
        .unwrap();
    assert!(matches!(err, ReplayError::WrongBuild { .. }), "{err}");
    let err = ReplaySession::<u16>::from_bytes(file, BUILD).err().unwrap();
    assert!(matches!(err, ReplayError::WrongInputType { .. }), "{err}");
}

#[test]
fn recording_must_start_before_the_first_frame() {
    let mut sim = Sim::new(SimOptions::default());
    sim.run_until_frame(10, Duration::from_secs(10));
    let err = sim.peers[0].session.start_recording(BUILD).unwrap_err();
    assert!(
        err.to_string().contains("cannot start recording at frame"),
        "{err}"
    );
}

#[test]
fn a_sync_test_session_records_a_replay_that_plays_back_verified() {
    let mut session = rtcplay::session::SessionBuilder::<sim::Input>::new()
        .with_num_players(2)
        .start_synctest_session(4)
        .unwrap();
    session.start_recording(BUILD).unwrap();
    let mut game = Game::new(2);
    let mut saved = std::collections::BTreeMap::new();
    for frame in 0..1000 {
        for h in 0..2 {
            session
                .add_local_input(h, sim::scripted_input(h, frame))
                .unwrap();
        }
        for r in session.advance_frame().unwrap() {
            match r {
                Request::Save { frame } => {
                    saved.insert(frame, game.clone());
                    session.report_checksum(frame, game.checksum_parts());
                }
                Request::Load { frame } => game = saved[&frame].clone(),
                Request::Advance { inputs, .. } => game.step(&inputs),
                other => panic!("{other:?}"),
            }
        }
    }
    session.finish_recording();
    let file = session.take_replay_bytes();
    let (replayed, replay) = play_all(&file, 2);
    assert_eq!(replayed, game);
    assert_eq!(replay.checksum_mismatches(), 0);
    assert!(
        replay.checksums_verified() >= 8,
        "{}",
        replay.checksums_verified()
    );
}
