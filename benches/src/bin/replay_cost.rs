//! What recording a replay costs a P2P session: the same mesh (2 or 8 players,
//! `benches/src/session_mesh.rs`) ticked TICKS times with and without every
//! session recording. Prints wall time per tick for both; for a figure immune
//! to other load on the machine, run each variant under `perf stat -e
//! instructions` (the commands are in BENCHMARKS.md, "Replays").
//!
//! `cargo run --release -p rtcplay_benches --bin replay_cost -- [plain|recording|both] [PLAYERS] [TICKS]`

use std::time::Instant;

use rtcplay_benches::session_mesh::Mesh;

fn run(players: usize, recording: bool, ticks: u32) -> f64 {
    let mut mesh = Mesh::new(players, recording);
    let start = Instant::now();
    let mut work = 0;
    for _ in 0..ticks {
        work += mesh.tick();
    }
    let per_tick = start.elapsed().as_secs_f64() * 1e6 / f64::from(ticks);
    assert!(work > 0);
    assert_eq!(recording, mesh.recorded_bytes > 0);
    per_tick
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map_or("both", String::as_str);
    let players: usize = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(2);
    let ticks: u32 = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(200_000);
    match variant {
        "plain" => println!("plain: {:.3} µs per tick", run(players, false, ticks)),
        "recording" => println!("recording: {:.3} µs per tick", run(players, true, ticks)),
        _ => {
            let plain = run(players, false, ticks);
            let recording = run(players, true, ticks);
            println!(
                "{players} players, {ticks} ticks: plain {plain:.3} µs, recording {recording:.3} µs per tick ({:+.1} %)",
                (recording / plain - 1.0) * 100.0
            );
        }
    }
}
