//! Side-by-side wire economy: rtcplay vs ggrs 0.13 in the same run, for 2, 4 and 8
//! players, with and without loss.
//!
//! `cargo run --release -p rtcplay_benches --bin session_traffic -- [seconds]`

use rtcplay::netem::LinkConditions;
use rtcplay_benches::session_traffic::{run_ggrs, run_rtcplay, TrafficReport};

/// One scenario: players, one-way latency, jitter, loss.
struct Scenario {
    players: usize,
    latency_ms: u64,
    jitter_ms: u64,
    loss: f64,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        players: 2,
        latency_ms: 50,
        jitter_ms: 0,
        loss: 0.0,
    },
    Scenario {
        players: 2,
        latency_ms: 30,
        jitter_ms: 0,
        loss: 0.0,
    },
    Scenario {
        players: 4,
        latency_ms: 30,
        jitter_ms: 0,
        loss: 0.0,
    },
    Scenario {
        players: 8,
        latency_ms: 30,
        jitter_ms: 0,
        loss: 0.0,
    },
    Scenario {
        players: 4,
        latency_ms: 30,
        jitter_ms: 10,
        loss: 0.05,
    },
    Scenario {
        players: 8,
        latency_ms: 30,
        jitter_ms: 10,
        loss: 0.05,
    },
];

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    println!(
        "60 Hz, 8-byte inputs changing every ~10 frames, input delay 2, {seconds} s after sync; \
         rtcplay and ggrs run concurrently; figures are what one peer sends to all others"
    );
    println!("| players | one way | jitter | loss | session | datagrams/s per peer | payload B/s per peer | B/datagram | rollbacks/s | frames |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for scenario in &SCENARIOS {
        let conditions =
            LinkConditions::with(scenario.latency_ms, scenario.jitter_ms, scenario.loss);
        let players = scenario.players;
        let ggrs = std::thread::spawn(move || run_ggrs(players, conditions, seconds));
        let rtc = run_rtcplay(players, conditions, seconds);
        let ggrs = ggrs.join().expect("ggrs run");
        for (name, r) in [("rtcplay", rtc), ("ggrs 0.13 + bincode 2", ggrs)] {
            print_row(scenario, name, &r);
        }
    }
}

fn print_row(s: &Scenario, name: &str, r: &TrafficReport) {
    println!(
        "| {} | {} ms | {} ms | {:.0} % | {name} | {:.1} | {:.0} | {:.1} | {:.2} | {} |",
        s.players,
        s.latency_ms,
        s.jitter_ms,
        s.loss * 100.0,
        r.datagrams_per_sec,
        r.bytes_per_sec,
        r.bytes_per_datagram,
        r.rollbacks_per_sec,
        r.frames
    );
}
