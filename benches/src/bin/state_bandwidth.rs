//! Bandwidth of state streams against sending the whole state every tick: one
//! peer owns 64 moving entities (position and velocity, f32 like a Bevy
//! `Transform`), 30 ticks a second for 10 s, under `good` conditions on the
//! in-memory network. The same motion is sent both ways in the same run:
//! through `StateSync` (one value per entity, deltas against acknowledged
//! versions) and as one bincode datagram of every entity per tick.
//!
//! `cargo run --release -p rtcplay_benches --bin state_bandwidth`

use std::time::Duration;

use rtcplay::netem::LinkConditions;
use rtcplay::state_sync::{StateSync, StateSyncConfig, Stream};
use rtcplay::transport::{MemoryNetwork, PeerId};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Mover {
    pos: [f32; 2],
    vel: [f32; 2],
}

const MOVERS: Stream<Mover> = Stream::new(1);
const ENTITIES: u64 = 64;
const HZ: u64 = 30;
const SECONDS: u64 = 10;

fn main() {
    let (owner, viewer) = (PeerId(0), PeerId(1));
    let mut net = MemoryNetwork::new(&[owner, viewer], LinkConditions::good(), 11);
    let mut sides: Vec<StateSync> = [viewer, owner]
        .into_iter()
        .map(|other| {
            let mut s = StateSync::new(StateSyncConfig::default());
            s.accept(MOVERS);
            s.add_peer(other);
            s
        })
        .collect();
    // Deterministic motion: a velocity change every ~2 s per entity, bounces at the walls.
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut movers: Vec<Mover> = (0..ENTITIES)
        .map(|i| Mover {
            pos: [i as f32 * 10.0, 50.0],
            vel: [((i % 7) as f32 - 3.0) * 20.0, ((i % 5) as f32 - 2.0) * 15.0],
        })
        .collect();
    let dt = 1.0 / HZ as f32;
    let mut naive_bytes = 0u64;
    let mut worst_error = 0f32;
    for tick in 0..HZ * SECONDS {
        for m in &mut movers {
            if next() % (2 * HZ) == 0 {
                m.vel = [(next() % 200) as f32 - 100.0, (next() % 200) as f32 - 100.0];
            }
            for axis in 0..2 {
                m.pos[axis] += m.vel[axis] * dt;
                if !(-500.0..=500.0).contains(&m.pos[axis]) {
                    m.vel[axis] = -m.vel[axis];
                    m.pos[axis] = m.pos[axis].clamp(-500.0, 500.0);
                }
            }
        }
        for (i, m) in movers.iter().enumerate() {
            sides[0].set(MOVERS, i as u64, m).expect("fits");
        }
        // The naive way: every entity, every tick, in one datagram (3 bytes of
        // header as a minimal protocol would have).
        let all: Vec<(u64, Mover)> = movers
            .iter()
            .copied()
            .enumerate()
            .map(|(i, m)| (i as u64, m))
            .collect();
        naive_bytes += 3 + bincode::serde::encode_to_vec(&all, bincode::config::standard())
            .expect("encodes")
            .len() as u64;
        net.set_now(Duration::from_millis(tick * 1000 / HZ));
        sides[0].tick(&mut net.endpoint(owner));
        sides[1].tick(&mut net.endpoint(viewer));
        if tick > HZ {
            for (i, m) in movers.iter().enumerate() {
                if let Some(seen) = sides[1].get(owner, MOVERS, i as u64) {
                    let error = (seen.pos[0] - m.pos[0]).hypot(seen.pos[1] - m.pos[1]);
                    worst_error = worst_error.max(error);
                }
            }
        }
    }
    let stats = sides[0].stats();
    let per_s = |bytes: u64| bytes as f64 / SECONDS as f64 / 1000.0;
    println!("{ENTITIES} entities at {HZ} Hz for {SECONDS} s, good conditions, one remote peer:");
    println!(
        "  state streams: {:.2} kB/s ({} datagrams, {} whole values, {} deltas)",
        per_s(stats.bytes_sent),
        stats.datagrams_sent,
        stats.full_values,
        stats.delta_values
    );
    println!(
        "  whole state every tick (bincode): {:.2} kB/s",
        per_s(naive_bytes)
    );
    println!(
        "  ratio: {:.2}x smaller; viewer's worst position lag {worst_error:.1} units",
        naive_bytes as f64 / stats.bytes_sent as f64
    );
}
