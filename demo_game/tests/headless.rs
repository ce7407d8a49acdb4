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

#[test]
fn a_spectator_joining_mid_match_ends_with_the_players_state() {
    let common = [
        "--headless",
        "--players",
        "2",
        "--frames",
        "1200",
        "--room",
        "watched",
    ];
    let mut host_args = vec!["--bot"];
    host_args.extend(common);
    let (mut host, url) = common::host(&host_args);
    let mut guest_args = vec!["--bot", "--signal", url.as_str()];
    guest_args.extend(common);
    let guest = common::Demo::start(&guest_args);
    // Join once the match has been running for a second or so.
    host.wait_line("match running", std::time::Duration::from_secs(60));
    host.wait_line("stats: frame", std::time::Duration::from_secs(30));
    let mut watcher_args = vec!["--spectate", "--signal", url.as_str()];
    watcher_args.extend(common);
    let watcher = common::Demo::start(&watcher_args);
    let mut sums = Vec::new();
    let mut outputs = Vec::new();
    for demo in [host, guest, watcher] {
        let (status, stdout, stderr) = demo.finish(std::time::Duration::from_secs(120));
        assert!(
            status.success(),
            "exit {status}; stdout:\n{}\nstderr:\n{stderr}",
            stdout.join("\n")
        );
        sums.push(common::checksum(&stdout));
        outputs.push(stdout);
    }
    assert_eq!(sums[0], sums[1], "players differ");
    assert_eq!(sums[0], sums[2], "the spectator saw another match");
    assert!(
        outputs[0]
            .iter()
            .any(|l| l.contains("spectator") && l.contains("joined")),
        "the host never admitted the spectator: {:?}",
        outputs[0]
    );
    assert!(outputs[2].iter().any(|l| l.contains("replaying the match")));
}
