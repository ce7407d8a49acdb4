//! A browser peer and a native peer in one room: the JavaScript client printed in
//! docs/signaling.md ("A JavaScript client"), run verbatim in a real headless
//! Chromium, against rtcplay's native socket and a real signaling server on
//! 127.0.0.1. Needs Debian's `chromium` (`.ci/test` installs it). These tests run
//! one at a time with the other WebRTC tests (nextest group `webrtc`).

#![cfg(feature = "native")]

use std::time::{Duration, Instant};

use rtcplay::transport::native::Socket;
use rtcplay::transport::{
    Channel, ConnectionState, DisconnectReason, PeerId, SocketConfig, SocketEvent,
};

use rtcplay_testkit::chromium::{BrowserPage, ECHO_HOOKS};
use rtcplay_testkit::events::{expect_event, try_expect_event};
use rtcplay_testkit::server::LocalServer;

/// Generous bound for anything that takes milliseconds on loopback (a cold Chromium
/// start is included).
const PATIENCE: Duration = Duration::from_secs(30);

/// The signaling server, and pages in 2-player rooms on it.
struct Server(LocalServer);

impl Server {
    fn start() -> Server {
        Server(LocalServer::start())
    }

    fn url(&self) -> &str {
        &self.0.url
    }

    /// Wait until `count` clients are members of rooms (e.g. the page has joined).
    fn wait_for_members(&self, count: usize, page: &BrowserPage) {
        let deadline = Instant::now() + PATIENCE;
        while self.0.stats().peers < count {
            assert!(
                Instant::now() < deadline,
                "{count} members never joined\n{}",
                page.console()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A page in a 2-player room (see `BrowserPage::open` for the hooks).
    fn page(&self, room: &str, before: &str, after: &str) -> BrowserPage {
        BrowserPage::open(self.url(), room, 2, before, after)
    }
}

fn native_config(server: &Server, room: &str) -> SocketConfig {
    let mut config = SocketConfig::new(server.url(), room, 2);
    config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    // Short, so that the test also proves the page's keepalive duty (rule 6).
    config.restart_after = Duration::from_secs(1);
    config.disconnect_timeout = Duration::from_secs(1);
    config
}

/// Events until `want` matches; panics with the page's console on errors and at
/// the deadline.
fn wait_for(
    socket: &mut Socket,
    page: &BrowserPage,
    what: &str,
    want: impl FnMut(&SocketEvent) -> bool,
) -> SocketEvent {
    try_expect_event(socket, PATIENCE, what, want)
        .unwrap_or_else(|e| panic!("{e}\n{}", page.console()))
}

/// The next game message, or a panic with the browser's console.
fn next_message(socket: &mut Socket, page: &BrowserPage, what: &str) -> (PeerId, Channel, Vec<u8>) {
    let message = socket
        .wait_message(PATIENCE)
        .unwrap_or_else(|| panic!("no {what} within {PATIENCE:?}\n{}", page.console()));
    (message.from, message.channel, message.data)
}

/// One browser and one native peer meet; `native_offers` picks who joins second
/// (the higher id sends the offer). Checks the whole contract of the docs' client.
fn browser_and_native_connect(native_offers: bool) {
    let server = Server::start();
    let room = if native_offers {
        "native-offers"
    } else {
        "browser-offers"
    };
    let (socket, page) = if native_offers {
        let page = server.page(room, "", ECHO_HOOKS);
        server.wait_for_members(1, &page);
        let socket = Socket::new(native_config(&server, room)).expect("socket");
        (socket, page)
    } else {
        let mut socket = Socket::new(native_config(&server, room)).expect("socket");
        let page = server.page(room, "", ECHO_HOOKS);
        wait_for(&mut socket, &page, "Joined", |e| {
            matches!(e, SocketEvent::Joined { .. })
        });
        (socket, page)
    };
    let mut socket = socket;
    let me = loop {
        if let Some(me) = socket.id() {
            break me;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let event = wait_for(&mut socket, &page, "PeerConnected", |e| {
        matches!(e, SocketEvent::PeerConnected(_))
    });
    let SocketEvent::PeerConnected(browser) = event else {
        unreachable!()
    };
    assert_eq!(me > browser, native_offers, "the higher id offers");

    // The page says hi once its own hellos are acknowledged.
    let (from, channel, data) = next_message(&mut socket, &page, "the page's hi");
    assert_eq!(
        (from, channel, &data[..]),
        (browser, Channel::Reliable, &b"hi"[..])
    );

    // Echo on both channels (the unreliable one re-sent until an echo arrives).
    socket
        .send_reliable(browser, b"reliable 1")
        .expect("reliable send");
    let (_, channel, data) = next_message(&mut socket, &page, "reliable echo");
    assert_eq!(
        (channel, &data[..]),
        (Channel::Reliable, &b"reliable 1"[..])
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        socket
            .send_unreliable(browser, b"unreliable 1")
            .expect("unreliable send");
        if let Some(message) = socket.wait_message(Duration::from_millis(200)) {
            assert_eq!(
                (message.channel, &message.data[..]),
                (Channel::Unreliable, &b"unreliable 1"[..])
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no unreliable echo\n{}",
            page.console()
        );
    }

    // Quiet for 2.5 disconnect timeouts: the page answers pings and sends its own.
    let quiet_until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < quiet_until {
        match socket.wait_event(Duration::from_millis(100)) {
            None | Some(SocketEvent::AllConnected) => {}
            Some(event) => panic!("unexpected {event:?} while quiet\n{}", page.console()),
        }
    }
    let stats = socket.stats(browser).expect("stats");
    assert_eq!(stats.state, ConnectionState::Connected, "{stats:?}");
    assert!(stats.rtt.is_some(), "the page answers pings: {stats:?}");
    let setup = stats.setup;
    let ice = setup.ice_connected.expect("ICE connected");
    let dtls = setup.dtls_connected.expect("DTLS connected");
    println!(
        "native {}: ICE connected at {ice:?}, DTLS connected {:?} later, hello acked at {:?}",
        if native_offers { "offers" } else { "answers" },
        dtls.saturating_sub(ice),
        setup.hello_acked
    );

    // A browser that vanishes (killed, no bye) takes its signaling connection with
    // it, so its silent link is not restarted: given up as `Left`.
    drop(page);
    let event = expect_event(&mut socket, PATIENCE, "PeerDisconnected", |e| {
        matches!(e, SocketEvent::PeerDisconnected { .. })
    });
    assert_eq!(
        event,
        SocketEvent::PeerDisconnected {
            peer: browser,
            reason: DisconnectReason::Left
        }
    );
}

#[test]
fn docs_browser_client_connects_when_the_browser_offers() {
    browser_and_native_connect(false);
}

#[test]
fn docs_browser_client_connects_when_the_native_peer_offers() {
    browser_and_native_connect(true);
}

/// Issue: a peer's first message can arrive before our own handshake is done (the
/// two sides finish independently); a reply to it must not fail with
/// `NotConnected`. The page here holds back its `hello_ack`s for 400 ms, so the
/// native side surely receives the page's first message before its own
/// `PeerConnected`.
#[test]
fn reply_to_a_first_message_that_arrives_before_peer_connected_goes_through() {
    const SLOW_ACKS: &str = r#"
const originalSend = RTCDataChannel.prototype.send;
RTCDataChannel.prototype.send = function (data) {
  const first = data instanceof Uint8Array ? data[0] : -1;
  if (first === 2) setTimeout(() => { try { originalSend.call(this, data); } catch (e) {} }, 400);
  else originalSend.call(this, data);
};
"#;
    let server = Server::start();
    let mut socket = Socket::new(native_config(&server, "early")).expect("socket");
    let page = server.page("early", SLOW_ACKS, ECHO_HOOKS);
    let message = socket
        .wait_message(PATIENCE)
        .unwrap_or_else(|| panic!("no first message\n{}", page.console()));
    assert_eq!(&message.data[..], b"hi");
    let browser = message.from;
    assert!(
        !socket.connected_peers().contains(&browser),
        "the page's acks are held back: its message must come before PeerConnected"
    );
    assert!(
        !socket
            .events()
            .iter()
            .any(|e| matches!(e, SocketEvent::PeerConnected(_))),
        "no PeerConnected yet"
    );
    socket
        .send_reliable(browser, b"reply")
        .expect("a reply to a received message is accepted");
    let (from, channel, data) = next_message(&mut socket, &page, "echo of the reply");
    assert_eq!(
        (from, channel, &data[..]),
        (browser, Channel::Reliable, &b"reply"[..])
    );
    wait_for(&mut socket, &page, "PeerConnected", |e| {
        *e == SocketEvent::PeerConnected(browser)
    });
    assert_eq!(socket.connected_peers(), vec![browser]);
}
