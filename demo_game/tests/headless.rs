//! Headless matches between separate `rtcplay-demo` processes with bots, over
//! real WebRTC on 127.0.0.1 through a signaling server embedded in the first one.

#![allow(clippy::unwrap_used)]

mod common;

use common::play;

/// Rollbacks each process reports in its summary line.
fn rollbacks(outputs: &[Vec<String>]) -> Vec<u64> {
    outputs
        .iter()
        .map(|out| {
            let line = out
                .iter()
                .find(|l| l.starts_with("summary:"))
                .unwrap_or_else(|| panic!("no summary line: {out:?}"));
            line.split("rollbacks ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unparsable summary: {line}"))
        })
        .collect()
}

#[test]
fn two_processes_agree_on_the_final_state() {
    let outputs = play(2, 600, None);
    assert!(outputs[0].iter().any(|l| l.contains("match running")));
}

#[test]
fn two_processes_agree_through_the_conditioner() {
    let outputs = play(2, 600, Some("average"));
    let rb = rollbacks(&outputs);
    assert!(
        rb.iter().all(|n| *n > 0),
        "no rollbacks under `average`: {rb:?}"
    );
}

#[test]
fn four_processes_agree_on_the_final_state() {
    play(4, 600, None);
}

#[test]
fn four_processes_agree_through_the_conditioner() {
    let outputs = play(4, 600, Some("good"));
    let rb = rollbacks(&outputs);
    assert!(
        rb.iter().all(|n| *n > 0),
        "no rollbacks under `good`: {rb:?}"
    );
}

#[test]
fn synctest_runs_clean_and_prints_a_checksum() {
    let (status, stdout, stderr) =
        common::Demo::start(&["--synctest", "--players", "3", "--frames", "300"])
            .finish(std::time::Duration::from_secs(60));
    assert!(status.success(), "{stdout:?} {stderr}");
    common::checksum(&stdout);
}
