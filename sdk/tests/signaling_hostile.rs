//! The signaling server against hostile clients: what one client can do to
//! another member of its room, to the server's memory and CPU, and with what it
//! sends. A real server on an ephemeral port, real WebSocket clients (raw
//! tungstenite sockets where the SDK's client would never misbehave).

#![cfg(feature = "native")]
#![allow(clippy::unwrap_used)]

mod signaling_support;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use rtcplay::signaling::protocol::{ClientMessage, MAX_ERROR_MESSAGE_LEN};
use rtcplay::signaling::{
    ClientConfig, ErrorCode, PeerId, ServerConfig, ServerMessage, SignalData, SignalingClient,
    SignalingError, SignalingServer, TurnConfig, SIGNAL_HEADROOM,
};
use signaling_support::{join, next, offer, server, until_full, Raw, DEADLINE};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// A raw client that joins `room` as a player (or spectator) and returns its id
/// once the join is answered.
async fn raw_member(
    server: &SignalingServer,
    room: &str,
    players: u8,
    spectator: bool,
) -> (Raw, PeerId) {
    let mut raw = Raw::connect(server).await;
    let mut join = ClientMessage::join(room, players);
    if let ClientMessage::Join { spectator: s, .. } = &mut join {
        *s = spectator;
    }
    raw.send(&join).await;
    match raw.recv().await {
        Some(ServerMessage::Welcome(w)) => (raw, w.peer_id),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Send `frames` as fast as the socket takes them, without waiting for answers.
async fn burst(raw: &mut Raw, frames: impl IntoIterator<Item = Message>) {
    for frame in frames {
        raw.ws.feed(frame).await.expect("feed");
    }
    raw.ws.flush().await.expect("flush");
}

fn signal_to(to: PeerId, sdp: String) -> Message {
    Message::text(
        ClientMessage::Signal {
            to,
            data: SignalData::Offer { sdp },
        }
        .to_json(),
    )
}

/// Read a raw client's messages up to the answer to a `ping` it sends now
/// (everything the server queued for it before arrives first); count the
/// signals and `peer_busy` errors among them.
#[derive(Default, Debug)]
struct Tally {
    signals: usize,
    busy: usize,
}

async fn tally_to_pong(raw: &mut Raw) -> Tally {
    raw.send(&ClientMessage::Ping).await;
    let mut tally = Tally::default();
    loop {
        match raw.recv().await {
            Some(ServerMessage::Signal { .. }) => tally.signals += 1,
            Some(ServerMessage::Error {
                code: ErrorCode::PeerBusy,
                ..
            }) => tally.busy += 1,
            Some(ServerMessage::Pong) => return tally,
            Some(ServerMessage::PeerJoined { .. } | ServerMessage::RoomFull { .. }) => {}
            Some(other) => panic!("unexpected {other:?}; so far {tally:?}"),
            None => panic!("connection closed; so far {tally:?}"),
        }
    }
}

fn signal_text(to: PeerId, sdp: &str) -> String {
    ClientMessage::Signal {
        to,
        data: offer(sdp),
    }
    .to_json()
}

/// Finding 2: a burst of signals from one member used to get its *recipient*
/// closed `too_slow` (10 of 10 trials). Now the recipient gets what fits and
/// stays; the sender is told of every signal that was dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_signals_costs_the_sender_never_the_recipient() {
    let server = server(ServerConfig::default()).await;
    for trial in 0..5 {
        let room = format!("burst-{trial}");
        let (mut victim, victim_id) = raw_member(&server, &room, 2, false).await;
        let (mut attacker, _) = raw_member(&server, &room, 2, false).await;
        // 190 tiny signals, inside the message burst of 200.
        let sent = 190;
        burst(
            &mut attacker,
            (0..sent).map(|i| signal_to(victim_id, i.to_string())),
        )
        .await;
        let attacker_saw = tally_to_pong(&mut attacker).await;
        let victim_saw = tally_to_pong(&mut victim).await;
        assert_eq!(
            victim_saw.signals + attacker_saw.busy,
            sent,
            "trial {trial}: every signal either arrives or its sender is told"
        );
        assert_eq!(
            server.stats().too_slow,
            0,
            "trial {trial}: a recipient was closed"
        );
    }
}

/// Finding 2, large signals: spectators (anyone can be one in a public match)
/// sending 60 KB signals to the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_sending_large_signals_cannot_knock_out_the_host() {
    let server = server(ServerConfig::default()).await;
    let (mut host, host_id) = raw_member(&server, "match", 2, false).await;
    let (mut other, _) = raw_member(&server, "match", 2, false).await;
    let mut spectators = Vec::new();
    for _ in 0..3 {
        spectators.push(raw_member(&server, "match", 2, true).await.0);
    }
    let big = "x".repeat(60 * 1024);
    let per_spectator = 6;
    for spectator in &mut spectators {
        burst(
            spectator,
            (0..per_spectator).map(|_| signal_to(host_id, big.clone())),
        )
        .await;
    }
    let mut busy = 0;
    for spectator in &mut spectators {
        busy += tally_to_pong(spectator).await.busy;
    }
    let host_saw = tally_to_pong(&mut host).await;
    assert_eq!(host_saw.signals + busy, 3 * per_spectator);
    assert!(host_saw.signals >= 1);
    assert_eq!(server.stats().too_slow, 0);
    // The host is still a member: the other player reaches it.
    other.send_text(signal_text(host_id, "still there")).await;
    tally_to_pong(&mut other).await;
    assert_eq!(tally_to_pong(&mut host).await.signals, 1);
}

/// A recipient that really does not read is still closed: once its queue has
/// been full for the write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_that_never_reads_is_closed_after_the_write_timeout() {
    let server = server(ServerConfig {
        write_timeout: Duration::from_secs(1),
        rate_limit_bytes_per_sec: 100 << 20,
        rate_limit_burst: 100_000,
        rate_limit_per_sec: 100_000,
        ..ServerConfig::default()
    })
    .await;
    let (_stalled, stalled_id) = raw_member(&server, "slow", 2, false).await;
    let (mut sender, _) = join(&server, "slow", 2).await;
    until_full(&mut sender).await;
    let big = offer(&"x".repeat(60 * 1024));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut busy = 0;
    let left = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never closed ({busy} busy)"
        );
        match sender.signal(stalled_id, big.clone()) {
            Ok(()) | Err(SignalingError::QueueFull) => {}
            Err(e) => panic!("{e}"),
        }
        match tokio::time::timeout(Duration::from_millis(5), sender.next_event()).await {
            Ok(Some(ServerMessage::PeerLeft { peer_id })) => break peer_id,
            Ok(Some(ServerMessage::Error {
                code: ErrorCode::PeerBusy,
                ..
            })) => busy += 1,
            // Signals sent after it was closed, before its peer_left arrived.
            Ok(Some(ServerMessage::Error {
                code: ErrorCode::UnknownPeer,
                ..
            })) => {}
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => panic!("sender closed"),
            Err(_) => {}
        }
    };
    assert_eq!(left, stalled_id);
    assert!(busy > 0, "the queue never filled");
    assert_eq!(server.stats().too_slow, 1);
}

/// Finding 3: a signal at the size limit arrived 2 bytes over the client's limit
/// (the relay writes `"from":N` where the sender wrote `"to":M`), and rtcplay's
/// own client dropped its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_signal_a_sender_may_send_reaches_the_sdk_client() {
    let server = server(ServerConfig::default()).await;
    let (mut receiver, receiver_id) = join(&server, "big", 2).await;
    let (mut sender, _) = raw_member(&server, "big", 2, false).await;
    until_full(&mut receiver).await;
    tally_to_pong(&mut sender).await; // its peer_joined and room_full
    let limit = ServerConfig::default().max_frame_size - SIGNAL_HEADROOM;
    let padding = limit - signal_text(receiver_id, "").len();
    let largest = signal_text(receiver_id, &"y".repeat(padding));
    assert_eq!(largest.len(), limit);
    sender.send_text(largest).await;
    match next(&mut receiver).await {
        ServerMessage::Signal {
            data: SignalData::Offer { sdp },
            ..
        } => assert_eq!(sdp.len(), padding),
        other => panic!("expected the signal, got {other:?}"),
    }
    // One byte more is refused to the sender, which stays connected; the
    // receiver gets nothing of it and stays connected too.
    sender
        .send_text(signal_text(receiver_id, &"y".repeat(padding + 1)))
        .await;
    sender.expect_error(ErrorCode::TooLarge).await;
    sender.send_text(signal_text(receiver_id, "small")).await;
    sender.ping().await;
    match next(&mut receiver).await {
        ServerMessage::Signal {
            data: SignalData::Offer { sdp },
            ..
        } => assert_eq!(sdp, "small"),
        other => panic!("expected the small signal, got {other:?}"),
    }
}

/// Send the first part of a text message (no FIN): the server must hold it.
async fn start_unfinished(raw: &mut Raw, bytes: usize) {
    let frame = Frame::message(
        Bytes::from(vec![b' '; bytes]),
        OpCode::Data(Data::Text),
        false,
    );
    raw.ws
        .send(Message::Frame(frame))
        .await
        .expect("send fragment");
}

/// Finding 4: an unfinished message used to be kept forever by WebSocket pings.
/// Only complete messages count as activity now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_do_not_keep_an_unfinished_message_alive() {
    let server = server(ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let mut holder = Raw::connect(&server).await;
    start_unfinished(&mut holder, 1000).await;
    let started = tokio::time::Instant::now();
    let mut return_error = None;
    let error = loop {
        assert!(
            started.elapsed() < DEADLINE,
            "still open after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        if holder
            .ws
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .is_err()
        {
            break None;
        }
        // Read what arrived meanwhile (pongs), and the error once it comes.
        while let Ok(frame) =
            tokio::time::timeout(Duration::from_millis(10), holder.ws.next()).await
        {
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return_error = ServerMessage::from_json(&text).ok()
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        if return_error.is_some() {
            break return_error;
        }
    };
    assert!(
        matches!(
            error,
            Some(ServerMessage::Error {
                code: ErrorCode::IdleTimeout,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(holder);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.stats().unfinished_bytes, 0);
}

/// Finding 4: unfinished messages count against a server-wide budget; once it is
/// used up, connections holding more than 4 KiB of one are closed, while small
/// messages of other clients still get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_messages_are_bounded_server_wide() {
    let budget = 200 * 1024;
    let server = server(ServerConfig {
        max_unfinished_bytes: budget,
        ..ServerConfig::default()
    })
    .await;
    let mut holders = Vec::new();
    for _ in 0..8 {
        let mut raw = Raw::connect(&server).await;
        start_unfinished(&mut raw, 60_000).await;
        holders.push(raw);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut refused = 0;
    for raw in &mut holders {
        // A refused holder gets `server_full` and close code 1013 (try again later).
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(300), raw.ws.next()).await
        {
            let msg = ServerMessage::from_json(&text).unwrap();
            assert!(
                matches!(
                    msg,
                    ServerMessage::Error {
                        code: ErrorCode::ServerFull,
                        ..
                    }
                ),
                "{msg:?}"
            );
            match raw.ws.next().await {
                Some(Ok(Message::Close(Some(close)))) => assert_eq!(close.code, CloseCode::Again),
                other => panic!("expected a close frame, got {other:?}"),
            }
            refused += 1;
        }
    }
    // 8 x 60 KB = 480 KB against a 200 KiB budget: at least 4 were refused.
    assert!(refused >= 4, "only {refused} refused");
    let held = server.stats().unfinished_bytes;
    assert!(held <= budget + 60_000, "{held} bytes held");
    // Ordinary clients are still served.
    let (mut a, _) = join(&server, "normal", 2).await;
    let (_b, _) = join(&server, "normal", 2).await;
    assert_eq!(until_full(&mut a).await.len(), 2);
}

/// Finding 5: a flood paced above the rate (1,000 messages/s against 50/s) used to
/// go on forever, each message that got through resetting the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_flood_is_closed() {
    let server = server(ServerConfig::default()).await;
    let (mut sink, mut stream) = Raw::connect(&server).await.ws.split();
    let ping = Message::text(ClientMessage::Ping.to_json());
    let started = tokio::time::Instant::now();
    let writer = async {
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        loop {
            interval.tick().await;
            if sink.send(ping.clone()).await.is_err() || started.elapsed() > DEADLINE {
                return;
            }
        }
    };
    let reader = async {
        let mut last = None;
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Text(text) = frame {
                last = Some(ServerMessage::from_json(&text).unwrap());
            }
        }
        last
    };
    let (_, last) = tokio::join!(writer, reader);
    assert!(
        started.elapsed() < DEADLINE,
        "the paced flood was never closed"
    );
    assert!(
        matches!(
            last,
            Some(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            })
        ),
        "{last:?}"
    );
}

/// Finding 6: TURN user names were `<expiry>:<peer id>`, and peer ids restart at 1
/// in every room, so the first joiners of two rooms got the same credential; and
/// every join minted a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_credentials_are_unique_per_client_and_not_minted_per_join() {
    let server = server(ServerConfig {
        turn: Some(TurnConfig {
            urls: vec!["turn:127.0.0.1:3478".into()],
            secret: "shared-with-coturn".into(),
            ttl: Duration::from_secs(600),
        }),
        ..ServerConfig::default()
    })
    .await;
    let turn_user = |msg: ServerMessage| match msg {
        ServerMessage::Welcome(w) => {
            assert_eq!(w.ice_servers.len(), 1);
            (w.peer_id, w.ice_servers[0].username.clone().unwrap())
        }
        other => panic!("expected welcome, got {other:?}"),
    };
    let mut a = Raw::connect(&server).await;
    let mut b = Raw::connect(&server).await;
    let (a_id, a_user) = turn_user(a.join("room-a", 2, None).await);
    let (b_id, b_user) = turn_user(b.join("room-b", 2, None).await);
    assert_eq!((a_id, b_id), (PeerId(1), PeerId(1)));
    assert_ne!(a_user, b_user, "two clients share a TURN credential");
    let expiry: u64 = a_user.split(':').next().unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 590..=now + 610).contains(&expiry));
    // Join/leave cycles on one connection reuse its credential...
    for _ in 0..4 {
        a.send(&ClientMessage::Leave).await;
        let (_, again) = turn_user(a.join("room-a", 2, None).await);
        assert_eq!(again, a_user);
    }
    // ...and are limited: 5 joins at once, then 30 a minute.
    a.send(&ClientMessage::Leave).await;
    match a.join("room-a", 2, None).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::RateLimited),
        other => panic!("a sixth join at once was accepted: {other:?}"),
    }
}

/// Finding 8: protocol violations close with an error and a close frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_get_an_error_and_a_close_code() {
    let server = server(ServerConfig::default()).await;
    let mut reserved_bits =
        Frame::message(Bytes::from_static(b"{}"), OpCode::Data(Data::Text), true);
    reserved_bits.header_mut().rsv1 = true;
    let bad_utf8 = Frame::message(
        Bytes::from_static(b"\xff\xfe"),
        OpCode::Data(Data::Text),
        true,
    );
    for (frame, expected) in [
        (bad_utf8, CloseCode::Invalid),
        (reserved_bits, CloseCode::Protocol),
    ] {
        let mut raw = Raw::connect(&server).await;
        raw.ws.send(Message::Frame(frame)).await.expect("send");
        raw.expect_error(ErrorCode::ProtocolViolation).await;
        match tokio::time::timeout(DEADLINE, raw.ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(close)))) => assert_eq!(close.code, expected),
            other => panic!("expected close {expected}, got {other:?}"),
        }
    }
}

/// Finding 8: nothing a client sends is echoed back at length, and room names
/// must be printable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_are_bounded_and_room_names_printable() {
    let server = server(ServerConfig::default()).await;
    let mut raw = Raw::connect(&server).await;
    let long_kind = "k".repeat(60_000);
    raw.send_text(format!(
        r#"{{"type":"signal","to":1,"data":{{"kind":"{long_kind}"}}}}"#
    ))
    .await;
    match raw.recv().await {
        Some(ServerMessage::Error {
            code: ErrorCode::BadJson,
            message,
        }) => assert!(
            message.len() <= MAX_ERROR_MESSAGE_LEN,
            "{} bytes",
            message.len()
        ),
        other => panic!("expected bad_json, got {other:?}"),
    }
    for name in [
        "   ",
        "ad\u{202E}nimda",
        "lob\u{200B}by",
        " padded",
        "a\u{3000}b",
    ] {
        match raw.join(name, 2, None).await {
            ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::BadRoom, "{name:?}"),
            other => panic!("{name:?} accepted: {other:?}"),
        }
    }
    assert!(matches!(
        raw.join("Salle 3 - 対戦", 2, None).await,
        ServerMessage::Welcome(_)
    ));
}

async fn spectate(
    server: &SignalingServer,
    room: &str,
    secret: Option<&str>,
) -> Result<SignalingClient, SignalingError> {
    let config = ClientConfig {
        spectator: true,
        spectator_secret: secret.map(str::to_owned),
        ..ClientConfig::default()
    };
    SignalingClient::join_with_config(&server.url(), room, 2, None, config)
        .await
        .map(|(client, _)| client)
}

/// Two players fill `room`; the first (its creator) sets who may watch.
async fn create(
    server: &SignalingServer,
    room: &str,
    secret: Option<&str>,
    none: bool,
) -> (SignalingClient, SignalingClient) {
    let config = ClientConfig {
        spectator_secret: secret.map(str::to_owned),
        no_spectators: none,
        ..ClientConfig::default()
    };
    let (mut a, _) = SignalingClient::join_with_config(&server.url(), room, 2, None, config)
        .await
        .expect("create");
    let (b, _) = join(server, room, 2).await;
    until_full(&mut a).await;
    (a, b)
}

fn refused_spectator(result: Result<SignalingClient, SignalingError>) {
    match result {
        Err(SignalingError::Refused { code, .. }) => {
            assert_eq!(code, ErrorCode::SpectatorRefused)
        }
        Err(other) => panic!("expected spectator_refused, got {other}"),
        Ok(_) => panic!("the spectator was admitted"),
    }
}

/// Finding 9: a room's creator can require a spectator secret or refuse
/// spectators; the server can require a secret everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_need_the_creators_secret_or_are_refused() {
    let server = server(ServerConfig::default()).await;
    let _guarded = create(&server, "guarded", Some("watchers"), false).await;
    refused_spectator(spectate(&server, "guarded", None).await);
    refused_spectator(spectate(&server, "guarded", Some("players")).await);
    spectate(&server, "guarded", Some("watchers"))
        .await
        .expect("with the secret");
    let _closed = create(&server, "closed", None, true).await;
    refused_spectator(spectate(&server, "closed", Some("watchers")).await);
    let _open = create(&server, "open", None, false).await;
    spectate(&server, "open", None).await.expect("public match");

    let strict = signaling_support::server(ServerConfig {
        require_spectator_secret: true,
        ..ServerConfig::default()
    })
    .await;
    let _open = create(&strict, "open", None, false).await;
    refused_spectator(spectate(&strict, "open", None).await);
    let _guarded = create(&strict, "guarded", Some("watchers"), false).await;
    spectate(&strict, "guarded", Some("watchers"))
        .await
        .expect("with the secret");
}

/// IPv6 addresses added to `lo` for one test, removed again on drop.
struct LoopbackAddresses(Vec<String>);

impl LoopbackAddresses {
    fn add(addresses: &[&str]) -> Self {
        let mut added = LoopbackAddresses(Vec::new());
        for address in addresses {
            let status = Command::new("ip")
                .args([
                    "-6",
                    "addr",
                    "add",
                    &format!("{address}/64"),
                    "dev",
                    "lo",
                    "nodad",
                ])
                .status()
                .expect("run ip (iproute2)");
            assert!(
                status.success(),
                "ip -6 addr add {address} failed: this test needs root, as CI has"
            );
            added.0.push((*address).to_owned());
        }
        added
    }
}

impl Drop for LoopbackAddresses {
    fn drop(&mut self) {
        for address in &self.0 {
            let _ = Command::new("ip")
                .args(["-6", "addr", "del", &format!("{address}/64"), "dev", "lo"])
                .status();
        }
    }
}

/// A WebSocket handshake from local address `from` to `server`; the HTTP status
/// when refused.
async fn connect_from(from: &str, server: SocketAddr) -> Result<Raw, u16> {
    let from: IpAddr = from.parse().unwrap();
    let socket = TcpSocket::new_v6().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    let tcp = socket.connect(server).await.expect("tcp connect");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    match tokio_tungstenite::client_async(format!("ws://{server}/"), stream).await {
        Ok((ws, _)) => Ok(Raw { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected handshake error {other}"),
    }
}

/// Finding 10: the per-IP limit keyed on the full address, so one IPv6 host (which
/// may use any address of its /64) had no limit at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_are_limited_per_prefix() {
    let _addresses = LoopbackAddresses::add(&[
        "fd72:7463:706c:1::1",
        "fd72:7463:706c:1::2",
        "fd72:7463:706c:1::3",
        "fd72:7463:706c:2::1",
    ]);
    let server = SignalingServer::bind(
        "[fd72:7463:706c:1::1]:0",
        ServerConfig {
            max_connections_per_ip: 2,
            ..ServerConfig::default()
        },
    )
    .await
    .expect("bind");
    let at = server.local_addr();
    let _one = connect_from("fd72:7463:706c:1::1", at)
        .await
        .expect("first");
    let _two = connect_from("fd72:7463:706c:1::2", at)
        .await
        .expect("second");
    assert_eq!(
        connect_from("fd72:7463:706c:1::3", at).await.err(),
        Some(503),
        "a third address of the same /64 was admitted"
    );
    // Another /64 is another client.
    let _other = connect_from("fd72:7463:706c:2::1", at)
        .await
        .expect("other prefix");
    assert_eq!(server.stats().rejected_connections, 1);
}
