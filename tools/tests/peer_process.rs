//! `rtcplay-peer` as its own process: a killed process (no goodbye) is noticed by
//! silence alone, within the socket's disconnect bound. Runs with the other WebRTC
//! tests, one at a time (nextest group `webrtc`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtcplay::transport::native::Socket;
use rtcplay::transport::{ConnectionState, DisconnectReason, SocketConfig, SocketEvent};
use rtcplay_testkit::chromium::BrowserPage;
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
    echoes(&mut local, remote);
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

/// An `rtcplay-peer` child process whose stdout lines arrive on a channel.
struct PeerProcess {
    child: KillOnDrop,
    lines: std::sync::mpsc::Receiver<String>,
}

impl PeerProcess {
    fn spawn(url: &str, room: &str, rejoin_token: Option<&str>) -> PeerProcess {
        let mut args = vec!["--url", url, "--room", room, "--players", "2", "--loopback"];
        if let Some(token) = rejoin_token {
            args.extend(["--rejoin-token", token]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_rtcplay-peer"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rtcplay-peer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        PeerProcess {
            child: KillOnDrop(child),
            lines,
        }
    }

    /// The first line starting with `prefix`, panicking with what came instead.
    fn wait_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no `{prefix}` line; got {seen:?}"),
            }
        }
    }
}

/// Echo round trip over the unreliable channel.
fn echoes(local: &mut Socket, remote: rtcplay::transport::PeerId) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        local.send_unreliable(remote, b"echo?").expect("send");
        if let Some(message) = local.wait_message(Duration::from_millis(50)) {
            assert_eq!((message.from, &message.data[..]), (remote, &b"echo?"[..]));
            return;
        }
        assert!(Instant::now() < deadline, "no echo from the child process");
    }
}

#[test]
fn a_killed_player_restarted_with_its_rejoin_token_takes_its_seat_back() {
    let server = LocalServer::start();
    let mut local = {
        let mut config = SocketConfig::new(server.url.clone(), "rejoin", 2);
        config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
        config.restart_after = Duration::from_secs(1);
        Socket::new(config).expect("socket")
    };
    let first = PeerProcess::spawn(&server.url, "rejoin", None);
    let joined = first.wait_line("joined ");
    let token_line = first.wait_line("rejoin-token ");
    let token = token_line["rejoin-token ".len()..].to_owned();
    assert_eq!(token.len(), 32, "{token_line}");
    expect_event(&mut local, PATIENCE, "AllConnected", |e| {
        *e == SocketEvent::AllConnected
    });
    let remote = local.connected_peers()[0];
    echoes(&mut local, remote);

    // kill -9, and wait until the survivor has given the player up.
    let PeerProcess { mut child, .. } = first;
    child.0.kill().expect("kill -9 the child");
    let gone = expect_event(&mut local, PATIENCE, "PeerDisconnected", |e| {
        matches!(e, SocketEvent::PeerDisconnected { .. })
    });
    assert_eq!(
        gone,
        SocketEvent::PeerDisconnected {
            peer: remote,
            reason: DisconnectReason::Left
        }
    );

    // A wrong token is refused with a clear error.
    let stranger = PeerProcess::spawn(
        &server.url,
        "rejoin",
        Some("0123456789abcdef0123456789abcdef"),
    );
    let refused = stranger.wait_line("error ");
    assert!(refused.contains("rejoin_refused"), "{refused}");

    // The restarted process takes the seat back: same id, and the survivor
    // connects to it again.
    let started = Instant::now();
    let second = PeerProcess::spawn(&server.url, "rejoin", Some(&token));
    assert_eq!(second.wait_line("joined "), joined, "the same seat");
    expect_event(&mut local, PATIENCE, "PeerReconnecting", |e| {
        *e == SocketEvent::PeerReconnecting(remote)
    });
    expect_event(&mut local, PATIENCE, "PeerReconnected", |e| {
        *e == SocketEvent::PeerReconnected(remote)
    });
    second.wait_line("all-connected");
    println!(
        "rejoined: linked again {:?} after the restart",
        started.elapsed()
    );
    assert_eq!(local.connected_peers(), vec![remote]);
    echoes(&mut local, remote);

    // A copy of the token cannot steal the seat while its player is connected.
    let thief = PeerProcess::spawn(&server.url, "rejoin", Some(&token));
    let refused = thief.wait_line("error ");
    assert!(refused.contains("seat_taken"), "{refused}");
    echoes(&mut local, remote);
}

/// Wait until `ready` holds, panicking with `what` (and the page's console).
fn wait_until(page: &BrowserPage, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "not {what} after {PATIENCE:?}\n{}",
            page.console()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The JavaScript client of docs/signaling.md connects again to a player that took
/// its seat back: as the higher id it offers on `peer_rejoined`; as the lower id it
/// answers the rejoiner's offer on a fresh connection (rules 9 and 11 of
/// docs/transport.md).
fn docs_browser_client_reconnects_a_rejoined_player(page_joins_first: bool) {
    let server = LocalServer::start();
    let room = if page_joins_first {
        "rejoin-a"
    } else {
        "rejoin-b"
    };
    let joined = |n: usize| server.stats().peers >= n;
    let mut page = None;
    if page_joins_first {
        page = Some(BrowserPage::open(&server.url, room, 2, "", ""));
        let p = page.as_ref().expect("page");
        wait_until(p, "joined", || joined(1));
    }
    let first = PeerProcess::spawn(&server.url, room, None);
    let child_id: u32 = first.wait_line("joined ")["joined ".len()..]
        .parse()
        .expect("an id");
    let token = first.wait_line("rejoin-token ")["rejoin-token ".len()..].to_owned();
    if !page_joins_first {
        page = Some(BrowserPage::open(&server.url, room, 2, "", ""));
    }
    let page = page.expect("page");
    first.wait_line("all-connected");
    let connected = format!("peer {child_id} connected");
    wait_until(&page, "connected", || {
        page.console_lines(&connected).len() == 1
    });

    // kill -9 and restart with the token: the page connects to the new process.
    let PeerProcess { mut child, .. } = first;
    child.0.kill().expect("kill -9 the child");
    wait_until(&page, "the seat held", || server.stats().peers == 1);
    let second = PeerProcess::spawn(&server.url, room, Some(&token));
    assert_eq!(second.wait_line("joined "), format!("joined {child_id}"));
    second.wait_line("all-connected");
    wait_until(&page, "connected again", || {
        page.console_lines(&connected).len() == 2
    });
}

#[test]
fn docs_browser_client_offers_to_a_rejoined_player_with_a_lower_id() {
    docs_browser_client_reconnects_a_rejoined_player(false);
}

#[test]
fn docs_browser_client_answers_a_rejoined_player_with_a_higher_id() {
    docs_browser_client_reconnects_a_rejoined_player(true);
}

#[test]
fn a_rejoin_after_the_seat_grace_period_is_refused() {
    let server = LocalServer::with_config(rtcplay::signaling::ServerConfig {
        seat_grace: Duration::from_millis(300),
        ..rtcplay::signaling::ServerConfig::default()
    });
    let mut local = {
        let mut config = SocketConfig::new(server.url.clone(), "stale", 2);
        config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
        Socket::new(config).expect("socket")
    };
    let first = PeerProcess::spawn(&server.url, "stale", None);
    let token = first.wait_line("rejoin-token ")["rejoin-token ".len()..].to_owned();
    expect_event(&mut local, PATIENCE, "AllConnected", |e| {
        *e == SocketEvent::AllConnected
    });
    let PeerProcess { mut child, .. } = first;
    child.0.kill().expect("kill -9 the child");
    let lost = Instant::now();
    while server.stats().peers > 1 {
        assert!(
            lost.elapsed() < PATIENCE,
            "the server never saw the child go"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let late = PeerProcess::spawn(&server.url, "stale", Some(&token));
    let refused = late.wait_line("error ");
    assert!(
        refused.contains("rejoin_refused") && refused.contains("grace period"),
        "{refused}"
    );
}
