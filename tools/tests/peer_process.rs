//! `rtcplay-peer` as its own process: a killed process (no goodbye) is noticed by
//! silence alone, within the socket's disconnect bound. Runs with the other WebRTC
//! tests, one at a time (nextest group `webrtc`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtcplay::transport::native::Socket;
use rtcplay::transport::{ConnectionState, DisconnectReason, SocketConfig, SocketEvent};
use rtcplay_testkit::events::expect_event;
use rtcplay_testkit::process::KillOnDrop;
use rtcplay_testkit::server::LocalServer;

/// Generous bound for anything that should take milliseconds on loopback.
const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn killed_process_is_reported_disconnected_within_the_bound() {
    let server = LocalServer::start();
    let bound = Duration::from_millis(1500);
    let mut local = {
        let mut config = SocketConfig::new(server.url.clone(), "kill", 2);
        config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
        config.restart_after = bound;
        Socket::new(config).expect("socket")
    };
    let child = Command::new(env!("CARGO_BIN_EXE_rtcplay-peer"))
        .args([
            "--url",
            &server.url,
            "--room",
            "kill",
            "--players",
            "2",
            "--loopback",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rtcplay-peer");
    let mut child = KillOnDrop(child);
    expect_event(&mut local, PATIENCE, "AllConnected", |e| {
        *e == SocketEvent::AllConnected
    });
    let remote = local.connected_peers()[0];
    // The child echoes: prove the link works across processes first.
    let deadline = Instant::now() + PATIENCE;
    loop {
        local.send_unreliable(remote, b"echo?").expect("send");
        if let Some(message) = local.wait_message(Duration::from_millis(50)) {
            assert_eq!((message.from, &message.data[..]), (remote, &b"echo?"[..]));
            break;
        }
        assert!(Instant::now() < deadline, "no echo from the child process");
    }
    // kill -9: no goodbye, no close; only silence tells.
    let started = Instant::now();
    child.0.kill().expect("kill -9 the child");
    let event = expect_event(
        &mut local,
        bound + Duration::from_secs(3),
        "PeerDisconnected",
        |e| matches!(e, SocketEvent::PeerDisconnected { .. }),
    );
    let elapsed = started.elapsed();
    assert_eq!(
        event,
        SocketEvent::PeerDisconnected {
            peer: remote,
            reason: DisconnectReason::Left
        }
    );
    // The child's signaling connection closed with it, so its silent link is not
    // restarted: given up at the silence bound, not by luck (the last thing heard
    // from the child is at most a ping interval older than the kill).
    assert!(elapsed >= bound / 2, "{elapsed:?}");
    assert_eq!(
        local.stats(remote).map(|s| s.state),
        Some(ConnectionState::Disconnected)
    );
}
