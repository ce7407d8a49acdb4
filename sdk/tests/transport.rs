//! Mesh transport over real WebRTC on 127.0.0.1 with a real signaling server on an
//! ephemeral port. These tests run one at a time (nextest group `webrtc`).

#![cfg(feature = "native")]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rtcplay::signaling::SignalingClient;
use rtcplay::transport::native::Socket;
use rtcplay::transport::{
    CandidateType, Channel, ConnectionState, DisconnectReason, IceServerConfig, PeerId,
    SocketConfig, SocketEvent, Target, Transport, TransportError, MAX_MESSAGE_SIZE,
};
use rtcplay_testkit::events::expect_event;
use rtcplay_testkit::server::LocalServer;
use rtcplay_testkit::turn::{Coturn, TurnAuth};

/// Generous bound for anything that should take milliseconds on loopback.
const PATIENCE: Duration = Duration::from_secs(20);

fn config(server: &LocalServer, room: &str, players: u8) -> SocketConfig {
    let mut config = SocketConfig::new(server.url.clone(), room, players);
    config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    config
}

fn open_room(
    server: &LocalServer,
    room: &str,
    n: u8,
    tweak: impl Fn(&mut SocketConfig),
) -> Vec<Socket> {
    let mut sockets: Vec<Socket> = (0..n)
        .map(|_| {
            let mut config = config(server, room, n);
            tweak(&mut config);
            Socket::new(config).expect("socket starts")
        })
        .collect();
    for socket in &mut sockets {
        expect_event(socket, PATIENCE, "AllConnected", |e| {
            *e == SocketEvent::AllConnected
        });
        // A link's stats are there as soon as it is reported connected (CI once
        // saw none yet: they used to follow the event).
        for peer in socket.connected_peers() {
            let stats = socket.stats(peer).expect("stats on AllConnected");
            assert!(stats.candidate_type.is_some(), "{stats:?}");
            assert!(stats.setup.hello_acked.is_some(), "{stats:?}");
        }
    }
    sockets
}

/// Send a message from every socket to every other on both channels and check each
/// arrives intact, from the right sender, on the right channel. Unreliable messages
/// are re-sent until seen (loss is allowed on that channel, never corruption).
fn exchange_everywhere(sockets: &mut [Socket]) {
    let ids: Vec<PeerId> = sockets
        .iter_mut()
        .map(|s| s.id().expect("has id"))
        .collect();
    let payload = |from: PeerId, to: PeerId, channel: Channel| -> Vec<u8> {
        format!("{channel:?} from {} to {}", from.0, to.0).into_bytes()
    };
    // Reliable: once, to each peer individually.
    for (i, socket) in sockets.iter_mut().enumerate() {
        for &to in ids.iter().filter(|&&p| p != ids[i]) {
            socket
                .send_reliable(to, &payload(ids[i], to, Channel::Reliable))
                .expect("reliable send");
        }
    }
    let mut missing: HashSet<(usize, PeerId, Channel)> = HashSet::new();
    for (i, &me) in ids.iter().enumerate() {
        for &from in ids.iter().filter(|&&p| p != me) {
            missing.insert((i, from, Channel::Reliable));
            missing.insert((i, from, Channel::Unreliable));
        }
    }
    let deadline = Instant::now() + PATIENCE;
    while !missing.is_empty() {
        assert!(Instant::now() < deadline, "never arrived: {missing:?}");
        // Unreliable: to everyone at once, repeated until every copy is seen.
        for (i, socket) in sockets.iter_mut().enumerate() {
            let message = format!("{:?} from {} to all", Channel::Unreliable, ids[i].0);
            socket
                .send_unreliable(Target::All, message.as_bytes())
                .expect("unreliable send");
        }
        for (i, socket) in sockets.iter_mut().enumerate() {
            if let Some(first) = socket.wait_message(Duration::from_millis(20)) {
                let mut arrived = vec![first];
                arrived.extend(socket.receive());
                for message in arrived {
                    let expected = match message.channel {
                        Channel::Reliable => payload(message.from, ids[i], Channel::Reliable),
                        Channel::Unreliable => {
                            format!("{:?} from {} to all", Channel::Unreliable, message.from.0)
                                .into_bytes()
                        }
                    };
                    assert_eq!(message.data, expected, "payload intact");
                    missing.remove(&(i, message.from, message.channel));
                }
            }
        }
    }
}

#[test]
fn two_peer_room_exchanges_on_both_channels() {
    let server = LocalServer::start();
    let mut sockets = open_room(&server, "two", 2, |_| {});
    let ids: Vec<PeerId> = sockets.iter_mut().map(|s| s.id().expect("id")).collect();
    assert_ne!(ids[0], ids[1]);
    for (socket, other) in sockets.iter_mut().zip([ids[1], ids[0]]) {
        assert_eq!(socket.connected_peers(), vec![other]);
    }
    exchange_everywhere(&mut sockets);
    // Stats: connected over a host candidate, setup stages in order, RTT measured.
    let deadline = Instant::now() + PATIENCE;
    for (socket, other) in sockets.iter_mut().zip([ids[1], ids[0]]) {
        let stats = loop {
            let stats = socket.stats(other).expect("stats");
            if stats.rtt.is_some() {
                break stats;
            }
            assert!(Instant::now() < deadline, "no RTT sample");
            socket.wait_event(Duration::from_millis(50));
        };
        assert_eq!(stats.state, ConnectionState::Connected);
        assert_eq!(stats.candidate_type, Some(CandidateType::Host));
        let s = stats.setup;
        let (ice, dtls, open, hello) = (
            s.ice_connected.expect("ice"),
            s.dtls_connected.expect("dtls"),
            s.channels_open.expect("open"),
            s.hello_acked.expect("hello"),
        );
        assert!(ice <= dtls && dtls <= open && open <= hello, "{s:?}");
        assert!(stats.bytes_in > 0 && stats.bytes_out > 0, "{stats:?}");
    }
}

#[test]
fn four_peer_mesh_exchanges_in_every_direction() {
    let server = LocalServer::start();
    let mut sockets = open_room(&server, "four", 4, |_| {});
    for socket in &mut sockets {
        assert_eq!(socket.connected_peers().len(), 3);
    }
    exchange_everywhere(&mut sockets);
}

#[test]
fn eight_peer_mesh_the_largest_room_exchanges_in_every_direction() {
    let server = LocalServer::start();
    let mut sockets = open_room(&server, "eight", 8, |_| {});
    for socket in &mut sockets {
        assert_eq!(socket.connected_peers().len(), 7);
    }
    exchange_everywhere(&mut sockets);
}

#[test]
fn socket_serves_the_session_through_the_transport_trait() {
    let server = LocalServer::start();
    let mut sockets = open_room(&server, "trait", 2, |_| {});
    let mut b = sockets.pop().expect("two");
    let mut a = sockets.pop().expect("two");
    let (a_id, b_id) = (a.id().expect("id"), b.id().expect("id"));
    // Reliable traffic is not mixed into the session's datagrams.
    a.send_reliable(b_id, b"control").expect("send");
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(Instant::now() < deadline, "no datagram through the trait");
        Transport::send_to(&mut a, b_id, b"datagram");
        std::thread::sleep(Duration::from_millis(5));
        Transport::receive(&mut b, &mut got);
    }
    assert!(got
        .iter()
        .all(|(from, data)| *from == a_id && data == b"datagram"));
    let control = b
        .wait_message(PATIENCE)
        .expect("reliable message kept for receive()");
    assert_eq!(
        (control.channel, &control.data[..]),
        (Channel::Reliable, &b"control"[..])
    );
}

#[test]
fn dropped_socket_is_reported_disconnected_within_the_bound() {
    let server = LocalServer::start();
    let bound = Duration::from_secs(3);
    let mut sockets = open_room(&server, "drop", 2, |c| c.disconnect_timeout = bound);
    let gone = sockets.pop().expect("two sockets");
    let mut stays = sockets.pop().expect("two sockets");
    let started = Instant::now();
    drop(gone);
    let event = expect_event(
        &mut stays,
        bound + Duration::from_secs(2),
        "PeerDisconnected",
        |e| matches!(e, SocketEvent::PeerDisconnected { .. }),
    );
    assert!(matches!(
        event,
        SocketEvent::PeerDisconnected {
            reason: DisconnectReason::Closed,
            ..
        }
    ));
    assert!(
        started.elapsed() < bound,
        "a polite close is reported at once"
    );
    assert!(stays.connected_peers().is_empty());
    let peer = match event {
        SocketEvent::PeerDisconnected { peer, .. } => peer,
        _ => unreachable!(),
    };
    assert!(matches!(
        stays.send_unreliable(peer, b"anyone?"),
        Err(TransportError::NotConnected(p)) if p == peer
    ));
}

#[test]
fn oversize_message_is_a_clear_error_and_the_limit_itself_works() {
    let server = LocalServer::start();
    let mut sockets = open_room(&server, "size", 2, |_| {});
    let to = sockets[1].id().expect("id");
    let too_big = vec![1u8; MAX_MESSAGE_SIZE + 1];
    for result in [
        sockets[0].send_unreliable(to, &too_big),
        sockets[0].send_reliable(Target::All, &too_big),
    ] {
        assert_eq!(
            result,
            Err(TransportError::MessageTooLarge {
                size: MAX_MESSAGE_SIZE + 1,
                max: MAX_MESSAGE_SIZE
            })
        );
    }
    // The limit itself goes through on both channels (64 KiB: the number both
    // sides advertise, docs/transport.md, Limits).
    assert_eq!(MAX_MESSAGE_SIZE, 65_535);
    let largest: Vec<u8> = (0..MAX_MESSAGE_SIZE).map(|i| (i % 251) as u8).collect();
    for channel in [Channel::Reliable, Channel::Unreliable] {
        let sent = match channel {
            Channel::Reliable => sockets[0].send_reliable(to, &largest),
            Channel::Unreliable => sockets[0].send_unreliable(to, &largest),
        };
        sent.expect("the limit is allowed");
        let message = sockets[1]
            .wait_message(PATIENCE)
            .expect("largest message arrives");
        assert_eq!(message.channel, channel);
        assert_eq!(message.data, largest);
    }
    let from = sockets[0].id().expect("id");
    let stats = sockets[0].stats(to).expect("stats");
    assert_eq!(stats.dropped_oversize, 0);
    assert_eq!(sockets[1].stats(from).expect("stats").dropped_oversize, 0);
}

#[test]
fn dead_signaling_server_is_an_error_event() {
    // Nobody listens on this port (bound, then closed).
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut unreachable = SocketConfig::new(format!("ws://127.0.0.1:{port}"), "nobody", 2);
    unreachable.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    let mut socket = Socket::new(unreachable).expect("socket starts");
    let event = socket.wait_event(PATIENCE).expect("an event");
    assert!(
        matches!(event, SocketEvent::Error(TransportError::Signaling(_))),
        "{event:?}"
    );

    // A server that goes away before the room is full.
    let mut server = LocalServer::start();
    let mut socket = Socket::new(config(&server, "half", 2)).expect("socket");
    expect_event(&mut socket, PATIENCE, "Joined", |e| {
        matches!(e, SocketEvent::Joined { .. })
    });
    server.stop();
    assert_eq!(
        next_significant_event(&mut socket),
        SocketEvent::Error(TransportError::SignalingClosed)
    );
}

#[test]
fn invalid_room_size_is_rejected_up_front() {
    for players in [0, 1, 9] {
        let result = Socket::new(SocketConfig::new("ws://127.0.0.1:1", "x", players));
        assert!(matches!(result, Err(TransportError::InvalidConfig(_))));
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

#[test]
fn memory_does_not_grow_across_connect_close_cycles() {
    let server = LocalServer::start();
    let cycle = |n: usize| {
        let mut sockets = open_room(&server, &format!("mem-{n}"), 2, |_| {});
        exchange_everywhere(&mut sockets);
        drop(sockets);
    };
    for n in 0..5 {
        cycle(n);
    }
    let before = rss_kib();
    for n in 5..25 {
        cycle(n);
    }
    let after = rss_kib();
    let growth = after.saturating_sub(before);
    // A leaked connection costs ~270–520 KB, so 40 leaked connections would be ≥ 10 MB;
    // a leaked signaling client (128 KiB read buffer) 5 MB. Noise here is ~0.5 MB.
    assert!(
        growth < 3 * 1024,
        "RSS grew by {growth} KiB over 20 cycles ({before} → {after} KiB)"
    );
}

/// The next event that is not about the room filling (`Joined`,
/// `WaitingForPlayers`, `RoomFull`).
fn next_significant_event(socket: &mut Socket) -> SocketEvent {
    loop {
        match socket.wait_event(PATIENCE) {
            Some(
                SocketEvent::Joined { .. }
                | SocketEvent::WaitingForPlayers { .. }
                | SocketEvent::RoomFull { .. },
            ) => continue,
            Some(event) => return event,
            None => panic!("no event within {PATIENCE:?}"),
        }
    }
}

#[test]
fn sockets_hear_the_room_fill_and_a_spectator_connects_to_the_host_only() {
    let server = LocalServer::start();
    // Players join one by one and hear the room fill.
    let mut players: Vec<Socket> = Vec::new();
    let player_config = || {
        let mut c = config(&server, "watched", 3);
        c.handshake_timeout = Duration::from_secs(1);
        c
    };
    for n in 1..=3 {
        players.push(Socket::new(player_config()).expect("socket"));
        // The newcomer hears of everyone here; the others of the newcomer.
        for socket in &mut players {
            expect_event(socket, PATIENCE, "WaitingForPlayers", |e| {
                *e == SocketEvent::WaitingForPlayers { have: n, need: 3 }
            });
        }
    }
    let mut ids = Vec::new();
    for socket in &mut players {
        let full = expect_event(socket, PATIENCE, "RoomFull", |e| {
            matches!(e, SocketEvent::RoomFull { .. })
        });
        let SocketEvent::RoomFull { players: list } = full else {
            unreachable!()
        };
        ids = list;
        expect_event(socket, PATIENCE, "AllConnected", |e| {
            *e == SocketEvent::AllConnected
        });
    }
    assert_eq!(ids.len(), 3);
    let host = ids[0];
    let own: Vec<PeerId> = players.iter_mut().map(|s| s.id().expect("id")).collect();
    let host_index = own
        .iter()
        .position(|p| *p == host)
        .expect("host is a player");
    // The match has now run longer than the players' handshake timeout: the host's
    // attempt to a spectator gets a timeout of its own.
    std::thread::sleep(Duration::from_millis(1500));
    // A spectator joins the running match and connects to the host alone.
    let mut watcher_config = config(&server, "watched", 3);
    watcher_config.spectator = true;
    let mut watcher = Socket::new(watcher_config).expect("spectator socket");
    expect_event(&mut watcher, PATIENCE, "RoomFull", |e| {
        *e == SocketEvent::RoomFull {
            players: ids.clone(),
        }
    });
    expect_event(&mut watcher, PATIENCE, "AllConnected", |e| {
        *e == SocketEvent::AllConnected
    });
    let me = watcher.id().expect("spectator id");
    assert_eq!(watcher.connected_peers(), vec![host]);
    let host_socket = &mut players[host_index];
    expect_event(host_socket, PATIENCE, "SpectatorConnected", |e| {
        *e == SocketEvent::SpectatorConnected(me)
    });
    // Both ways, both channels.
    host_socket
        .send_reliable(me, b"to the spectator")
        .expect("send");
    let got = watcher.wait_message(PATIENCE).expect("host message");
    assert_eq!((got.from, &got.data[..]), (host, &b"to the spectator"[..]));
    watcher
        .send_unreliable(Target::Peer(host), b"hello host")
        .expect("send");
    let got = host_socket
        .wait_message(PATIENCE)
        .expect("spectator message");
    assert_eq!((got.from, &got.data[..]), (me, &b"hello host"[..]));
    // The other players never connect to the spectator.
    for (_, socket) in players
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| *i != host_index)
    {
        assert!(!socket.connected_peers().contains(&me));
        let events = socket.events();
        assert!(
            !events.iter().any(|e| matches!(
                e,
                SocketEvent::SpectatorConnected(_) | SocketEvent::PeerConnected(_)
            )),
            "{events:?}"
        );
    }
    // The spectator leaving is a disconnect at the host, not an error.
    drop(watcher);
    let host_socket = &mut players[host_index];
    let left = expect_event(host_socket, PATIENCE, "spectator gone", |e| {
        matches!(e, SocketEvent::PeerDisconnected { .. })
    });
    assert!(matches!(left, SocketEvent::PeerDisconnected { peer, .. } if peer == me));
}

#[test]
fn member_that_never_answers_is_a_handshake_timeout() {
    let server = LocalServer::start();
    let mut silent_config = config(&server, "silent", 2);
    silent_config.handshake_timeout = Duration::from_millis(500);
    let mut socket = Socket::new(silent_config).expect("socket");
    expect_event(&mut socket, PATIENCE, "Joined", |e| {
        matches!(e, SocketEvent::Joined { .. })
    });
    // A member that joins through signaling but never takes part in WebRTC.
    let started = Instant::now();
    let (silent, welcome) = server
        .block_on(SignalingClient::join(&server.url, "silent", 2, None))
        .expect("silent member joins");
    assert_eq!(
        next_significant_event(&mut socket),
        SocketEvent::Error(TransportError::HandshakeTimeout(welcome.peer_id))
    );
    // The clock starts at "room full", which comes after the join began.
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(socket.connected_peers().is_empty());
    drop(silent);
}

#[test]
fn member_that_leaves_before_connecting_is_reported() {
    let server = LocalServer::start();
    let mut socket = Socket::new(config(&server, "leaver", 2)).expect("socket");
    expect_event(&mut socket, PATIENCE, "Joined", |e| {
        matches!(e, SocketEvent::Joined { .. })
    });
    let (leaver, welcome) = server
        .block_on(SignalingClient::join(&server.url, "leaver", 2, None))
        .expect("member joins");
    drop(leaver);
    assert_eq!(
        next_significant_event(&mut socket),
        SocketEvent::Error(TransportError::PeerLeft(welcome.peer_id))
    );
}

#[test]
fn unreliable_flood_drops_the_oldest_and_stays_fresh_and_bounded() {
    let server = LocalServer::start();
    let mut sockets = open_room(&server, "flood", 2, |_| {});
    let mut receiver = sockets.pop().expect("two");
    let mut sender = sockets.pop().expect("two");
    let to = receiver.id().expect("id");
    let rss_before = rss_kib();
    // 200 MB offered as fast as the game thread can: far more than the link takes.
    const COUNT: u32 = 160_000;
    let mut payload = vec![0u8; 1200];
    for seq in 0..COUNT {
        payload[..4].copy_from_slice(&seq.to_le_bytes());
        sender
            .send_unreliable(to, &payload)
            .expect("send never fails or blocks");
    }
    let rss_after_flood = rss_kib();
    // Fresh, not buffered: a datagram sent after the flood gets through without
    // waiting behind the backlog (the tail of the flood itself may be lost on the
    // wire: it is unreliable).
    const MARKER: u32 = u32::MAX;
    let mut received = 0u64;
    let mut marker_seen = false;
    let mut markers_sent = 0u64;
    let deadline = Instant::now() + PATIENCE;
    while !marker_seen {
        assert!(
            Instant::now() < deadline,
            "marker never arrived ({received} received)"
        );
        payload[..4].copy_from_slice(&MARKER.to_le_bytes());
        sender.send_unreliable(to, &payload).expect("send");
        markers_sent += 1;
        if let Some(first) = receiver.wait_message(Duration::from_millis(10)) {
            let mut batch = vec![first];
            batch.extend(receiver.receive());
            for message in batch {
                let seq = u32::from_le_bytes(message.data[..4].try_into().expect("4 bytes"));
                if seq == MARKER {
                    marker_seen = true;
                } else {
                    assert!(seq < COUNT);
                    received += 1;
                }
            }
        }
    }
    let stats = sender.stats(to).expect("stats");
    assert!(stats.dropped_unreliable > 0, "{stats:?}");
    assert!(
        received + stats.dropped_unreliable <= u64::from(COUNT) + markers_sent,
        "nothing is duplicated: {received} received, {stats:?}"
    );
    // Queues are bounded: the flood did not pile up in memory (an unbounded queue
    // holds ~190 MB here).
    let growth = rss_after_flood.saturating_sub(rss_before);
    assert!(growth < 32 * 1024, "RSS grew {growth} KiB during the flood");
}

#[test]
fn relay_only_peers_connect_through_a_real_turn_server() {
    const USER: &str = "rtcplay";
    const PASSWORD: &str = "secret";
    let turn = Coturn::start(TurnAuth::User {
        name: USER,
        password: PASSWORD,
    });
    let server = LocalServer::start();
    let mut sockets = open_room(&server, "relay", 2, |c| {
        c.relay_only = true;
        c.ice_servers = vec![IceServerConfig::turn(turn.url.clone(), USER, PASSWORD)];
    });
    exchange_everywhere(&mut sockets);
    for socket in &mut sockets {
        let peer = socket.connected_peers()[0];
        assert_eq!(
            socket.stats(peer).and_then(|s| s.candidate_type),
            Some(CandidateType::Relay)
        );
    }
    drop(sockets);
    drop(turn);
}

#[test]
fn peers_without_any_ice_path_get_a_clear_error_and_no_connection() {
    // Relay-only peers whose TURN server never answers: neither side has a single
    // candidate, so ICE can find no path. A UDP socket we hold open swallows the TURN
    // requests (no ICMP "port unreachable" shortcut).
    let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind black hole");
    let turn_url = format!("turn:{}", black_hole.local_addr().expect("addr"));
    let server = LocalServer::start();
    let handshake_timeout = Duration::from_secs(2);
    let mut sockets: Vec<Socket> = (0..2)
        .map(|_| {
            let mut c = config(&server, "no-path", 2);
            c.relay_only = true;
            c.handshake_timeout = handshake_timeout;
            c.ice_servers = vec![IceServerConfig::turn(turn_url.clone(), "user", "pass")];
            Socket::new(c).expect("socket starts")
        })
        .collect();
    let ids: Vec<PeerId> = sockets
        .iter_mut()
        .map(|s| {
            match expect_event(s, PATIENCE, "Joined", |e| {
                matches!(e, SocketEvent::Joined { .. })
            }) {
                SocketEvent::Joined { me } => me,
                other => unreachable!("{other:?}"),
            }
        })
        .collect();
    for (i, socket) in sockets.iter_mut().enumerate() {
        let other = ids[1 - i];
        let event = next_significant_event(socket);
        assert!(
            matches!(
                event,
                SocketEvent::Error(TransportError::IceFailed(peer))
                    | SocketEvent::Error(TransportError::HandshakeTimeout(peer))
                    if peer == other
            ),
            "peer {i}: expected an ICE failure or handshake timeout for {other:?}, got {event:?}"
        );
        assert!(socket.connected_peers().is_empty());
        // Nothing goes out to a peer that never connected: a clear error, no panic.
        assert_eq!(
            socket.send_unreliable(Target::Peer(other), b"lost"),
            Err(TransportError::NotConnected(other))
        );
    }
}
