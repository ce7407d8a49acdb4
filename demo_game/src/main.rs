//! The rtcplay sample game (placeholder until the demo lands).

fn main() {
    println!(
        "rtcplay-demo: the sample arena game is not built yet; see README.md for what works today."
    );
}
