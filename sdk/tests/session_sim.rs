//! Deterministic simulations of rollback sessions over the link conditioner.

#![allow(clippy::unwrap_used)]

use rtcplay_testkit::sim;

use std::time::Duration;

use rtcplay::netem::{LinkConditions, Preset};
use rtcplay::session::{SessionConfig, SessionError, SessionEvent};
use rtcplay::transport::PeerId;
use sim::{Game, Sim, SimOptions};

const FRAMES: u32 = 10_000;

fn play(players: usize, conditions: LinkConditions, seed: u64) -> Sim {
    let mut sim = Sim::new(SimOptions {
        players,
        conditions,
        seed,
        ..SimOptions::default()
    });
    // 10,000 frames at 60 Hz is ~167 s; allow generous slack for stalls.
    sim.run_until_frame(FRAMES, Duration::from_secs(400));
    for p in &sim.peers {
        assert!(
            p.session.current_frame() >= FRAMES,
            "peer {} stuck at frame {}",
            p.id,
            p.session.current_frame()
        );
        assert!(
            p.max_depth <= 8,
            "peer {} rolled back {} frames, beyond the window",
            p.id,
            p.max_depth
        );
        assert_eq!(p.session.drop_counters().total(), 0);
    }
    let compared = sim.assert_in_sync();
    assert!(
        compared as u32 >= FRAMES - 20,
        "only {compared} frames compared"
    );
    // The session compared checksums with every peer along the way.
    for p in &sim.peers {
        assert!(p.session.stats().checksums_compared > u64::from(FRAMES / 10 / 2));
    }
    sim
}

/// The final state equals a local replay of everyone's real inputs.
fn assert_matches_replay(sim: &Sim, delay: u32) {
    let p = &sim.peers[0];
    let upto = p
        .session
        .confirmed_frame()
        .expect("confirmed")
        .min(p.session.current_frame() - 1);
    let mut game = Game::new(sim.peers.len());
    for f in 0..upto {
        let inputs: Vec<_> = (0..sim.peers.len())
            .map(|h| {
                let input = if f < delay {
                    0
                } else {
                    sim::scripted_input(h, f)
                };
                (input, rtcplay::session::InputStatus::Confirmed)
            })
            .collect();
        game.step(&inputs);
    }
    assert_eq!(Some(&game.checksum()), p.history.get(&upto));
}

#[test]
fn two_players_every_preset() {
    for (i, preset) in [Preset::Lan, Preset::Good, Preset::Average, Preset::Poor]
        .into_iter()
        .enumerate()
    {
        let sim = play(2, preset.conditions(), 10 + i as u64);
        assert_matches_replay(&sim, 2);
        if preset != Preset::Lan {
            assert!(
                sim.peers.iter().any(|p| p.session.stats().rollbacks > 0),
                "{preset:?}: no rollbacks at all, the scenario tests nothing"
            );
        }
    }
}

#[test]
fn twenty_percent_loss_with_reordering() {
    let conditions = LinkConditions {
        reorder: 0.1,
        duplicate: 0.02,
        ..LinkConditions::with(30, 15, 0.2)
    };
    let sim = play(2, conditions, 7);
    assert_matches_replay(&sim, 2);
    let sim = play(3, LinkConditions::lossy(), 8);
    assert_matches_replay(&sim, 2);
}

#[test]
fn three_and_four_players_good_and_average() {
    play(3, LinkConditions::good(), 21);
    let sim = play(4, LinkConditions::average(), 22);
    assert_matches_replay(&sim, 2);
}

#[test]
fn eight_players_good_and_poor() {
    let sim = play(8, LinkConditions::good(), 31);
    assert_matches_replay(&sim, 2);
    play(8, LinkConditions::poor(), 32);
}

#[test]
fn silent_peer_is_disconnected_within_the_timeout_and_others_play_on() {
    let mut sim = Sim::new(SimOptions {
        players: 3,
        conditions: LinkConditions::good(),
        seed: 41,
        ..SimOptions::default()
    });
    sim.run_until_frame(600, Duration::from_secs(60));
    let silenced_at = sim.now;
    sim.silence(2);
    let gone = sim.peers[2].id;
    let frame_then = sim.peers[0].session.current_frame();
    sim.run_until_frame(frame_then + 1200, Duration::from_secs(120));
    for p in &sim.peers[..2] {
        let interrupted = p.events.iter().find(
            |(_, e)| matches!(e, SessionEvent::NetworkInterrupted { peer, .. } if *peer == gone),
        );
        let disconnected = p
            .events
            .iter()
            .find(|(_, e)| matches!(e, SessionEvent::Disconnected { peer, .. } if *peer == gone));
        let (at, _) = disconnected.expect("disconnect reported");
        assert!(
            interrupted.is_some_and(|(t, _)| t < at),
            "notice before disconnect"
        );
        // The default timeout, plus the link's latency and one tick.
        let timeout = SessionConfig::default().disconnect_timeout;
        let waited = *at - silenced_at;
        assert!(
            waited >= timeout - Duration::from_millis(100)
                && waited <= timeout + Duration::from_millis(300),
            "disconnect after {waited:?}"
        );
        assert!(
            p.session.current_frame() >= frame_then + 1200,
            "stopped playing"
        );
    }
    // The two survivors agree on the disconnect frame and on every state.
    let frames: Vec<_> = sim.peers[..2]
        .iter()
        .map(|p| {
            p.events.iter().find_map(|(_, e)| match e {
                SessionEvent::Disconnected { frame, .. } => Some(*frame),
                _ => None,
            })
        })
        .collect();
    assert!(frames[0].is_some());
    sim.assert_in_sync();
}

/// When a rejoining session imported its state: (time, frame its inputs count
/// from, frame of the state).
fn rejoined(events: &[(Duration, SessionEvent)]) -> Option<(Duration, u32, u32)> {
    events.iter().find_map(|(t, e)| match e {
        SessionEvent::Rejoined {
            frame, state_frame, ..
        } => Some((*t, *frame, *state_frame)),
        _ => None,
    })
}

/// Player 2 of 3 is cut off at frame 600; after `down` its process "restarts": a
/// fresh session with a blank game rejoins. Every peer then plays 1200 more frames.
fn rejoin_after(players: usize, down: Duration, conditions: LinkConditions, seed: u64) -> Sim {
    let mut sim = Sim::new(SimOptions {
        players,
        conditions,
        seed,
        ..SimOptions::default()
    });
    sim.run_until_frame(600, Duration::from_secs(60));
    let gone = players - 1;
    sim.silence(gone);
    sim.run_for(down);
    sim.restart(gone, 0xC0FFEE + seed as u32);
    let restarted_at = sim.now;
    let target = sim.peers[0].session.current_frame() + 1200;
    sim.run_until_frame(target, sim.now + Duration::from_secs(120));
    for p in &sim.peers {
        assert!(
            p.session.current_frame() >= target,
            "peer {} stuck at frame {}",
            p.id,
            p.session.current_frame()
        );
        let drops = p.session.drop_counters();
        assert_eq!((drops.malformed, drops.bad_inputs), (0, 0), "peer {}", p.id);
    }
    let rejoiner = &sim.peers[gone];
    assert!(!rejoiner.session.is_rejoining(), "still catching up");
    let (rejoined_at, resume, state_frame) =
        rejoined(&rejoiner.events).expect("the rejoiner imported a state");
    assert!(state_frame <= resume);
    // On loopback-like links the state is back within a fraction of a second.
    assert!(
        rejoined_at - restarted_at < Duration::from_secs(2),
        "rejoined after {:?}",
        rejoined_at - restarted_at
    );
    for p in &sim.peers[..gone] {
        let back = p.events.iter().find_map(|(_, e)| match e {
            SessionEvent::PeerRejoined { peer, frame } if peer.0 as usize == gone => Some(*frame),
            _ => None,
        });
        assert_eq!(
            back,
            Some(resume),
            "peer {} resumes the rejoiner elsewhere",
            p.id
        );
    }
    // Every frame from the imported state on is identical on every peer, and the
    // rejoined player moves again (its inputs count).
    let compared = sim.assert_in_sync();
    assert!(compared >= 1000, "only {compared} frames compared");
    eprintln!(
        "rejoin: state {state_frame}, resume {resume}, back after {:?}, {compared} frames compared, skipped {:?}",
        rejoined_at - restarted_at,
        sim.peers.iter().map(|p| p.skipped_ticks).collect::<Vec<_>>()
    );
    let (first, last) = (&sim.peers[0].game.bodies[gone], &rejoiner.game.bodies[gone]);
    assert_eq!(first, last);
    assert!(
        rejoiner.session.stats().frames_advanced > 1000,
        "the rejoiner plays"
    );
    sim
}

#[test]
fn a_restarted_player_rejoins_after_the_others_dropped_it() {
    let timeout = SessionConfig::default().disconnect_timeout;
    let sim = rejoin_after(
        3,
        timeout + Duration::from_secs(1),
        LinkConditions::good(),
        51,
    );
    for p in &sim.peers[..2] {
        let dropped = p
            .events
            .iter()
            .any(|(_, e)| matches!(e, SessionEvent::Disconnected { peer, .. } if peer.0 == 2));
        assert!(dropped, "peer {} never dropped the silent player", p.id);
    }
}

#[test]
fn a_restarted_player_rejoins_before_the_others_noticed() {
    let sim = rejoin_after(3, Duration::from_secs(2), LinkConditions::good(), 52);
    for p in &sim.peers[..2] {
        assert!(p
            .events
            .iter()
            .any(|(_, e)| matches!(e, SessionEvent::PeerRejoining { peer } if peer.0 == 2)));
    }
}

#[test]
fn rejoins_under_loss_and_with_two_players() {
    let lossy = LinkConditions {
        reorder: 0.1,
        ..LinkConditions::with(30, 10, 0.2)
    };
    rejoin_after(3, Duration::from_secs(4), lossy, 53);
    rejoin_after(2, Duration::from_secs(3), LinkConditions::average(), 54);
}

/// A match of 4 seats starts with players 0 and 1; seats 2 and 3 are vacant
/// (their input is `Disconnected`). At frame 300 a new player takes seat 2: the
/// two players seat it, a survivor hands it the state, and from an agreed frame
/// its inputs count. Seat 3 stays vacant. Every frame from the handed-over
/// state on is the same everywhere.
#[test]
fn a_new_player_takes_a_vacant_seat_mid_match() {
    let mut sim = Sim::new(SimOptions {
        players: 4,
        vacant: vec![2, 3],
        conditions: LinkConditions::good(),
        seed: 61,
        ..SimOptions::default()
    });
    sim.run_until_frame(300, Duration::from_secs(60));
    for p in &mut sim.peers[..2] {
        assert!(
            p.session.is_running(),
            "a match starts without its vacant seats"
        );
        assert!(p.session.current_frame() >= 300);
        assert_eq!(
            p.session.seat_player(0, PeerId(9)),
            Err(SessionError::NotVacant(0)),
            "only a vacant seat can be taken"
        );
    }
    let before = sim.peers[0].game.bodies[2];
    sim.drop_in(2, 0xD0D0);
    let dropped_in_at = sim.now;
    let target = sim.peers[0].session.current_frame() + 1200;
    sim.run_until_frame(target, sim.now + Duration::from_secs(120));
    let newcomer = &sim.peers[2];
    let (joined_at, resume, state_frame) =
        rejoined(&newcomer.events).expect("the newcomer got the state");
    assert!(joined_at - dropped_in_at < Duration::from_secs(2));
    assert!(state_frame >= 300 && state_frame <= resume);
    for p in &sim.peers[..2] {
        let back = p.events.iter().find_map(|(_, e)| match e {
            SessionEvent::PeerRejoined { peer, frame } if peer.0 == 2 => Some(*frame),
            _ => None,
        });
        assert_eq!(
            back,
            Some(resume),
            "peer {} counts seat 2 from elsewhere",
            p.id
        );
        let drops = p.session.drop_counters();
        assert_eq!((drops.malformed, drops.bad_inputs), (0, 0), "peer {}", p.id);
    }
    let compared = sim.assert_in_sync();
    assert!(compared >= 1000, "only {compared} frames compared");
    // Seat 2 stood still while vacant and moves now; seat 3 is still empty.
    assert_ne!(sim.peers[0].game.bodies[2], before, "the newcomer plays");
    assert_eq!(sim.peers[0].game.bodies[2], sim.peers[2].game.bodies[2]);
    assert!(sim.peers[2].session.stats().frames_advanced > 1000);
    eprintln!(
        "drop-in: state {state_frame}, inputs count from {resume}, in after {:?}, {compared} frames compared",
        joined_at - dropped_in_at
    );
}
