//! The web backend (`transport::web`, the `web` feature on wasm32) in a real
//! headless Chromium: the test page (`testkit/web_probe`, built by
//! `./.ci/build-web`) joins rooms with native sockets on a real signaling server on
//! 127.0.0.1. The native side checks the contract from outside (connects, both
//! channels both ways, stats, a goodbye on close); the page's console tells what
//! the browser saw (events, messages from other tabs). These tests run one at a
//! time with the other WebRTC tests (nextest group `webrtc`).

#![cfg(feature = "native")]

use std::time::{Duration, Instant};

use rtcplay::transport::native::Socket;
use rtcplay::transport::{Channel, DisconnectReason, PeerId, SocketConfig, SocketEvent};

use rtcplay_testkit::chromium::BrowserPage;
use rtcplay_testkit::events::try_expect_event;
use rtcplay_testkit::server::LocalServer;
use rtcplay_testkit::turn::{Coturn, TurnAuth};

/// Generous bound for anything that takes milliseconds on loopback (a cold Chromium
/// start and the wasm module's compilation included).
const PATIENCE: Duration = Duration::from_secs(30);

fn native_config(server: &LocalServer, room: &str, players: u8) -> SocketConfig {
    let mut config = SocketConfig::new(&server.url, room, players);
    config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    config
}

fn console(pages: &[&BrowserPage]) -> String {
    pages.iter().map(|page| page.console()).collect()
}

/// Wait until `count` clients are members of rooms.
fn wait_for_members(server: &LocalServer, count: usize, pages: &[&BrowserPage]) {
    let deadline = Instant::now() + PATIENCE;
    while server.stats().peers < count {
        assert!(
            Instant::now() < deadline,
            "{count} members never joined\n{}",
            console(pages)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Events until `want` matches; panics with the pages' consoles otherwise.
fn wait_for(
    socket: &mut Socket,
    pages: &[&BrowserPage],
    what: &str,
    want: impl FnMut(&SocketEvent) -> bool,
) -> SocketEvent {
    try_expect_event(socket, PATIENCE, what, want)
        .unwrap_or_else(|e| panic!("{e}\n{}", console(pages)))
}

/// The next game message that satisfies `want` (others are skipped).
fn wait_message(
    socket: &mut Socket,
    pages: &[&BrowserPage],
    what: &str,
    mut want: impl FnMut(PeerId, Channel, &[u8]) -> bool,
) -> (PeerId, Channel, Vec<u8>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = socket
            .wait_message(left)
            .unwrap_or_else(|| panic!("no {what} within {PATIENCE:?}\n{}", console(pages)));
        if want(message.from, message.channel, &message.data) {
            return (message.from, message.channel, message.data);
        }
    }
}

/// Ask the page for its stats of the link to us (`stats?`) until `done` accepts
/// them; their `Debug` text.
fn page_stats_until(
    socket: &mut Socket,
    browser: PeerId,
    pages: &[&BrowserPage],
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        socket.send_reliable(browser, b"stats?").expect("ask stats");
        let (_, _, stats) = wait_message(socket, pages, "the page's stats", |_, _, d| {
            d.starts_with(b"stats: ")
        });
        let stats = String::from_utf8_lossy(&stats).into_owned();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "incomplete stats: {stats}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until the page's console has a line containing `needle`.
fn wait_console(page: &BrowserPage, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(line) = page.console_lines(needle).pop() {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "the page never logged {needle:?}\n{}",
            page.console()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One page and one native socket in a 2-player room; `native_offers` picks who
/// joins second (the higher id sends the offer).
fn web_and_native_connect(native_offers: bool) {
    let server = LocalServer::start();
    let room = if native_offers {
        "native-offers"
    } else {
        "web-offers"
    };
    let (mut socket, page) = if native_offers {
        let page = BrowserPage::open_probe(&server.url, room, 2);
        wait_for_members(&server, 1, &[&page]);
        let socket = Socket::new(native_config(&server, room, 2)).expect("socket");
        (socket, page)
    } else {
        let mut socket = Socket::new(native_config(&server, room, 2)).expect("socket");
        let page = BrowserPage::open_probe(&server.url, room, 2);
        wait_for(&mut socket, &[&page], "Joined", |e| {
            matches!(e, SocketEvent::Joined { .. })
        });
        (socket, page)
    };
    let pages = [&page];
    let event = wait_for(&mut socket, &pages, "PeerConnected", |e| {
        matches!(e, SocketEvent::PeerConnected(_))
    });
    let SocketEvent::PeerConnected(browser) = event else {
        unreachable!()
    };
    let me = socket.id().expect("joined before connecting");
    assert_eq!(me > browser, native_offers, "the higher id offers");

    // The page's own events: joined, full, connected to us.
    wait_console(
        &page,
        &format!("probe event: PeerConnected(PeerId({}))", me.0),
    );
    wait_console(&page, "probe event: AllConnected");

    // The page greets once connected, on the reliable channel.
    let (from, channel, data) = wait_message(&mut socket, &pages, "the page's hi", |_, _, _| true);
    assert_eq!((from, channel), (browser, Channel::Reliable));
    assert_eq!(data, format!("hi from {}", browser.0).as_bytes());

    // Reliable both ways.
    socket
        .send_reliable(browser, b"echo:reliable")
        .expect("send reliable");
    let (_, channel, _) = wait_message(&mut socket, &pages, "the reliable echo", |_, _, d| {
        d == b"echo:reliable"
    });
    assert_eq!(channel, Channel::Reliable);
    wait_console(
        &page,
        &format!("probe got Reliable from {}: echo:reliable", me.0),
    );

    // Unreliable both ways (resent until one echo comes back: it may be lost).
    let deadline = Instant::now() + PATIENCE;
    loop {
        socket
            .send_unreliable(browser, b"echo:unreliable")
            .expect("send unreliable");
        match socket.wait_message(Duration::from_millis(200)) {
            Some(message) if message.data == b"echo:unreliable" => {
                assert_eq!(message.channel, Channel::Unreliable);
                break;
            }
            _ => assert!(
                Instant::now() < deadline,
                "no unreliable echo\n{}",
                page.console()
            ),
        }
    }

    // The page's view of the link: connected, a measured RTT (its pings), the path
    // (from getStats). Asked until both are in (the first ping answer takes one
    // ping interval).
    let stats = page_stats_until(&mut socket, browser, &pages, |stats| {
        stats.contains("candidate_type: Some(") && stats.contains("rtt: Some(")
    });
    assert!(stats.contains("state: Connected"), "{stats}");
    assert!(stats.contains("hello_acked: Some("), "{stats}");
    assert!(stats.contains("candidate_type: Some(Host)"), "{stats}");

    // Closing the page's socket says goodbye.
    socket.send_reliable(browser, b"close").expect("send close");
    let event = wait_for(&mut socket, &pages, "PeerDisconnected", |e| {
        matches!(e, SocketEvent::PeerDisconnected { .. })
    });
    assert_eq!(
        event,
        SocketEvent::PeerDisconnected {
            peer: browser,
            reason: DisconnectReason::Closed
        }
    );
}

#[test]
fn web_socket_connects_to_a_native_offerer() {
    web_and_native_connect(true);
}

#[test]
fn web_socket_offers_to_a_native_peer() {
    web_and_native_connect(false);
}

/// Two tabs and a native peer in one room: every pair connects, the tabs to each
/// other too (browser to browser).
#[test]
fn two_tabs_and_a_native_peer_share_a_room() {
    let server = LocalServer::start();
    let room = "three";
    let a = BrowserPage::open_probe(&server.url, room, 3);
    let b = BrowserPage::open_probe(&server.url, room, 3);
    let pages = [&a, &b];
    wait_for_members(&server, 2, &pages);
    let mut socket = Socket::new(native_config(&server, room, 3)).expect("socket");
    wait_for(&mut socket, &pages, "AllConnected", |e| {
        matches!(e, SocketEvent::AllConnected)
    });
    // Each tab greets us; their greetings name their ids.
    let mut tabs = Vec::new();
    while tabs.len() < 2 {
        let (from, _, data) = wait_message(&mut socket, &pages, "the tabs' hi", |_, _, d| {
            d.starts_with(b"hi from ")
        });
        assert_eq!(data, format!("hi from {}", from.0).as_bytes());
        tabs.push(from);
    }
    assert_ne!(tabs[0], tabs[1]);
    for page in pages {
        wait_console(page, "probe event: AllConnected");
    }
    // Browser to browser: each tab heard the other's greeting.
    let id_of = |page: &BrowserPage| -> u32 {
        let line = wait_console(page, "probe event: Joined");
        let digits: String = line
            .split("PeerId(")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no id in {line:?}"))
    };
    let (a_id, b_id) = (id_of(&a), id_of(&b));
    let mut ids = vec![a_id, b_id];
    ids.sort_unstable();
    let mut tab_ids: Vec<u32> = tabs.iter().map(|tab| tab.0).collect();
    tab_ids.sort_unstable();
    assert_eq!(ids, tab_ids, "the tabs' greetings name the tabs");
    wait_console(
        &a,
        &format!("probe got Reliable from {b_id}: hi from {b_id}"),
    );
    wait_console(
        &b,
        &format!("probe got Reliable from {a_id}: hi from {a_id}"),
    );
}

/// relay_only in the browser, with the TURN credentials the signaling server
/// hands out in `welcome`: the page's link to a native peer goes through coturn.
#[test]
fn web_socket_relays_through_turn_with_credentials_from_signaling() {
    const SECRET: &str = "web-test-secret";
    let turn = Coturn::start(TurnAuth::SharedSecret(SECRET));
    let server = LocalServer::with_config(rtcplay::signaling::ServerConfig {
        turn: Some(rtcplay::signaling::TurnConfig {
            urls: vec![turn.url.clone()],
            secret: SECRET.into(),
            ttl: Duration::from_secs(600),
        }),
        ..rtcplay::signaling::ServerConfig::default()
    });
    let page = BrowserPage::open_probe_relay_only(&server.url, "relayed", 2);
    wait_for_members(&server, 1, &[&page]);
    let mut socket = Socket::new(native_config(&server, "relayed", 2)).expect("socket");
    let pages = [&page];
    let event = wait_for(&mut socket, &pages, "PeerConnected", |e| {
        matches!(e, SocketEvent::PeerConnected(_))
    });
    let SocketEvent::PeerConnected(browser) = event else {
        unreachable!()
    };
    let stats = page_stats_until(&mut socket, browser, &pages, |stats| {
        stats.contains("candidate_type: Some(")
    });
    assert!(stats.contains("candidate_type: Some(Relay)"), "{stats}");
}
