//! Misbehaving browser peers: the JavaScript client of docs/signaling.md in a real
//! headless Chromium, bent by hooks to send malformed frames, never acknowledge
//! hellos, or leave in the middle of the handshake. Each shares a 3-player room
//! with two native sockets: the natives get a clear event about the browser (or
//! nothing, when there is nothing to report), and their own link is undisturbed.
//! These tests run one at a time with the other WebRTC tests (nextest group
//! `webrtc`).

#![cfg(feature = "native")]

use std::time::{Duration, Instant};

use rtcplay::transport::native::Socket;
use rtcplay::transport::{Channel, PeerId, SocketConfig, SocketEvent, TransportError};

use rtcplay_testkit::chromium::BrowserPage;
use rtcplay_testkit::server::LocalServer;

/// Generous bound for anything that takes milliseconds on loopback (a cold Chromium
/// start included).
const PATIENCE: Duration = Duration::from_secs(30);

/// The natives' handshake timeout: short, so a peer that never acks fails soon.
const HANDSHAKE: Duration = Duration::from_secs(3);

fn native(server: &LocalServer, room: &str) -> Socket {
    let mut config = SocketConfig::new(&server.url, room, 3);
    config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    config.handshake_timeout = HANDSHAKE;
    Socket::new(config).expect("socket")
}

/// A page in a 3-player room, joined first (so it has the lowest id), and the two
/// natives that join after it.
fn room_with_page(
    room: &str,
    before: &str,
    after: &str,
) -> (LocalServer, BrowserPage, [Socket; 2]) {
    let server = LocalServer::start();
    let page = BrowserPage::open(&server.url, room, 3, before, after);
    let deadline = Instant::now() + PATIENCE;
    while server.stats().peers < 1 {
        assert!(
            Instant::now() < deadline,
            "the page never joined\n{}",
            page.console()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let natives = [native(&server, room), native(&server, room)];
    (server, page, natives)
}

/// Every event of `socket` until `done` says so; panics with the console at the
/// deadline.
fn events_until(
    socket: &mut Socket,
    page: &BrowserPage,
    what: &str,
    mut done: impl FnMut(&[SocketEvent]) -> bool,
) -> Vec<SocketEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match socket.wait_event(left) {
            Some(event) => seen.push(event),
            None => panic!(
                "no {what} within {PATIENCE:?}: saw {seen:?}\n{}",
                page.console()
            ),
        }
    }
    seen
}

fn connected(events: &[SocketEvent], peer: PeerId) -> bool {
    events.contains(&SocketEvent::PeerConnected(peer))
}

/// The two natives still talk to each other: a reliable message each way.
fn natives_talk(natives: &mut [Socket; 2], ids: [PeerId; 2]) {
    for (from, to) in [(0, 1), (1, 0)] {
        natives[from]
            .send_reliable(ids[to], b"between natives")
            .expect("send");
        let message = natives[to]
            .wait_message(PATIENCE)
            .expect("the other native's message");
        assert_eq!(
            (message.from, message.data.as_slice()),
            (ids[from], &b"between natives"[..])
        );
    }
}

fn ids(natives: &mut [Socket; 2]) -> [PeerId; 2] {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let (Some(a), Some(b)) = (natives[0].id(), natives[1].id()) {
            return [a, b];
        }
        assert!(Instant::now() < deadline, "the natives never joined");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The page's id: the one member that is neither native.
fn page_id(natives: &[PeerId; 2], room: &[PeerId]) -> PeerId {
    *room
        .iter()
        .find(|id| !natives.contains(id))
        .expect("a third member")
}

fn room_members(events: &[SocketEvent]) -> Vec<PeerId> {
    events
        .iter()
        .find_map(|e| match e {
            SocketEvent::RoomFull { players } => Some(players.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn malformed_frames_from_a_browser_are_dropped_and_the_link_stays() {
    // Once connected, the page sends every kind of bad frame on both channels,
    // then a good message, and echoes what it gets.
    let after = r#"
onPeerConnected = (id, p) => {
  for (const dc of [p.channels.unreliable, p.channels.reliable]) {
    dc.send(new Uint8Array([]));              // no tag at all
    dc.send(new Uint8Array([HELLO, 1, 2]));   // a hello with a body
    dc.send(new Uint8Array([PING, 1]));       // a ping cut short
    dc.send(new Uint8Array([200, 7, 7]));     // an unknown tag
    dc.send("text, not binary");              // a string message
  }
  sendData(p.channels.reliable, new TextEncoder().encode("still here"));
};
onGameMessage = (id, channel, bytes) => sendData(channel, bytes);
"#;
    let (_server, page, mut natives) = room_with_page("malformed", "", after);
    let ids = ids(&mut natives);
    let mut page_peer = None;
    for (i, socket) in natives.iter_mut().enumerate() {
        let other = ids[1 - i];
        let events = events_until(socket, &page, "AllConnected", |seen| {
            seen.contains(&SocketEvent::AllConnected)
        });
        let browser = page_id(&ids, &room_members(&events));
        assert!(
            connected(&events, browser) && connected(&events, other),
            "{events:?}"
        );
        page_peer = Some(browser);
    }
    let browser = page_peer.expect("the page's id");
    for socket in &mut natives {
        // The good message after the garbage arrives, and the link still echoes.
        let message = socket.wait_message(PATIENCE).expect("the page's message");
        assert_eq!(
            (message.from, message.channel),
            (browser, Channel::Reliable)
        );
        assert_eq!(message.data, b"still here", "{}", page.console());
        socket.send_reliable(browser, b"echo me").expect("send");
        let echo = socket.wait_message(PATIENCE).expect("the page's echo");
        assert_eq!(echo.data, b"echo me");
        // No disconnect was reported.
        let later: Vec<_> = std::iter::from_fn(|| socket.wait_event(Duration::ZERO)).collect();
        assert!(
            !later
                .iter()
                .any(|e| matches!(e, SocketEvent::PeerDisconnected { .. })),
            "{later:?}"
        );
    }
    natives_talk(&mut natives, ids);
}

#[test]
fn a_browser_that_never_acknowledges_fails_its_handshake_and_nothing_else() {
    // The page answers no hello: its links never count as connected.
    let before = r#"
const realSend = RTCDataChannel.prototype.send;
RTCDataChannel.prototype.send = function (data) {
  if (data instanceof Uint8Array && data.length === 1 && data[0] === 2) return;
  return realSend.call(this, data);
};
"#;
    let (_server, page, mut natives) = room_with_page("never-acks", before, "");
    let ids = ids(&mut natives);
    let started = Instant::now();
    for (i, socket) in natives.iter_mut().enumerate() {
        let other = ids[1 - i];
        let events = events_until(socket, &page, "the handshake timeout", |seen| {
            seen.iter()
                .any(|e| matches!(e, SocketEvent::Error(TransportError::HandshakeTimeout(_))))
        });
        let browser = page_id(&ids, &room_members(&events));
        assert!(
            events.contains(&SocketEvent::Error(TransportError::HandshakeTimeout(
                browser
            ))),
            "{events:?}"
        );
        assert!(connected(&events, other), "{events:?}");
        assert!(!connected(&events, browser), "{events:?}");
        assert!(!events.contains(&SocketEvent::AllConnected), "{events:?}");
    }
    // Reported at the handshake timeout, not long after.
    assert!(started.elapsed() < HANDSHAKE + Duration::from_secs(10));
    natives_talk(&mut natives, ids);
}

#[test]
fn a_browser_that_leaves_mid_handshake_is_reported_and_nothing_else() {
    // Right after its first description (its answer), the page closes the
    // connection and its signaling socket.
    let before = r#"
const sockets = [];
const RealWebSocket = WebSocket;
WebSocket = function (url) { const ws = new RealWebSocket(url); sockets.push(ws); return ws; };
const realSetLocal = RTCPeerConnection.prototype.setLocalDescription;
RTCPeerConnection.prototype.setLocalDescription = async function (...args) {
  const result = await realSetLocal.apply(this, args);
  setTimeout(() => { this.close(); for (const ws of sockets) ws.close(); }, 0);
  return result;
};
"#;
    let (_server, page, mut natives) = room_with_page("leaves", before, "");
    let ids = ids(&mut natives);
    for (i, socket) in natives.iter_mut().enumerate() {
        let other = ids[1 - i];
        let events = events_until(
            socket,
            &page,
            "the page's departure and the other native",
            |seen| {
                let left = seen.iter().any(|e| matches!(e, SocketEvent::Error(_)));
                left && seen.contains(&SocketEvent::PeerConnected(other))
            },
        );
        let browser = page_id(&ids, &room_members(&events));
        let reported = events.iter().any(|e| {
            matches!(
                e,
                SocketEvent::Error(TransportError::PeerLeft(p) | TransportError::WebRtc { peer: p, .. })
                    if *p == browser
            )
        });
        assert!(reported, "{events:?}");
        assert!(!connected(&events, browser), "{events:?}");
    }
    natives_talk(&mut natives, ids);
}
