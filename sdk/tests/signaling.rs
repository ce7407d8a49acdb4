//! Signaling server and client, end to end: a real server on 127.0.0.1:0 and real
//! WebSocket clients (the SDK's `SignalingClient` and raw tungstenite sockets for
//! malformed input).
#![cfg(feature = "native")]

mod signaling_support;

use std::time::Duration;

use futures_util::SinkExt;
use rtcplay::signaling::protocol::{ClientMessage, PROTOCOL_VERSION};
use rtcplay::signaling::{
    ClientConfig, ErrorCode, IceServer, PeerId, ServerConfig, ServerMessage, SignalData,
    SignalingClient, SignalingError, SignalingServer,
};
use signaling_support::{join, next, offer, server, until_full, Raw, DEADLINE};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A matched pair that proves the server still serves others: each side signals
/// the other and receives the other's signal.
struct Pair {
    a: SignalingClient,
    b: SignalingClient,
    a_id: PeerId,
    b_id: PeerId,
}

impl Pair {
    async fn new(server: &SignalingServer, room: &str) -> Pair {
        let (mut a, a_id) = join(server, room, 2).await;
        let (mut b, b_id) = join(server, room, 2).await;
        assert_eq!(until_full(&mut a).await, vec![a_id, b_id]);
        assert_eq!(until_full(&mut b).await, vec![a_id, b_id]);
        Pair { a, b, a_id, b_id }
    }

    async fn assert_working(&mut self, tag: &str) {
        self.b.signal(self.a_id, offer(tag)).expect("queue offer");
        assert_eq!(
            next(&mut self.a).await,
            ServerMessage::Signal {
                from: self.b_id,
                data: offer(tag)
            }
        );
        let answer = SignalData::Answer { sdp: tag.into() };
        self.a
            .signal(self.b_id, answer.clone())
            .expect("queue answer");
        assert_eq!(
            next(&mut self.b).await,
            ServerMessage::Signal {
                from: self.a_id,
                data: answer
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_are_matched_and_exchange_signals() {
    let ice = IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    };
    let server = server(ServerConfig {
        ice_servers: vec![ice.clone()],
        ..ServerConfig::default()
    })
    .await;
    let (mut a, welcome_a) = SignalingClient::join(&server.url(), "duel", 2, None)
        .await
        .expect("join a");
    assert_eq!(welcome_a.room, "duel");
    assert_eq!(welcome_a.players, 2);
    assert_eq!(welcome_a.version, PROTOCOL_VERSION);
    assert_eq!(welcome_a.ice_servers, vec![ice]);
    let (mut b, welcome_b) = SignalingClient::join(&server.url(), "duel", 2, None)
        .await
        .expect("join b");
    assert_ne!(welcome_a.peer_id, welcome_b.peer_id);
    // Each learns of the other, then that the room is full.
    assert_eq!(
        next(&mut a).await,
        ServerMessage::PeerJoined {
            peer_id: welcome_b.peer_id,
            spectator: false
        }
    );
    assert_eq!(
        next(&mut b).await,
        ServerMessage::PeerJoined {
            peer_id: welcome_a.peer_id,
            spectator: false
        }
    );
    let mut peers = vec![welcome_a.peer_id, welcome_b.peer_id];
    peers.sort();
    assert_eq!(until_full(&mut a).await, peers);
    assert_eq!(until_full(&mut b).await, peers);
    let mut pair = Pair {
        a,
        b,
        a_id: welcome_a.peer_id,
        b_id: welcome_b.peer_id,
    };
    pair.assert_working("v=0 duel").await;
    let stats = server.stats();
    assert_eq!((stats.rooms, stats.open_rooms, stats.peers), (1, 0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_players_form_a_full_mesh_and_a_fifth_starts_a_new_room() {
    let server = server(ServerConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(join(&server, "quad", 4).await);
    }
    let mut ids: Vec<PeerId> = clients.iter().map(|c| c.1).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "peer ids are unique in the room");
    for (client, _) in &mut clients {
        assert_eq!(until_full(client).await, ids);
    }
    // Every member signals every other member.
    for (client, me) in &clients {
        for &other in &ids {
            if other != *me {
                client
                    .signal(other, offer(&format!("{}->{}", me.0, other.0)))
                    .expect("queue");
            }
        }
    }
    for (client, me) in &mut clients {
        let mut from = Vec::new();
        for _ in 0..3 {
            match next(client).await {
                ServerMessage::Signal {
                    from: sender,
                    data: SignalData::Offer { sdp },
                } => {
                    assert_eq!(sdp, format!("{}->{}", sender.0, me.0));
                    from.push(sender);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        from.sort();
        let expected: Vec<PeerId> = ids.iter().copied().filter(|p| p != me).collect();
        assert_eq!(from, expected);
    }
    // The room takes no more joiners: a fifth gets a new room of its own.
    let (_fifth, _) = join(&server, "quad", 4).await;
    let stats = server.stats();
    assert_eq!((stats.rooms, stats.open_rooms, stats.peers), (2, 1, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_are_relayed_only_within_the_room() {
    let server = server(ServerConfig::default()).await;
    // Room "left" and room "right" both have peers 1 and 2.
    let mut raw_left = Raw::connect(&server).await;
    let left_id = match raw_left.join("left", 2, None).await {
        ServerMessage::Welcome(w) => w.peer_id,
        other => panic!("{other:?}"),
    };
    let (mut left_partner, left_partner_id) = join(&server, "left", 2).await;
    let mut right = Pair::new(&server, "right").await;
    assert!(matches!(
        raw_left.recv().await,
        Some(ServerMessage::PeerJoined { .. })
    ));
    assert!(matches!(
        raw_left.recv().await,
        Some(ServerMessage::RoomFull { .. })
    ));
    assert_eq!(until_full(&mut left_partner).await.len(), 2);
    // A signal from "right" addressed to the id `left_id` reaches the member of
    // "right" with that id, never the member of "left".
    assert!(right.a_id == left_id || right.b_id == left_id);
    right.assert_working("right only").await;
    // Anything misrouted to raw_left would have been queued before this pong
    // (the server delivers queued frames before reading the next request).
    raw_left.ping().await;
    // A peer id that is not in the sender's room is refused.
    raw_left
        .send(&ClientMessage::Signal {
            to: PeerId(99),
            data: offer("nowhere"),
        })
        .await;
    raw_left.expect_error(ErrorCode::UnknownPeer).await;
    // Nor may a client signal itself.
    raw_left
        .send(&ClientMessage::Signal {
            to: left_id,
            data: offer("me"),
        })
        .await;
    raw_left.expect_error(ErrorCode::UnknownPeer).await;
    // Inside its room it still works.
    raw_left
        .send(&ClientMessage::Signal {
            to: left_partner_id,
            data: offer("hello"),
        })
        .await;
    assert_eq!(
        next(&mut left_partner).await,
        ServerMessage::Signal {
            from: left_id,
            data: offer("hello")
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departures_are_announced_and_empty_rooms_freed() {
    let server = server(ServerConfig::default()).await;
    let mut trio = Vec::new();
    for _ in 0..3 {
        trio.push(join(&server, "trio", 3).await);
    }
    for (client, _) in &mut trio {
        until_full(client).await;
    }
    let (dropped, dropped_id) = trio.pop().expect("three");
    drop(dropped);
    for (client, _) in &mut trio {
        assert_eq!(
            next(client).await,
            ServerMessage::PeerLeft {
                peer_id: dropped_id
            }
        );
    }
    // An explicit leave is announced too.
    let (leaver, leaver_id) = trio.pop().expect("two");
    leaver.leave().expect("queue leave");
    let (last, _) = &mut trio[0];
    assert_eq!(
        next(last).await,
        ServerMessage::PeerLeft { peer_id: leaver_id }
    );
    // A waiting room whose only member goes away is freed as well.
    let (waiting, _) = join(&server, "lonely", 2).await;
    assert_eq!(server.stats().rooms, 2);
    drop(waiting);
    drop(leaver);
    drop(trio);
    wait_until(&server, |s| s.rooms == 0 && s.connections == 0).await;
    let stats = server.stats();
    assert_eq!(stats.rooms_created, 2);
    assert_eq!(stats.rooms_freed, 2);
}

/// Poll the server's counters (they have no event to await) until `done`.
async fn wait_until(
    server: &SignalingServer,
    done: impl Fn(&rtcplay::signaling::ServerStats) -> bool,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done(&server.stats()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server stats never settled: {:?}",
            server.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_gets_an_error_and_others_keep_working() {
    let server = server(ServerConfig::default()).await;
    let mut pair = Pair::new(&server, "ok").await;
    let mut bad = Raw::connect(&server).await;
    for junk in ["{", "null", "[1,2]", r#"{"type":"join","room":7}"#, "\u{0}"] {
        bad.send_text(junk.into()).await;
        bad.expect_error(ErrorCode::BadJson).await;
    }
    bad.ws
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    bad.expect_error(ErrorCode::BadJson).await;
    // Still connected, and everyone else is served.
    bad.ping().await;
    pair.assert_working("after junk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_gets_an_error() {
    let server = server(ServerConfig::default()).await;
    let mut pair = Pair::new(&server, "ok").await;
    let mut bad = Raw::connect(&server).await;
    bad.send_text(r#"{"type":"teleport","to":1}"#.into()).await;
    bad.expect_error(ErrorCode::UnknownType).await;
    bad.ping().await;
    pair.assert_working("after unknown type").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_outside_a_room_are_refused() {
    let server = server(ServerConfig::default()).await;
    let mut pair = Pair::new(&server, "ok").await;
    let mut outsider = Raw::connect(&server).await;
    // Not in any room: cannot reach the pair's members.
    outsider
        .send(&ClientMessage::Signal {
            to: pair.a_id,
            data: offer("intrusion"),
        })
        .await;
    outsider.expect_error(ErrorCode::NotInRoom).await;
    outsider.send(&ClientMessage::Leave).await;
    outsider.expect_error(ErrorCode::NotInRoom).await;
    // In another room: the pair's ids are not its room's members.
    assert!(matches!(
        outsider.join("elsewhere", 2, None).await,
        ServerMessage::Welcome(_)
    ));
    outsider
        .send(&ClientMessage::Signal {
            to: PeerId(2),
            data: offer("intrusion"),
        })
        .await;
    outsider.expect_error(ErrorCode::UnknownPeer).await;
    // Joining twice is refused; bad sizes and names too.
    assert!(matches!(
        outsider.join("again", 2, None).await,
        ServerMessage::Error {
            code: ErrorCode::AlreadyInRoom,
            ..
        }
    ));
    let mut other = Raw::connect(&server).await;
    assert!(matches!(
        other.join("x", 9, None).await,
        ServerMessage::Error {
            code: ErrorCode::BadPlayers,
            ..
        }
    ));
    assert!(matches!(
        other.join("", 2, None).await,
        ServerMessage::Error {
            code: ErrorCode::BadRoom,
            ..
        }
    ));
    pair.assert_working("after intrusion").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_get_an_error_and_a_close() {
    let server = server(ServerConfig::default()).await;
    let mut pair = Pair::new(&server, "ok").await;
    let mut bad = Raw::connect(&server).await;
    // A signal of 70 KiB: over the 64 KiB default.
    let big = ClientMessage::Signal {
        to: PeerId(1),
        data: offer(&"x".repeat(70 * 1024)),
    };
    bad.send(&big).await;
    bad.expect_error(ErrorCode::TooLarge).await;
    bad.expect_closed().await;
    // Just under the limit is fine (answered, here with not_in_room).
    let mut ok = Raw::connect(&server).await;
    let fits = ClientMessage::Signal {
        to: PeerId(1),
        data: offer(&"x".repeat(60 * 1024)),
    };
    ok.send(&fits).await;
    ok.expect_error(ErrorCode::NotInRoom).await;
    pair.assert_working("after oversize").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_rate_limited_then_closed() {
    let server = server(ServerConfig {
        rate_limit_burst: 20,
        rate_limit_per_sec: 5,
        ..ServerConfig::default()
    })
    .await;
    let mut pair = Pair::new(&server, "ok").await;
    let mut flood = Raw::connect(&server).await;
    // Far more pings than the burst, as fast as possible.
    for _ in 0..200 {
        if flood
            .ws
            .feed(Message::text(ClientMessage::Ping.to_json()))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = flood.ws.flush().await;
    let mut pongs = 0;
    let mut rate_limited = 0;
    while let Some(msg) = flood.recv().await {
        match msg {
            ServerMessage::Pong => pongs += 1,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => rate_limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // At most the burst (plus what refilled meanwhile) was answered, the client
    // was told, and then it was disconnected.
    assert!((20..200).contains(&pongs), "pongs: {pongs}");
    assert!(rate_limited >= 1, "no rate_limited error");
    pair.assert_working("after flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_token_is_required_when_configured() {
    let server = server(ServerConfig {
        room_token: Some("s3cret".into()),
        ..ServerConfig::default()
    })
    .await;
    let url = server.url();
    for token in [None, Some("wrong".to_owned()), Some("s3cre".to_owned())] {
        match SignalingClient::join(&url, "vip", 2, token).await {
            Err(SignalingError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
            other => panic!("expected unauthorized, got {other:?}"),
        }
    }
    let mut raw = Raw::connect(&server).await;
    assert!(matches!(
        raw.join("vip", 2, Some("nope")).await,
        ServerMessage::Error {
            code: ErrorCode::Unauthorized,
            ..
        }
    ));
    raw.expect_closed().await;
    let (_client, welcome) = SignalingClient::join(&url, "vip", 2, Some("s3cret".into()))
        .await
        .expect("right token is accepted");
    assert_eq!(welcome.room, "vip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_is_refused() {
    let server = server(ServerConfig::default()).await;
    let mut raw = Raw::connect(&server).await;
    raw.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION + 1,
        room: "future".into(),
        players: 2,
        token: None,
        room_secret: None,
        spectator: false,
        spectator_secret: None,
        no_spectators: false,
        rejoin_token: None,
        start_with: None,
        resume: false,
    })
    .await;
    raw.expect_error(ErrorCode::VersionMismatch).await;
    raw.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed_and_keepalive_prevents_it() {
    let server = server(ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let config = ClientConfig {
        keepalive_interval: Duration::from_millis(50),
        ..ClientConfig::default()
    };
    let (mut kept, _) =
        SignalingClient::join_with_config(&server.url(), "k", 2, None, config.clone())
            .await
            .expect("join");
    let mut silent = Raw::connect(&server).await;
    silent.expect_error(ErrorCode::IdleTimeout).await;
    silent.expect_closed().await;
    // The silent client was closed after at least one idle timeout; the pinging
    // client, older than it, is still served.
    let (_partner, _) = SignalingClient::join_with_config(&server.url(), "k", 2, None, config)
        .await
        .expect("join");
    assert_eq!(until_full(&mut kept).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_per_ip_is_enforced() {
    let server = server(ServerConfig {
        max_connections_per_ip: 2,
        ..ServerConfig::default()
    })
    .await;
    let first = Raw::connect(&server).await;
    let _second = Raw::connect(&server).await;
    match tokio_tungstenite::connect_async(server.url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        Err(other) => panic!("expected HTTP 503, got {other}"),
        Ok(_) => panic!("third connection from one IP was accepted"),
    }
    assert_eq!(server.stats().rejected_connections, 1);
    drop(first);
    wait_until(&server, |s| s.connections == 1).await;
    let _c = Raw::connect(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_closes_clients() {
    let server = server(ServerConfig::default()).await;
    let (mut client, _) = join(&server, "bye", 2).await;
    drop(server);
    let end = tokio::time::timeout(DEADLINE, client.next_event())
        .await
        .expect("closed within the deadline");
    assert_eq!(end, None);
    assert!(matches!(
        client.signal(PeerId(1), SignalData::EndOfCandidates),
        Err(SignalingError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_websocket_bytes_are_dropped_and_others_keep_working() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = server(ServerConfig::default()).await;
    let mut pair = Pair::new(&server, "ok").await;
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\0\0\0\0\0\0\0\0\r\n\r\n",
    ] {
        let mut tcp = TcpStream::connect(server.local_addr())
            .await
            .expect("tcp connect");
        tcp.write_all(garbage).await.expect("write");
        // The server answers with an HTTP error or just closes; either way the
        // connection ends.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "server kept a garbage connection open");
    }
    pair.assert_working("after garbage").await;
    wait_until(&server, |s| s.connections == 2).await;
}

/// Web files on the signaling port: a browser's GET gets the file (or a 404), a
/// request that trickles in byte by byte too, and WebSocket clients on the same
/// port are matched as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_files_are_served_beside_signaling() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut files = rtcplay::signaling::WebFiles::new();
    files.insert("/index.html", b"<canvas></canvas>".to_vec());
    files.insert("/game_bg.wasm", vec![0, b'a', b's', b'm', 1, 0, 0, 0]);
    let server = server(ServerConfig {
        web_files: Some(Arc::new(files)),
        ..ServerConfig::default()
    })
    .await;
    let get = |request: &'static [u8], trickle: bool| {
        let addr = server.local_addr();
        async move {
            let mut tcp = TcpStream::connect(addr).await.expect("tcp connect");
            if trickle {
                for byte in request {
                    tcp.write_all(&[*byte]).await.expect("write");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            } else {
                tcp.write_all(request).await.expect("write");
            }
            let mut response = Vec::new();
            tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut response))
                .await
                .expect("the server answers and closes")
                .expect("read");
            response
        }
    };
    let index = get(b"GET /?room=a&players=2 HTTP/1.1\r\nHost: x\r\n\r\n", false).await;
    let index = String::from_utf8_lossy(&index);
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    assert!(index.ends_with("\r\n\r\n<canvas></canvas>"), "{index}");
    let wasm = get(b"GET /game_bg.wasm HTTP/1.1\r\nHost: x\r\n\r\n", true).await;
    assert!(String::from_utf8_lossy(&wasm).contains("Content-Type: application/wasm\r\n"));
    assert!(wasm.ends_with(&[0, b'a', b's', b'm', 1, 0, 0, 0]));
    let missing = get(b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", false).await;
    assert!(missing.starts_with(b"HTTP/1.1 404"));
    let mut pair = Pair::new(&server, "beside-files").await;
    pair.assert_working("websocket on the web port").await;
}

/// A `join` with this rejoin token.
fn rejoin_message(room: &str, players: u8, token: &str) -> ClientMessage {
    let mut join = ClientMessage::join(room, players);
    if let ClientMessage::Join { rejoin_token, .. } = &mut join {
        *rejoin_token = Some(token.to_owned());
    }
    join
}

/// A player whose network changed rejoins while the server still sees its old
/// connection: `seat_taken`, the server pings that connection, and as it does not
/// answer it is closed as lost and the seat is held for the retry. A live
/// connection answers the ping and keeps its seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoin_takes_the_seat_of_a_dead_connection_but_never_of_a_live_one() {
    let server = server(ServerConfig::default()).await;
    // The live player: the SDK client reads all the time (and so answers pings).
    let (mut live, live_id) = join(&server, "moved", 2).await;
    // The player whose network goes away: a raw socket we stop reading, so it
    // answers no ping.
    let mut dead = Raw::connect(&server).await;
    let ServerMessage::Welcome(welcome) = dead.join("moved", 2, None).await else {
        panic!("no welcome");
    };
    let token = welcome.rejoin_token.expect("a rejoin token");
    assert_eq!(until_full(&mut live).await.len(), 2);
    // Its `peer_joined` and `room_full`, then it goes silent.
    while !matches!(dead.recv().await, Some(ServerMessage::RoomFull { .. })) {}

    // Its new connection: refused while the old one is open...
    let mut back = Raw::connect(&server).await;
    back.send(&rejoin_message("moved", 2, &token)).await;
    back.expect_error(ErrorCode::SeatTaken).await;
    // ...and welcomed once the unanswered ping has closed the old one.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    back.send(&rejoin_message("moved", 2, &token)).await;
    match back.recv().await {
        Some(ServerMessage::Welcome(w)) => assert_eq!(w.peer_id, welcome.peer_id),
        other => panic!("expected the seat back, got {other:?}"),
    }
    assert_eq!(server.stats().probes_failed, 1);
    assert_eq!(
        next(&mut live).await,
        ServerMessage::PeerLeft {
            peer_id: welcome.peer_id
        }
    );
    assert_eq!(
        next(&mut live).await,
        ServerMessage::PeerRejoined {
            peer_id: welcome.peer_id
        }
    );

    // A live player's seat: a copy of its token is refused, before and after
    // the ping it answers.
    let (_live_a, live_welcome) = SignalingClient::join(&server.url(), "live", 2, None)
        .await
        .expect("join");
    let (_live_b, _) = SignalingClient::join(&server.url(), "live", 2, None)
        .await
        .expect("join");
    let live_token = live_welcome.rejoin_token.expect("a rejoin token");
    let mut thief = Raw::connect(&server).await;
    thief.send(&rejoin_message("live", 2, &live_token)).await;
    thief.expect_error(ErrorCode::SeatTaken).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    thief.send(&rejoin_message("live", 2, &live_token)).await;
    thief.expect_error(ErrorCode::SeatTaken).await;
    assert_eq!(
        server.stats().probes_failed,
        1,
        "the live connection answered"
    );
    drop((live, live_id));
}
