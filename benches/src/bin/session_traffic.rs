//! Side-by-side wire economy: rtcplay vs ggrs 0.13 in the same run.
//!
//! `cargo run --release -p rtcplay_benches --bin session_traffic -- [seconds]`

use rtcplay::netem::LinkConditions;
use rtcplay_benches::session_traffic::{run_ggrs, run_rtcplay, TrafficReport};

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let conditions = LinkConditions::with(50, 0, 0.0);
    println!(
        "2 players, 60 Hz, 50 ms one-way, 8-byte inputs changing every ~10 frames, {seconds} s each, run concurrently"
    );
    let ggrs = std::thread::spawn(move || run_ggrs(conditions, seconds));
    let rtc = run_rtcplay(conditions, seconds);
    let ggrs = ggrs.join().expect("ggrs run");
    println!("| session | datagrams/s per peer | payload B/s per peer | B/datagram | rollbacks/s | frames |");
    println!("|---|---|---|---|---|---|");
    for (name, r) in [("rtcplay", rtc), ("ggrs 0.13 + bincode 2", ggrs)] {
        print_row(name, &r);
    }
}

fn print_row(name: &str, r: &TrafficReport) {
    println!(
        "| {name} | {:.1} | {:.0} | {:.1} | {:.2} | {} |",
        r.datagrams_per_sec, r.bytes_per_sec, r.bytes_per_datagram, r.rollbacks_per_sec, r.frames
    );
}
