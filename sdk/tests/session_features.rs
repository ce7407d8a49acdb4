//! Sync-test, spectators, desync reports, input delay and hostile datagrams.

#![allow(clippy::unwrap_used)]

use rtcplay_testkit::sim;

use std::time::Duration;

use proptest::prelude::*;
use rtcplay::netem::LinkConditions;
use rtcplay::session::{
    Checksum, InputStatus, PlayerType, Request, SessionBuilder, SessionError, SessionEvent,
    SessionStats,
};
use rtcplay::transport::{MemoryNetwork, PeerId, Transport};
use sim::{scripted_input, Game, Sim, SimOptions};

/// Drive a sync-test session; `glitch` makes the step non-deterministic from that frame.
fn run_synctest(frames: u32, glitch_from: Option<u32>) -> Result<(), SessionError> {
    let mut session = SessionBuilder::<u8>::new()
        .with_num_players(2)
        .start_synctest_session(7)?;
    let mut game = Game::new(2);
    let mut saved = std::collections::BTreeMap::new();
    // State outside the saved game: re-simulation cannot restore it.
    let mut hidden_counter = 0i32;
    for f in 0..frames {
        for h in 0..2 {
            session.add_local_input(h, scripted_input(h, f))?;
        }
        for r in session.advance_frame()? {
            match r {
                Request::Save { frame } => {
                    saved.insert(frame, game.clone());
                    session.report_checksum(frame, game.checksum_parts());
                }
                Request::Load { frame } => game = saved[&frame].clone(),
                Request::Export { .. } | Request::Import { .. } => {
                    unreachable!("sync test sessions never rejoin")
                }
                Request::Advance { inputs, .. } => {
                    game.step(&inputs);
                    hidden_counter += 1;
                    if glitch_from.is_some_and(|g| game.frame >= g) {
                        game.bodies[1].x += hidden_counter % 3;
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn synctest_passes_a_deterministic_game() {
    run_synctest(600, None).expect("deterministic game must pass");
}

#[test]
fn synctest_catches_a_non_deterministic_step_and_names_the_part() {
    match run_synctest(600, Some(300)) {
        Err(SessionError::MismatchedChecksum { frame, parts, .. }) => {
            assert!((300..320).contains(&frame), "caught late, at {frame}");
            assert_eq!(parts, vec!["body1".to_string()]);
        }
        other => panic!("non-determinism not caught: {other:?}"),
    }
}

#[test]
fn forced_desync_is_reported_with_the_differing_part() {
    let mut sim = Sim::new(SimOptions {
        players: 2,
        conditions: LinkConditions::good(),
        seed: 3,
        ..SimOptions::default()
    });
    sim.run_until_frame(300, Duration::from_secs(30));
    // Corrupt one peer's state (as a non-deterministic system would).
    sim.peers[1].game.bodies[0].score += 1000;
    sim.run_for(Duration::from_secs(2));
    for p in &sim.peers {
        let report = p.events.iter().find_map(|(_, e)| match e {
            SessionEvent::DesyncDetected {
                frame,
                parts,
                local,
                remote,
                ..
            } => Some((*frame, parts.clone(), *local, *remote)),
            _ => None,
        });
        let (frame, parts, local, remote) = report.expect("desync reported on both peers");
        assert!(frame >= 300);
        assert_ne!(local, remote);
        assert_eq!(parts, vec!["body0".to_string()]);
    }
}

#[test]
fn input_delay_change_mid_session_and_adaptive_delay() {
    let mut sim = Sim::new(SimOptions {
        players: 2,
        conditions: LinkConditions::average(),
        seed: 5,
        input_delay: 0,
        adaptive_delay: true,
        ..SimOptions::default()
    });
    sim.run_until_frame(1500, Duration::from_secs(60));
    for p in &sim.peers {
        let chosen = p.events.iter().find_map(|(_, e)| match e {
            SessionEvent::InputDelayChanged { frames } => Some(*frames),
            _ => None,
        });
        // 100 ms ± 25 ms one way at 60 Hz: about 6-10 frames, minus two of rollback.
        let chosen = chosen.expect("adaptive delay chose a delay");
        assert!((3..=8).contains(&chosen), "chose {chosen}");
        assert!(p.max_depth <= 8);
    }
    sim.peers[0].session.set_input_delay(1);
    sim.run_until_frame(2500, Duration::from_secs(120));
    sim.assert_in_sync();
}

/// Two players and a spectator over the `good` preset for 3,000 ticks. The
/// spectator is added when the host starts, or at tick `late_join` (the host then
/// keeps its whole input history). Checks that the spectator's state equals the
/// host's confirmed state at every frame both have, and returns the spectator's
/// final frame and its worst lag once it has caught up.
fn watch_match(late_join: Option<u64>) -> (u32, u32) {
    let (frame, lag, stats) = watch_match_with_stats(late_join);
    assert_eq!(stats.frames_advanced, u64::from(frame));
    assert!(stats.datagrams_sent > 0 && stats.datagrams_received > 0);
    assert_eq!(stats.rollbacks, 0);
    (frame, lag)
}

fn watch_match_with_stats(late_join: Option<u64>) -> (u32, u32, SessionStats) {
    let (host, guest, watcher) = (PeerId(0), PeerId(1), PeerId(9));
    let mut net = MemoryNetwork::new(&[host, guest, watcher], LinkConditions::good(), 11);
    let mut host_b = SessionBuilder::<u8>::new()
        .add_player(PlayerType::Local, 0)
        .add_player(PlayerType::Remote(guest), 1);
    if late_join.is_none() {
        host_b = host_b.add_spectator(watcher);
    }
    let mut config = host_b.config().clone();
    config.keep_input_history = late_join.is_some();
    let mut host_s = host_b.with_config(config).start_p2p_session().unwrap();
    let mut guest_s = SessionBuilder::<u8>::new()
        .add_player(PlayerType::Remote(host), 0)
        .add_player(PlayerType::Local, 1)
        .start_p2p_session()
        .unwrap();
    let mut spec_config = SessionBuilder::<u8>::new().config().clone();
    spec_config.spectator_catchup_speed = 8;
    let mut spec = SessionBuilder::<u8>::new()
        .with_config(spec_config)
        .start_spectator_session(host)
        .unwrap();
    // The spectator records what it watches.
    spec.start_recording("sim").unwrap();
    let joined_at = late_join.unwrap_or(0);
    let mut games = [Game::new(2), Game::new(2), Game::new(2)];
    let mut saved: [std::collections::BTreeMap<u32, Game>; 2] = Default::default();
    let mut host_history = std::collections::BTreeMap::new();
    let mut worst_lag = 0;
    for tick in 0..3000u64 {
        let now = Duration::from_micros(tick * 16_667);
        net.set_now(now);
        if late_join == Some(tick) {
            host_s.add_spectator(watcher, now).unwrap();
        }
        for (i, (s, me)) in [(&mut host_s, host), (&mut guest_s, guest)]
            .into_iter()
            .enumerate()
        {
            if !s.is_running() {
                s.poll(now, &mut net.endpoint(me));
                continue;
            }
            let h = s.local_player_handles()[0];
            s.add_local_input(h, scripted_input(h, s.current_frame()))
                .unwrap();
            if let Ok(reqs) = s.advance_frame(now, &mut net.endpoint(me)) {
                for r in reqs {
                    match r {
                        Request::Save { frame } => {
                            saved[i].insert(frame, games[i].clone());
                            if i == 0 {
                                host_history.insert(frame, games[0].checksum());
                            }
                        }
                        Request::Load { frame } => games[i] = saved[i][&frame].clone(),
                        Request::Advance { inputs, .. } => games[i].step(&inputs),
                        Request::Export { .. } | Request::Import { .. } => {
                            panic!("nobody rejoins here")
                        }
                    }
                }
            }
        }
        if tick < joined_at {
            continue;
        }
        match spec.advance_frame(now, &mut net.endpoint(watcher)) {
            Ok(reqs) => {
                for r in reqs {
                    let Request::Advance { inputs, .. } = r else {
                        panic!("a spectator only advances")
                    };
                    assert!(inputs.iter().all(|(_, s)| *s == InputStatus::Confirmed));
                    games[2].step(&inputs);
                }
            }
            Err(SessionError::NotSynchronized | SessionError::WaitingForInputs) => {}
            Err(e) => panic!("{e}"),
        }
        if tick > joined_at + 500 {
            worst_lag = worst_lag.max(spec.frames_behind_host());
        }
        // The spectator's state equals the host's confirmed state of the same frame.
        if let Some(c) = host_history.get(&games[2].frame) {
            if host_s
                .confirmed_frame()
                .is_some_and(|cf| cf >= games[2].frame)
            {
                assert_eq!(
                    *c,
                    games[2].checksum(),
                    "spectator diverged at {}",
                    games[2].frame
                );
            }
        }
    }
    // Its replay plays back to the state it ended with.
    spec.finish_recording();
    let file = spec.take_replay_bytes();
    let mut replay = rtcplay::session::ReplaySession::<u8>::from_bytes(&file, "sim").unwrap();
    let mut replayed = Game::new(2);
    while !replay.is_finished() {
        for r in replay.advance_frame() {
            match r {
                Request::Advance { inputs, .. } => replayed.step(&inputs),
                Request::Export { frame } => replay.export_state(frame, Vec::new()).unwrap(),
                Request::Save { frame } => assert!(!replay.wants_checksum(frame)),
                other => panic!("a spectator's replay never loads: {other:?}"),
            }
        }
    }
    assert_eq!(replayed, games[2], "the spectator's replay ends elsewhere");
    (spec.current_frame(), worst_lag, spec.stats())
}

#[test]
fn spectator_follows_the_host_within_its_lag_bound() {
    let (frame, worst_lag) = watch_match(None);
    assert!(frame > 2500, "spectator at {frame}");
    // Good link: 40 ms ± 10 ms one way, input delay 2, catch-up above 8 frames behind.
    assert!(worst_lag <= 16, "spectator lagged {worst_lag} frames");
}

#[test]
fn a_spectator_joining_mid_match_replays_it_and_catches_up() {
    // Joins at tick 1,500 (frame ~1,490), replays from frame 0 at 8 frames a tick.
    let (frame, worst_lag) = watch_match(Some(1500));
    assert!(frame > 2500, "spectator at {frame}");
    assert!(worst_lag <= 16, "spectator lagged {worst_lag} frames");
}

#[test]
fn a_late_spectator_is_refused_once_the_history_is_discarded() {
    let mut net = MemoryNetwork::new(&[PeerId(0), PeerId(1)], LinkConditions::perfect(), 1);
    let mut a = SessionBuilder::<u8>::new()
        .add_player(PlayerType::Local, 0)
        .add_player(PlayerType::Remote(PeerId(1)), 1)
        .start_p2p_session()
        .unwrap();
    let mut b = SessionBuilder::<u8>::new()
        .add_player(PlayerType::Remote(PeerId(0)), 0)
        .add_player(PlayerType::Local, 1)
        .start_p2p_session()
        .unwrap();
    let mut now = Duration::ZERO;
    while a.current_frame() < 1000 {
        now += Duration::from_millis(16);
        net.set_now(now);
        for (s, me) in [(&mut a, PeerId(0)), (&mut b, PeerId(1))] {
            if s.is_running() {
                let h = s.local_player_handles()[0];
                s.add_local_input(h, 0).unwrap();
                let _ = s.advance_frame(now, &mut net.endpoint(me));
            } else {
                s.poll(now, &mut net.endpoint(me));
            }
        }
    }
    let refused = a.add_spectator(PeerId(5), now);
    assert!(
        matches!(refused, Err(SessionError::HistoryDiscarded { oldest, .. }) if oldest > 0),
        "{refused:?}"
    );
    assert_eq!(
        a.add_spectator(PeerId(1), now),
        Err(SessionError::PeerExists(PeerId(1)))
    );
}

/// A transport that hands the session a fixed list of datagrams.
struct Inject(Vec<(PeerId, Vec<u8>)>);

impl Transport for Inject {
    fn send_to(&mut self, _: PeerId, _: &[u8]) {}
    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        out.append(&mut self.0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Garbage and truncated datagrams, from the real peer and from strangers, are
    /// dropped and counted; the session never panics and still plays in sync.
    #[test]
    fn garbage_and_truncated_datagrams_are_dropped_and_counted(
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..40),
        cuts in prop::collection::vec(any::<usize>(), 1..40),
        seed in 0u64..1000,
    ) {
        let mut sim = Sim::new(SimOptions { players: 2, seed, ..SimOptions::default() });
        sim.run_until_frame(100, Duration::from_secs(10));
        let real = capture(&mut sim);
        let mut hostile: Vec<(PeerId, Vec<u8>)> = Vec::new();
        for bytes in &garbage {
            hostile.push((PeerId(1), bytes.clone()));
            hostile.push((PeerId(77), bytes.clone()));
        }
        for (i, pos) in cuts.iter().enumerate() {
            let mut cut = real[i % real.len()].1.clone();
            cut.truncate(pos % cut.len());
            hostile.push((PeerId(1), cut));
        }
        let now = sim.now;
        sim.peers[0].session.poll(now, &mut Inject(hostile));
        let drops = sim.peers[0].session.drop_counters();
        prop_assert_eq!(drops.total(), 2 * garbage.len() as u64 + cuts.len() as u64);
        prop_assert_eq!(drops.unknown_peer, garbage.len() as u64);
        sim.run_until_frame(400, Duration::from_secs(60));
        prop_assert!(sim.peers[0].session.current_frame() >= 400);
        sim.assert_in_sync();
    }

    /// Bit-flipped datagrams never panic the session, and it keeps playing. (A
    /// flip that still decodes is a well-formed lie — integrity against forgery is
    /// the transport's job: DTLS over WebRTC.)
    #[test]
    fn mutated_datagrams_never_panic(
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..60),
        seed in 0u64..1000,
    ) {
        let mut sim = Sim::new(SimOptions { players: 2, seed, ..SimOptions::default() });
        sim.run_until_frame(100, Duration::from_secs(10));
        let real = capture(&mut sim);
        let hostile = flips
            .iter()
            .enumerate()
            .map(|(i, (pos, x))| {
                let mut d = real[i % real.len()].1.clone();
                let at = pos % d.len();
                d[at] ^= x | 1;
                (PeerId(1), d)
            })
            .collect();
        let now = sim.now;
        sim.peers[0].session.poll(now, &mut Inject(hostile));
        sim.run_until_frame(400, Duration::from_secs(60));
        prop_assert!(sim.peers[0].session.current_frame() >= 400);
    }
}

/// Take the datagrams in flight to peer 0 (real ones, to mutate). When none is in
/// flight at this instant (both peers just polled), play on a millisecond at a time
/// until one is: the loss of a captured datagram is part of the game.
fn capture(sim: &mut Sim) -> Vec<(PeerId, Vec<u8>)> {
    for _ in 0..1000 {
        let mut real = Vec::new();
        sim.net.set_now(sim.now + Duration::from_secs(1));
        sim.net.endpoint(PeerId(0)).receive(&mut real);
        sim.net.set_now(sim.now);
        if !real.is_empty() {
            return real;
        }
        sim.run_for(Duration::from_millis(1));
    }
    panic!("peer 1 sent nothing for a second");
}

#[test]
fn datagrams_of_another_session_or_version_are_dropped() {
    let mut a = SessionBuilder::<u8>::new()
        .with_session_id(1)
        .add_player(PlayerType::Local, 0)
        .add_player(PlayerType::Remote(PeerId(1)), 1)
        .start_p2p_session()
        .unwrap();
    let mut b = SessionBuilder::<u8>::new()
        .with_session_id(2)
        .add_player(PlayerType::Remote(PeerId(0)), 0)
        .add_player(PlayerType::Local, 1)
        .start_p2p_session()
        .unwrap();
    let mut net = MemoryNetwork::new(&[PeerId(0), PeerId(1)], LinkConditions::lan(), 1);
    for t in 0..100u64 {
        let now = Duration::from_millis(t * 16);
        net.set_now(now);
        a.poll(now, &mut net.endpoint(PeerId(0)));
        b.poll(now, &mut net.endpoint(PeerId(1)));
    }
    assert!(!a.is_running() && !b.is_running());
    assert!(a.drop_counters().wrong_session > 10);
    let mut old = vec![0xC1u8, 1, 0, 0, 0];
    a.poll(
        Duration::from_secs(2),
        &mut Inject(vec![(PeerId(1), old.clone())]),
    );
    assert_eq!(a.drop_counters().wrong_version, 1);
    old[0] = 0x00;
    a.poll(Duration::from_secs(2), &mut Inject(vec![(PeerId(1), old)]));
    assert_eq!(a.drop_counters().wrong_version, 2);
}

#[test]
fn configuration_and_input_errors_are_clear() {
    let err = SessionBuilder::<u8>::new()
        .add_player(PlayerType::Local, 0)
        .start_p2p_session()
        .err()
        .expect("player 1 missing");
    assert!(err.to_string().contains("player 1 not declared"));
    let mut s = SessionBuilder::<Vec<u8>>::new()
        .with_max_input_size(8)
        .add_player(PlayerType::Local, 0)
        .add_player(PlayerType::Remote(PeerId(1)), 1)
        .start_p2p_session()
        .unwrap();
    assert_eq!(
        s.add_local_input(1, vec![]),
        Err(SessionError::NotLocalPlayer(1))
    );
    assert!(matches!(
        s.add_local_input(0, vec![0; 100]),
        Err(SessionError::InvalidInput(_))
    ));
    let mut net = MemoryNetwork::new(&[PeerId(0), PeerId(1)], LinkConditions::lan(), 1);
    assert_eq!(
        s.advance_frame(Duration::ZERO, &mut net.endpoint(PeerId(0)))
            .err(),
        Some(SessionError::NotSynchronized)
    );
    let _ = Checksum::new(1);
}

#[test]
fn lockstep_with_two_local_players_and_variable_size_inputs() {
    // Endpoint A plays handles 0 and 1, endpoint B plays handle 2; inputs are
    // byte strings whose length changes; no prediction at all (lockstep).
    let (a, b) = (PeerId(0), PeerId(1));
    let mut net = MemoryNetwork::new(&[a, b], LinkConditions::good(), 21);
    let build = |locals: &[usize], remote: PeerId| {
        let mut builder = SessionBuilder::<Vec<u8>>::new()
            .with_num_players(3)
            .with_max_prediction(0);
        for h in 0..3 {
            let kind = if locals.contains(&h) {
                PlayerType::Local
            } else {
                PlayerType::Remote(remote)
            };
            builder = builder.add_player(kind, h);
        }
        builder.start_p2p_session().unwrap()
    };
    let mut sessions = [(build(&[0, 1], b), a), (build(&[2], a), b)];
    let input = |h: usize, f: u32| -> Vec<u8> { vec![h as u8; ((f / 7 + h as u32) % 5) as usize] };
    let mut logs: [Vec<Vec<Vec<u8>>>; 2] = Default::default();
    for tick in 0..2400u64 {
        let now = Duration::from_micros(tick * 16_667);
        net.set_now(now);
        for (i, (s, me)) in sessions.iter_mut().enumerate() {
            if !s.is_running() {
                s.poll(now, &mut net.endpoint(*me));
                continue;
            }
            let target = s.current_frame() + s.input_delay();
            for h in s.local_player_handles() {
                s.add_local_input(h, input(h, target)).unwrap();
            }
            match s.advance_frame(now, &mut net.endpoint(*me)) {
                Ok(reqs) => {
                    for r in reqs {
                        match r {
                            Request::Load { .. } => panic!("lockstep never rolls back"),
                            Request::Advance { inputs, .. } => {
                                assert!(inputs.iter().all(|(_, st)| *st == InputStatus::Confirmed));
                                logs[i].push(inputs.into_iter().map(|(v, _)| v).collect());
                            }
                            Request::Save { .. } => {}
                            Request::Export { .. } | Request::Import { .. } => {
                                panic!("nobody rejoins here")
                            }
                        }
                    }
                }
                Err(SessionError::PredictionThreshold) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
    let n = logs[0].len().min(logs[1].len());
    assert!(n > 1500, "only {n} frames in lockstep");
    assert_eq!(logs[0][..n], logs[1][..n]);
    // Inputs arrived intact, whatever their length.
    for (f, frame) in logs[0][..n].iter().enumerate().skip(2) {
        for (h, v) in frame.iter().enumerate() {
            assert_eq!(*v, input(h, f as u32), "frame {f} player {h}");
        }
    }
}

#[test]
fn time_sync_slows_the_peer_that_runs_ahead() {
    let mut sim = Sim::new(SimOptions {
        players: 2,
        conditions: LinkConditions::good(),
        seed: 9,
        ..SimOptions::default()
    });
    // Peer 1 starts its clock 300 ms late: peer 0 runs ahead.
    sim.peers[1].next_tick = Duration::from_millis(300);
    sim.run_until_frame(2400, Duration::from_secs(120));
    let slowed = sim.peers[0]
        .events
        .iter()
        .any(|(_, e)| matches!(e, SessionEvent::TickRate(advice) if advice.speed < 1.0));
    assert!(slowed, "the peer ahead was never advised to slow down");
    for p in &sim.peers {
        let ahead = p.session.tick_rate_advice().frames_ahead;
        assert!(
            ahead.abs() < 2.0,
            "peer {} still {ahead} frames ahead",
            p.id
        );
    }
    sim.assert_in_sync();
}

/// Synchronization runs at network speed when the game polls often: a datagram
/// from a peer that is still synchronizing is answered in the same `poll`, not at
/// the next retry (50 ms). Simulated time, 1 ms one way, both sessions polled
/// every millisecond: 3 round trips take a few ms (they took 100+ ms when every
/// answer waited for the retry interval).
#[test]
fn synchronization_round_trips_do_not_wait_for_the_retry_interval() {
    let session = |me: usize| {
        SessionBuilder::<u8>::new()
            .add_player(
                if me == 0 {
                    PlayerType::Local
                } else {
                    PlayerType::Remote(PeerId(0))
                },
                0,
            )
            .add_player(
                if me == 1 {
                    PlayerType::Local
                } else {
                    PlayerType::Remote(PeerId(1))
                },
                1,
            )
            .start_p2p_session()
            .unwrap()
    };
    let (mut a, mut b) = (session(0), session(1));
    assert_eq!(a.config().sync_round_trips, 3);
    assert!(a.config().sync_retry_interval >= Duration::from_millis(50));
    let mut net = MemoryNetwork::new(&[PeerId(0), PeerId(1)], LinkConditions::with(1, 0, 0.0), 1);
    let mut now = Duration::ZERO;
    while !(a.is_running() && b.is_running()) {
        assert!(
            now < Duration::from_millis(20),
            "not running after {now:?} (3 round trips of 2 ms)"
        );
        now += Duration::from_millis(1);
        net.set_now(now);
        a.poll(now, &mut net.endpoint(PeerId(0)));
        b.poll(now, &mut net.endpoint(PeerId(1)));
    }
}
