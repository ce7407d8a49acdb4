//! Deterministic simulations of rollback sessions over the link conditioner.

#![allow(clippy::unwrap_used)]

use rtcplay_testkit::sim;

use std::time::Duration;

use rtcplay::netem::{LinkConditions, Preset};
use rtcplay::session::{SessionConfig, SessionEvent};
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
