//! State streams against sending the whole state every tick: one peer owns 64
//! moving entities (position and velocity, f32 like a Bevy `Transform`), 30
//! ticks a second for 60 s, on the in-memory network under `good` and
//! `average` conditions. In the same run the same motion is sent three ways:
//! as one bincode datagram of every entity per tick (the naive way), through
//! `StateSync` with a new version every tick (deltas against acknowledged
//! versions), and through `StateSync` with `DeadReckoning` (a sample only when
//! the viewer's extrapolation drifts by more than 0.05 units). For the state
//! streams, the viewer shows each entity with `Snapshots` at its render tick,
//! 60 frames a second, and the error against the owner's true position and
//! the share of frames with a visible snap are reported. Two motions: "steady"
//! (a new velocity every ~2 s, bounces at the walls) and "wandering" (the
//! velocity turns a little every tick).
//!
//! Then the receiving side's CPU per tick with 1,000 replicated entities.
//!
//! `cargo run --release -p rtcplay_benches --bin state_bandwidth`

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rtcplay::netem::LinkConditions;
use rtcplay::state_sync::{DeadReckoning, Snapshots, StateSync, StateSyncConfig, Stream};
use rtcplay::transport::{MemoryNetwork, PeerId};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Mover {
    pos: [f32; 2],
    vel: [f32; 2],
}

fn lerp(a: &Mover, b: &Mover, t: f32) -> Mover {
    let mix = |x: f32, y: f32| x + (y - x) * t;
    Mover {
        pos: [mix(a.pos[0], b.pos[0]), mix(a.pos[1], b.pos[1])],
        vel: [mix(a.vel[0], b.vel[0]), mix(a.vel[1], b.vel[1])],
    }
}

fn distance(a: &Mover, b: &Mover) -> f32 {
    (a.pos[0] - b.pos[0]).hypot(a.pos[1] - b.pos[1])
}

const MOVERS: Stream<Mover> = Stream::new(1);
const ENTITIES: u64 = 64;
const HZ: u64 = 30;
const SECONDS: u64 = 60;
/// Largest error the owner lets receivers show, units (the arena is 1000 wide).
const THRESHOLD: f32 = 0.05;
/// A frame's motion off the true motion by more than this is a visible snap, units.
const SNAP: f32 = 1.0;
/// Ticks receivers extrapolate past the newest sample; the owner's longest silence.
const MAX_QUIET: u64 = 30;

#[derive(Clone, Copy, PartialEq)]
enum Motion {
    Steady,
    Wandering,
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    EveryTick,
    DeadReckoning,
}

/// The owner's entities, moved deterministically.
struct World {
    movers: Vec<Mover>,
    rng: u64,
}

impl World {
    fn new() -> Self {
        World {
            movers: (0..ENTITIES)
                .map(|i| Mover {
                    pos: [i as f32 * 10.0 - 320.0, 50.0],
                    vel: [((i % 7) as f32 - 3.0) * 20.0, ((i % 5) as f32 - 2.0) * 15.0],
                })
                .collect(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn step(&mut self, motion: Motion) {
        let dt = 1.0 / HZ as f32;
        for i in 0..self.movers.len() {
            let r = self.next();
            let m = &mut self.movers[i];
            match motion {
                Motion::Steady if r.is_multiple_of(2 * HZ) => {
                    let (a, b) = ((r >> 8) % 200, (r >> 24) % 200);
                    m.vel = [a as f32 - 100.0, b as f32 - 100.0];
                }
                Motion::Steady => {}
                Motion::Wandering => {
                    // Turn by up to ±0.1 rad a tick.
                    let turn = ((r >> 8) % 2001) as f32 / 10000.0 - 0.1;
                    let (s, c) = turn.sin_cos();
                    m.vel = [m.vel[0] * c - m.vel[1] * s, m.vel[0] * s + m.vel[1] * c];
                }
            }
            for axis in 0..2 {
                m.pos[axis] += m.vel[axis] * dt;
                if !(-500.0..=500.0).contains(&m.pos[axis]) {
                    m.vel[axis] = -m.vel[axis];
                    m.pos[axis] = m.pos[axis].clamp(-500.0, 500.0);
                }
            }
        }
    }
}

struct Outcome {
    bytes: u64,
    naive_bytes: u64,
    samples: u64,
    /// Error of each shown frame, in thousandths of a unit.
    error: Histogram<u64>,
    frames: u64,
    snaps: u64,
}

fn run(motion: Motion, way: Way, conditions: LinkConditions) -> Outcome {
    let (owner, viewer) = (PeerId(0), PeerId(1));
    let mut net = MemoryNetwork::new(&[owner, viewer], conditions, 11);
    let mut sides: Vec<StateSync> = [viewer, owner]
        .into_iter()
        .map(|other| {
            let mut s = StateSync::new(StateSyncConfig::default());
            s.accept(MOVERS);
            s.add_peer(other);
            s
        })
        .collect();
    let mut world = World::new();
    let mut reckoning = DeadReckoning::new(THRESHOLD, MAX_QUIET, MAX_QUIET);
    let mut shown: Vec<Snapshots<Mover>> = vec![Snapshots::new(); ENTITIES as usize];
    // The owner's true positions by its tick, to compare with what is shown.
    let mut truth: Vec<Vec<Mover>> = Vec::new();
    let mut last_shown: Vec<Option<(f64, Mover)>> = vec![None; ENTITIES as usize];
    let mut out = Outcome {
        bytes: 0,
        naive_bytes: 0,
        samples: 0,
        error: Histogram::new(3).expect("histogram"),
        frames: 0,
        snaps: 0,
    };
    for tick in 0..HZ * SECONDS {
        world.step(motion);
        let stamp = sides[0].stamp();
        while truth.len() <= stamp as usize {
            truth.push(world.movers.clone());
        }
        for (i, m) in world.movers.iter().enumerate() {
            let sample = match way {
                Way::EveryTick => Some((stamp, *m)),
                Way::DeadReckoning => reckoning.sample(i as u64, stamp, m, lerp, distance),
            };
            if let Some((at, m)) = sample {
                sides[0].set_sample(MOVERS, i as u64, at, &m).expect("fits");
                out.samples += 1;
            }
        }
        // The naive way: every entity, every tick, in one datagram (3 bytes of
        // header as a minimal protocol would have).
        let all: Vec<(u64, Mover)> = world
            .movers
            .iter()
            .copied()
            .enumerate()
            .map(|(i, m)| (i as u64, m))
            .collect();
        out.naive_bytes += 3 + bincode::serde::encode_to_vec(&all, bincode::config::standard())
            .expect("encodes")
            .len() as u64;
        net.set_now(Duration::from_millis(tick * 1000 / HZ));
        sides[0].tick(&mut net.endpoint(owner));
        sides[1].tick(&mut net.endpoint(viewer));
        for (i, snapshots) in shown.iter_mut().enumerate() {
            if let Some((m, at)) = sides[1].get_with_tick(owner, MOVERS, i as u64) {
                snapshots.push(at, m);
            }
        }
        // Two frames per tick (60 fps), after the first 2 s.
        if tick < 2 * HZ {
            continue;
        }
        for fraction in [0.0, 0.5] {
            let Some(render) = sides[1].render_tick(owner, fraction) else {
                continue;
            };
            if render < 1.0 {
                continue;
            }
            let (before, after) = (render.floor() as usize, render.ceil() as usize);
            let t = (render - render.floor()) as f32;
            for (i, snapshots) in shown.iter().enumerate() {
                let Some(seen) = snapshots.sample(render, MAX_QUIET as f64, lerp) else {
                    continue;
                };
                let real = lerp(&truth[before][i], &truth[after][i], t);
                out.error
                    .saturating_record((distance(&seen, &real) * 1000.0) as u64);
                out.frames += 1;
                if let Some((then, previous)) = last_shown[i] {
                    let (b0, a0) = (then.floor() as usize, then.ceil() as usize);
                    let real_then =
                        lerp(&truth[b0][i], &truth[a0][i], (then - then.floor()) as f32);
                    let moved = [seen.pos[0] - previous.pos[0], seen.pos[1] - previous.pos[1]];
                    let real_moved = [
                        real.pos[0] - real_then.pos[0],
                        real.pos[1] - real_then.pos[1],
                    ];
                    if (moved[0] - real_moved[0]).hypot(moved[1] - real_moved[1]) > SNAP {
                        out.snaps += 1;
                    }
                }
                last_shown[i] = Some((render, seen));
            }
        }
    }
    out.bytes = sides[0].stats().bytes_sent;
    out
}

/// The viewer's work per tick with `n` entities arriving every tick: receive,
/// decode, keep samples, and sample each entity for a frame.
fn receiver_cpu(n: u64) -> Histogram<u64> {
    let (owner, viewer) = (PeerId(0), PeerId(1));
    let mut net = MemoryNetwork::new(&[owner, viewer], LinkConditions::perfect(), 1);
    let config = StateSyncConfig::default();
    let mut a = StateSync::new(config.clone());
    let mut b = StateSync::new(config);
    a.add_peer(viewer);
    b.add_peer(owner);
    b.accept(MOVERS);
    let mut shown: Vec<Snapshots<Mover>> = vec![Snapshots::new(); n as usize];
    let mut micros = Histogram::<u64>::new(3).expect("histogram");
    for tick in 0..600u64 {
        for i in 0..n {
            let t = tick as f32 / HZ as f32;
            let m = Mover {
                pos: [i as f32 + t * 3.0, t * 2.0],
                vel: [3.0, 2.0],
            };
            a.set_sample(MOVERS, i, a.stamp(), &m).expect("fits");
        }
        net.set_now(Duration::from_millis(tick * 1000 / HZ));
        a.tick(&mut net.endpoint(owner));
        let started = Instant::now();
        b.tick(&mut net.endpoint(viewer));
        let render = b.render_tick(owner, 0.5);
        for (i, snapshots) in shown.iter_mut().enumerate() {
            if let Some((m, at)) = b.get_with_tick(owner, MOVERS, i as u64) {
                snapshots.push(at, m);
            }
            if let Some(render) = render {
                std::hint::black_box(snapshots.sample(render, 30.0, lerp));
            }
        }
        if tick >= 60 {
            micros.saturating_record(started.elapsed().as_micros() as u64);
        }
    }
    micros
}

fn main() {
    println!(
        "{ENTITIES} entities at {HZ} Hz for {SECONDS} s, one remote peer; error in units \
         (arena 1000 wide), snap: a frame's motion off by > {SNAP}"
    );
    println!(
        "| motion | conditions | way | per remote peer | vs whole state | samples/s | error p50 | p99 | max | snaps |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for motion in [Motion::Steady, Motion::Wandering] {
        for (name, conditions) in [
            ("good", LinkConditions::good()),
            ("average", LinkConditions::average()),
        ] {
            let mut naive_printed = false;
            for way in [Way::EveryTick, Way::DeadReckoning] {
                let o = run(motion, way, conditions);
                let per_s = |bytes: u64| bytes as f64 / SECONDS as f64 / 1000.0;
                let motion_name = match motion {
                    Motion::Steady => "steady",
                    Motion::Wandering => "wandering",
                };
                if !naive_printed {
                    println!(
                        "| {motion_name} | {name} | whole state every tick (bincode) | {:.2} kB/s | 1× | {} | 0 | 0 | 0 | 0 |",
                        per_s(o.naive_bytes),
                        ENTITIES * HZ
                    );
                    naive_printed = true;
                }
                let way_name = match way {
                    Way::EveryTick => "state streams, every tick",
                    Way::DeadReckoning => "state streams, dead reckoning",
                };
                let units = |v: u64| v as f64 / 1000.0;
                println!(
                    "| {motion_name} | {name} | {way_name} | {:.2} kB/s | {:.2}× smaller | {:.0} | {:.3} | {:.3} | {:.2} | {:.3} % |",
                    per_s(o.bytes),
                    o.naive_bytes as f64 / o.bytes as f64,
                    o.samples as f64 / SECONDS as f64,
                    units(o.error.value_at_quantile(0.5)),
                    units(o.error.value_at_quantile(0.99)),
                    units(o.error.max()),
                    o.snaps as f64 * 100.0 / o.frames.max(1) as f64,
                );
            }
        }
    }
    for n in [100, 1000] {
        let h = receiver_cpu(n);
        println!(
            "receiver CPU per tick, {n} entities updated every tick: p50 {} µs, p99 {} µs",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
    }
}
