//! State streams over the in-memory network with the link conditioner: latest
//! wins under loss, duplication, reordering and jitter; deltas decode to exactly
//! what was sent; receivers converge once the link recovers; events arrive
//! once and in order; garbage is dropped and counted; a rollback session and
//! state streams share one transport.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use rtcplay::netem::LinkConditions;
use rtcplay::state_sync::{
    DeadReckoning, Snapshots, SplitTransport, StateEvent, StateSync, StateSyncConfig, Stream,
    StreamKey,
};
use rtcplay::transport::{MemoryNetwork, PeerId};

/// A moving thing: `version` counts its owner's updates, so a receiver can tell
/// old from new.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Body {
    version: u32,
    x: i32,
    y: i32,
    vx: i16,
    vy: i16,
}

const BODIES: Stream<Body> = Stream::new(1);
const TICK: Duration = Duration::from_millis(33);

struct Endpoint {
    id: PeerId,
    sync: StateSync,
    /// Per (owner, key): the newest version seen through `Updated`.
    seen: HashMap<(PeerId, u64), u32>,
}

fn endpoints(n: u32) -> Vec<Endpoint> {
    (0..n)
        .map(|i| {
            let mut sync = StateSync::new(StateSyncConfig::default());
            sync.accept(BODIES);
            for j in 0..n {
                if j != i {
                    sync.add_peer(PeerId(j));
                }
            }
            Endpoint {
                id: PeerId(i),
                sync,
                seen: HashMap::new(),
            }
        })
        .collect()
}

/// Owner `i`'s body `key` at update `version`: a pure function, so every
/// version's exact value is known.
fn body(i: u32, key: u64, version: u32) -> Body {
    let t = version as i32;
    Body {
        version,
        x: (t * 7 + key as i32 * 31 + i as i32) % 5000,
        y: (t * 3 - key as i32) % 3000,
        vx: (t % 17) as i16,
        vy: -((t % 5) as i16),
    }
}

/// One tick of every endpoint; checks what each saw.
fn tick(net: &mut MemoryNetwork, eps: &mut [Endpoint], now: &mut Duration) {
    *now += TICK;
    net.set_now(*now);
    for ep in eps.iter_mut() {
        ep.sync.tick(&mut net.endpoint(ep.id));
        let events: Vec<StateEvent> = ep.sync.events().collect();
        for e in events {
            if let StateEvent::Updated { peer, key } = e {
                // (Removed again later in the same tick: the removal follows.)
                let Some(value) = ep.sync.get::<Body>(peer, BODIES, key.key) else {
                    continue;
                };
                // Exactly a value the owner set (every delta decoded right)...
                assert_eq!(value, body(peer.0, key.key, value.version));
                // ...and never older than one already seen (two updates of a
                // key in one tick both read the newest).
                let newest = ep.seen.entry((peer, key.key)).or_insert(0);
                assert!(
                    value.version >= *newest,
                    "went back from {newest} to {}",
                    value.version
                );
                *newest = value.version;
            }
        }
    }
}

fn run(conditions: LinkConditions, seed: u64, keys: u64, ticks: u32) {
    let mut net = MemoryNetwork::new(&[PeerId(0), PeerId(1), PeerId(2)], conditions, seed);
    let mut eps = endpoints(3);
    let mut now = Duration::ZERO;
    let mut versions: HashMap<(u32, u64), u32> = HashMap::new();
    for t in 0..ticks {
        for ep in &mut eps {
            for key in 0..keys {
                // Some keys move every tick, some now and then, one comes and goes.
                let moves = key.is_multiple_of(3) || (t + key as u32).is_multiple_of(11);
                // Key 1 is removed for ten ticks every fifty (its versions
                // count on when it comes back).
                if key == 1 && t % 50 >= 25 && t % 50 < 35 {
                    ep.sync.remove(BODIES, key);
                    continue;
                }
                let v = versions.entry((ep.id.0, key)).or_insert(0);
                if moves || ep.sync.own(BODIES, key).is_none() {
                    *v += 1;
                    ep.sync.set(BODIES, key, &body(ep.id.0, key, *v)).unwrap();
                }
            }
        }
        tick(&mut net, &mut eps, &mut now);
    }
    // The link recovers: everyone converges to every owner's latest values.
    for from in 0..3 {
        for to in (0..3).filter(|t| *t != from) {
            net.set_conditions(PeerId(from), PeerId(to), LinkConditions::perfect());
        }
    }
    for _ in 0..60 {
        tick(&mut net, &mut eps, &mut now);
    }
    for ep in &eps {
        for owner in eps.iter().filter(|o| o.id != ep.id) {
            let mut expected: Vec<u64> = (0..keys)
                .filter(|k| owner.sync.own(BODIES, *k).is_some())
                .collect();
            expected.sort_unstable();
            assert_eq!(ep.sync.keys(owner.id, BODIES), expected);
            for key in expected {
                assert_eq!(
                    ep.sync.get(owner.id, BODIES, key),
                    owner.sync.own(BODIES, key),
                    "{} holds an old value of {}'s key {key}",
                    ep.id,
                    owner.id
                );
            }
        }
        let stats = ep.sync.stats();
        assert_eq!(
            stats.malformed + stats.unknown_peer + stats.unknown_stream,
            0
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn latest_wins_deltas_decode_and_receivers_converge(
        seed in 0u64..1_000_000,
        loss in 0.0f64..0.3,
        duplicate in 0.0f64..0.2,
        reorder in 0.0f64..0.3,
        jitter_ms in 0u64..60,
        keys in 4u64..40,
    ) {
        let conditions = LinkConditions {
            loss,
            duplicate,
            reorder,
            ..LinkConditions::with(40, jitter_ms, 0.0)
        };
        run(conditions, seed, keys, 300);
    }
}

#[test]
fn changed_values_travel_as_deltas() {
    let mut net = MemoryNetwork::new(
        &[PeerId(0), PeerId(1), PeerId(2)],
        LinkConditions::good(),
        3,
    );
    let mut eps = endpoints(3);
    let mut now = Duration::ZERO;
    for t in 1..=300u32 {
        for key in 0..16 {
            eps[0].sync.set(BODIES, key, &body(0, key, t)).unwrap();
        }
        tick(&mut net, &mut eps, &mut now);
    }
    let stats = eps[0].sync.stats();
    assert!(
        stats.delta_values > stats.full_values * 5,
        "{} deltas, {} whole values",
        stats.delta_values,
        stats.full_values
    );
}

#[test]
fn events_arrive_once_and_in_order_through_loss() {
    let conditions = LinkConditions {
        duplicate: 0.1,
        reorder: 0.2,
        ..LinkConditions::with(30, 20, 0.25)
    };
    let mut net = MemoryNetwork::new(&[PeerId(0), PeerId(1), PeerId(2)], conditions, 9);
    let mut eps = endpoints(3);
    let mut now = Duration::ZERO;
    let mut got: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
    for t in 0..400u32 {
        if t < 200 {
            for ep in &mut eps {
                ep.sync.send_event(None, &(ep.id.0, t)).unwrap();
            }
        }
        now += TICK;
        net.set_now(now);
        for ep in &mut eps {
            ep.sync.tick(&mut net.endpoint(ep.id));
            for e in ep.sync.events() {
                if let StateEvent::Event { peer, bytes } = e {
                    let ((from, n), _): ((u32, u32), usize) =
                        bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                            .unwrap();
                    assert_eq!(from, peer.0);
                    got.entry((ep.id.0, from)).or_default().push(n);
                }
            }
        }
    }
    for to in 0..3 {
        for from in (0..3).filter(|f| *f != to) {
            assert_eq!(
                got[&(to, from)],
                (0..200).collect::<Vec<_>>(),
                "{from} → {to}"
            );
        }
    }
}

#[test]
fn garbage_unknown_streams_and_strangers_are_dropped_and_counted() {
    let mut net = MemoryNetwork::new(
        &[PeerId(0), PeerId(1), PeerId(7)],
        LinkConditions::perfect(),
        1,
    );
    let mut eps = endpoints(2);
    let mut now = Duration::ZERO;
    eps[0].sync.set(BODIES, 1, &body(0, 1, 1)).unwrap();
    let other: Stream<u8> = Stream::new(9);
    eps[0].sync.set(other, 1, &5).unwrap();
    tick(&mut net, &mut eps, &mut now);
    tick(&mut net, &mut eps, &mut now);
    assert_eq!(eps[1].sync.get(PeerId(0), BODIES, 1), Some(body(0, 1, 1)));
    assert!(eps[1].sync.stats().unknown_stream >= 1);
    // Garbage from a peer, and a datagram from a stranger.
    let mut stranger = StateSync::new(StateSyncConfig::default());
    stranger.add_peer(PeerId(1));
    stranger.accept(BODIES);
    stranger.set(BODIES, 1, &body(7, 1, 99)).unwrap();
    stranger.tick(&mut net.endpoint(PeerId(7)));
    {
        use rtcplay::datagram::Transport;
        let mut from_0 = net.endpoint(PeerId(0));
        from_0.send_to(
            PeerId(1),
            &[0xE1, 0x54, 0x57, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        );
        from_0.send_to(PeerId(1), &[0xE1]);
        let mut huge = vec![0xE1, 0x54, 0x57, 1, 0, 0, 0, 0, 0, 0];
        huge.extend([1, 1, 1, 0, 0xff, 0xff, 0x03]);
        from_0.send_to(PeerId(1), &huge);
    }
    tick(&mut net, &mut eps, &mut now);
    let stats = eps[1].sync.stats();
    assert!(stats.malformed >= 3, "{stats:?}");
    assert!(stats.unknown_peer >= 1, "{stats:?}");
    assert_eq!(eps[1].sync.get(PeerId(0), BODIES, 1), Some(body(0, 1, 1)));
    assert_eq!(eps[1].sync.keys(PeerId(7), BODIES), Vec::<u64>::new());
    // Values and events over the limit are refused at the source.
    let big: Stream<Vec<u8>> = Stream::new(2);
    assert!(eps[0].sync.set(big, 1, &vec![0u8; 5000]).is_err());
    assert!(eps[0].sync.send_event(Some(PeerId(5)), &1u8).is_err());
    let _ = StreamKey { stream: 1, key: 1 };
}

#[test]
fn a_rollback_session_and_state_streams_share_one_transport() {
    use rtcplay::session::{PlayerType, SessionBuilder};
    let (a, b) = (PeerId(0), PeerId(1));
    let net = rtcplay::transport::SharedMemoryNetwork::new(MemoryNetwork::new(
        &[a, b],
        LinkConditions::good(),
        4,
    ));
    let mut sides: Vec<_> = [(a, b, 0usize), (b, a, 1)]
        .into_iter()
        .map(|(me, other, local)| {
            let session = SessionBuilder::<u8>::new()
                .with_num_players(2)
                .add_player(PlayerType::Local, local)
                .add_player(PlayerType::Remote(other), 1 - local)
                .start_p2p_session()
                .unwrap();
            let mut sync = StateSync::new(StateSyncConfig::default());
            sync.accept(BODIES);
            sync.add_peer(other);
            (me, session, sync, SplitTransport::new(net.endpoint(me)))
        })
        .collect();
    let mut now = Duration::ZERO;
    for t in 0..600u64 {
        now += Duration::from_millis(16);
        net.with(|n| n.set_now(now));
        for (me, session, sync, split) in &mut sides {
            if session.is_running() {
                let h = session.local_player_handles()[0];
                session.add_local_input(h, (t % 5) as u8).unwrap();
                let _ = session.advance_frame(now, &mut split.session());
            } else {
                session.poll(now, &mut split.session());
            }
            if t % 2 == 0 {
                sync.set(BODIES, u64::from(me.0), &body(me.0, 0, t as u32 + 1))
                    .unwrap();
                sync.tick(&mut split.state());
            }
        }
    }
    for (me, session, sync, _) in &sides {
        assert!(
            session.current_frame() > 500,
            "{me}: frame {}",
            session.current_frame()
        );
        // The session never saw a state datagram, nor the streams a session one.
        assert_eq!(session.drop_counters().total(), 0);
        assert_eq!(sync.stats().malformed, 0);
        let other = PeerId(1 - me.0);
        assert!(sync.get(other, BODIES, u64::from(other.0)).is_some());
    }
}

/// A point moving in straight lines at 0.25 a tick, turning every 40 ticks.
fn path(tick: u64) -> [f32; 2] {
    let dir = |leg: u64| {
        if leg.is_multiple_of(2) {
            [1.0, 0.5]
        } else {
            [0.25, -1.0]
        }
    };
    let mut at = [0.0f32; 2];
    for leg in 0..=tick / 40 {
        let ticks = if leg == tick / 40 { tick % 40 } else { 40 } as f32;
        at[0] += dir(leg)[0] * ticks * 0.25;
        at[1] += dir(leg)[1] * ticks * 0.25;
    }
    at
}

/// Each value carries the owner's tick it was set for; the receiver's clock
/// estimate and render tick place it; dead reckoning sends a fraction of the
/// samples and the receiver's interpolated value stays within the owner's
/// threshold of the true one under `good` and `average` conditions.
#[test]
fn interpolated_values_follow_the_owner_with_few_samples() {
    let lerp =
        |a: &[f32; 2], b: &[f32; 2], t: f32| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
    let dist = |a: &[f32; 2], b: &[f32; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
    const POINT: Stream<[f32; 2]> = Stream::new(2);
    for (conditions, seed) in [(LinkConditions::good(), 3), (LinkConditions::average(), 4)] {
        let (owner, viewer) = (PeerId(0), PeerId(1));
        let mut net = MemoryNetwork::new(&[owner, viewer], conditions, seed);
        let mut a = StateSync::new(StateSyncConfig::default());
        let mut b = StateSync::new(StateSyncConfig::default());
        a.add_peer(viewer);
        b.add_peer(owner);
        b.accept(POINT);
        // The viewer starts counting ticks later: offsets are learned, not assumed.
        for _ in 0..17 {
            b.tick(&mut net.endpoint(viewer));
        }
        let mut reckoning = DeadReckoning::new(0.05, 30, 30);
        let mut shown = Snapshots::new();
        let (mut sent, mut errors) = (0, Vec::new());
        for i in 0..1200u64 {
            net.set_now(TICK * i as u32);
            let tick = a.stamp();
            let truth = path(tick);
            if let Some((at, value)) = reckoning.sample(0, tick, &truth, lerp, dist) {
                a.set_sample(POINT, 0, at, &value).unwrap();
                sent += 1;
            }
            a.tick(&mut net.endpoint(owner));
            b.tick(&mut net.endpoint(viewer));
            if let Some((value, at)) = b.get_with_tick(owner, POINT, 0) {
                shown.push(at, value);
            }
            if i < 120 {
                continue;
            }
            let render = b.render_tick(owner, 0.0).unwrap();
            let value = shown.sample(render, 30.0, lerp).unwrap();
            errors.push(
                dist(&value, &path(render.floor() as u64))
                    .min(dist(&value, &path(render.ceil() as u64))),
            );
        }
        let clock = b.clock(owner).unwrap();
        // Tick numbers differ by the viewer's head start plus the latency.
        assert!(clock.offset >= 17, "{clock:?}");
        errors.sort_by(f32::total_cmp);
        let (p50, p95) = (errors[errors.len() / 2], errors[errors.len() * 95 / 100]);
        println!("{conditions:?}: {sent} samples, error p50 {p50} p95 {p95}, {clock:?}");
        // Steady legs need a sample only every 30 ticks (plus the turns).
        assert!(sent < 1200 / 4, "{sent} samples sent");
        // Within the threshold on the straight; a turn is cut by up to two
        // ticks of motion (0.5) between the samples around it. Shown at the
        // wrong time (a wrong delay), the error would be ticks of motion.
        assert!(
            p50 <= 0.05,
            "median error {p50} ({conditions:?}, {clock:?})"
        );
        assert!(
            p95 < 0.5,
            "95th percentile error {p95} ({conditions:?}, {clock:?})"
        );
    }
}
