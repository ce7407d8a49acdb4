//! Bad input to `rtcplay-demo`: a clear message and a non-zero exit, never a panic.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{host, Demo};

const LIMIT: Duration = Duration::from_secs(60);

fn assert_clean_failure(stderr: &str, needle: &str) {
    assert!(
        stderr.contains(needle),
        "stderr lacks {needle:?}:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    for (args, needle) in [
        (&["--players", "9"][..], "--players"),
        (&["--netem", "bogus"][..], "unknown netem preset `bogus`"),
        (&["--frobnicate"][..], "unexpected argument"),
        (
            &["--signal", "http://x"][..],
            "expected a ws:// or wss:// URL",
        ),
        (
            &["--ice-server", "turn:t.example:3478"][..],
            "needs --ice-username",
        ),
        // A spectator needs a server to find the match on.
        (&["--spectate"][..], "--signal <URL>"),
    ] {
        let (status, _, stderr) = Demo::start(args).finish(LIMIT);
        assert!(!status.success(), "{args:?} succeeded");
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert_clean_failure(&stderr, needle);
    }
}

#[test]
fn unreachable_signaling_server_is_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let (status, _, stderr) = Demo::start(&["--signal", &url, "--headless"]).finish(LIMIT);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_clean_failure(&stderr, "could not start the match: signaling failed");
}

#[test]
fn a_full_room_is_refused_and_the_match_goes_on() {
    let common = [
        "--headless",
        "--players",
        "2",
        "--frames",
        "900",
        "--room",
        "full",
    ];
    let (mut a, url) = host(&common);
    let mut args = vec!["--signal", url.as_str()];
    args.extend_from_slice(&common);
    let b = Demo::start(&args);
    a.wait_line("match running", LIMIT);
    let (status, _, stderr) = Demo::start(&args).finish(LIMIT);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_clean_failure(&stderr, "is full");
    let (sa, _, ea) = a.finish(Duration::from_secs(90));
    let (sb, _, eb) = b.finish(Duration::from_secs(90));
    assert!(sa.success() && sb.success(), "{ea}\n{eb}");
}

#[test]
fn a_peer_leaving_mid_round_ends_the_match_with_a_message() {
    let common = ["--headless", "--players", "2", "--room", "leave"];
    let (mut a, url) = host(&common);
    let mut args = vec!["--signal", url.as_str()];
    args.extend_from_slice(&common);
    let mut b = Demo::start(&args);
    a.wait_line("match running", LIMIT);
    b.wait_line("match running", LIMIT);
    b.child.kill().unwrap();
    let (status, _, stderr) = a.finish(LIMIT);
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert_clean_failure(&stderr, "left the match");
    let _ = b.finish(LIMIT);
}
