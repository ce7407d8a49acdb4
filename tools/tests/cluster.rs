//! Several `rtcplay-signal` nodes sharing rooms through a real `nats-server`
//! (JetStream on), all on 127.0.0.1: clients on different nodes meet, connect
//! over real WebRTC, fill rooms exactly once under racing joins, and the
//! cluster survives a node killed and the broker restarted.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtcplay::signaling::{
    ClientConfig, ErrorCode, ServerMessage, SignalData, SignalingClient, SignalingError,
};
use rtcplay::transport::native::Socket;
use rtcplay::transport::{PeerId, SocketConfig, SocketEvent, Target};
use rtcplay_testkit::cluster::{wait_for_cluster, Nats, SignalNode};
use rtcplay_testkit::events::expect_event;
use rtcplay_testkit::proxy::TcpProxy;

const BIN: &str = env!("CARGO_BIN_EXE_rtcplay-signal");
/// Generous bound for what takes milliseconds on loopback.
const PATIENCE: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn socket_config(url: &str, room: &str, players: u8) -> SocketConfig {
    let mut config = SocketConfig::new(url, room, players);
    config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    config
}

/// Every socket connects to every other, and each sends one reliable message
/// to each other that arrives intact.
fn connect_and_exchange(sockets: &mut [Socket]) {
    for socket in sockets.iter_mut() {
        expect_event(socket, PATIENCE, "AllConnected", |e| {
            *e == SocketEvent::AllConnected
        });
    }
    let ids: Vec<PeerId> = sockets.iter_mut().map(|s| s.id().unwrap()).collect();
    for (i, socket) in sockets.iter_mut().enumerate() {
        for &to in ids.iter().filter(|&&p| p != ids[i]) {
            let text = format!("from {} to {}", ids[i].0, to.0);
            socket.send_reliable(to, text.as_bytes()).unwrap();
        }
    }
    for (i, socket) in sockets.iter_mut().enumerate() {
        let mut heard = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        while heard.len() < ids.len() - 1 {
            assert!(Instant::now() < deadline, "socket {i} heard only {heard:?}");
            for message in socket.wait_message(Duration::from_millis(50)).into_iter() {
                let expected = format!("from {} to {}", message.from.0, ids[i].0);
                assert_eq!(message.data, expected.into_bytes());
                heard.push(message.from);
            }
        }
    }
}

#[test]
fn clients_on_different_nodes_meet_and_connect_over_webrtc() {
    let nats = Nats::start();
    let nodes: Vec<SignalNode> = (0..3)
        .map(|_| SignalNode::start(BIN, &nats.url(), &[]))
        .collect();
    wait_for_cluster(&nodes.iter().collect::<Vec<_>>());

    // Two players, one per node.
    let mut duel: Vec<Socket> = (0..2)
        .map(|i| Socket::new(socket_config(&nodes[i].url, "duel", 2)).unwrap())
        .collect();
    connect_and_exchange(&mut duel);

    // Four players spread over three nodes.
    let mut four: Vec<Socket> = [0, 1, 2, 1]
        .iter()
        .map(|&n| Socket::new(socket_config(&nodes[n].url, "four", 4)).unwrap())
        .collect();
    connect_and_exchange(&mut four);

    // The rooms live on one node each; the others routed their clients there.
    let homed: u64 = nodes
        .iter()
        .map(|n| n.cluster_stat("homed_names").as_u64().unwrap())
        .sum();
    assert_eq!(homed, 2, "each room name has one home");
    let routed: u64 = nodes
        .iter()
        .map(|n| n.cluster_stat("routed_clients").as_u64().unwrap())
        .sum();
    let remote: u64 = nodes
        .iter()
        .map(|n| n.cluster_stat("remote_members").as_u64().unwrap())
        .sum();
    assert_eq!(
        routed, remote,
        "every routed client is a remote member at its home"
    );
    assert!(
        routed >= 3,
        "at least one duelist and two of four are elsewhere: {routed}"
    );
    // The unreliable channel too, now that everyone is connected.
    four[0].send_unreliable(Target::All, b"all of you").unwrap();
}

/// One client: joins, reads until `room_full`, then tells its partner a
/// nonce and returns (its nonce, the nonce its partner told it).
async fn duel_client(url: String, nonce: u64) -> Result<(u64, u64), String> {
    let (mut client, welcome) = SignalingClient::join(&url, "rush", 2, None)
        .await
        .map_err(|e| format!("join: {e}"))?;
    let mut partner = None;
    let mut told = None;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .map_err(|_| format!("client {nonce}: stuck (partner {partner:?})"))?;
        match event {
            Some(ServerMessage::RoomFull { peers }) => {
                if partner.is_some() {
                    return Err(format!("client {nonce}: a second room_full"));
                }
                if peers.len() != 2 || !peers.contains(&welcome.peer_id) {
                    return Err(format!("client {nonce}: room_full {peers:?}"));
                }
                let other = *peers.iter().find(|p| **p != welcome.peer_id).unwrap();
                partner = Some(other);
                client
                    .signal(
                        other,
                        SignalData::Offer {
                            sdp: nonce.to_string(),
                        },
                    )
                    .map_err(|e| format!("signal: {e}"))?;
            }
            Some(ServerMessage::Signal {
                data: SignalData::Offer { sdp },
                ..
            }) => told = Some(sdp.parse::<u64>().map_err(|e| e.to_string())?),
            Some(ServerMessage::PeerJoined { .. }) => {}
            Some(other) => return Err(format!("client {nonce}: unexpected {other:?}")),
            None => return Err(format!("client {nonce}: connection closed")),
        }
        if let (Some(_), Some(told)) = (partner, told) {
            // Stay connected until everyone is done (a departure would tell
            // the partner `peer_left`).
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Ok((nonce, told));
        }
    }
}

#[test]
fn a_thousand_racing_joins_over_three_nodes_fill_500_rooms_exactly_once() {
    let nats = Nats::start();
    let nodes: Vec<SignalNode> = (0..3)
        .map(|_| SignalNode::start(BIN, &nats.url(), &[]))
        .collect();
    wait_for_cluster(&nodes.iter().collect::<Vec<_>>());
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let results = runtime().block_on(async {
        let tasks: Vec<_> = (0..1000u64)
            .map(|i| tokio::spawn(duel_client(urls[i as usize % 3].clone(), i)))
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    // Who told whom: a perfect matching (each client's partner names it back).
    let told: HashMap<u64, u64> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(told.len(), 1000);
    for (&me, &partner) in &told {
        assert_ne!(me, partner);
        assert_eq!(
            told[&partner], me,
            "{me} heard {partner}, who heard {}",
            told[&partner]
        );
    }
    let created: u64 = nodes
        .iter()
        .map(|n| n.stats()["rooms_created"].as_u64().unwrap())
        .sum();
    assert_eq!(created, 500, "500 rooms, each filled once");
}

/// Join `room` (2 players) on `url`; the welcome or the refusal.
async fn try_join(url: &str, room: &str) -> Result<(SignalingClient, PeerId), SignalingError> {
    SignalingClient::join(url, room, 2, None)
        .await
        .map(|(client, welcome)| (client, welcome.peer_id))
}

async fn expect_room_full(client: &mut SignalingClient) {
    loop {
        let event = tokio::time::timeout(PATIENCE, client.next_event())
            .await
            .expect("room_full in time");
        match event {
            Some(ServerMessage::RoomFull { peers }) => {
                assert_eq!(peers.len(), 2);
                return;
            }
            Some(ServerMessage::PeerJoined { .. }) => {}
            other => panic!("expected room_full, got {other:?}"),
        }
    }
}

#[test]
fn nodes_keep_their_own_rooms_while_nats_is_down_and_recover_when_it_is_back() {
    let mut nats = Nats::start();
    let a = SignalNode::start(BIN, &nats.url(), &[]);
    let b = SignalNode::start(BIN, &nats.url(), &[]);
    wait_for_cluster(&[&a, &b]);
    let rt = runtime();
    // A room homed on `a`, its first player waiting.
    let (mut first, first_id) = rt.block_on(try_join(&a.url, "local")).unwrap();
    // A room of three homed on `a` that `b` routed a player to (so `b` knows
    // where the name lives).
    let (_on_a, _) = rt
        .block_on(SignalingClient::join(&a.url, "known", 3, None))
        .unwrap();
    let (_on_b, _) = rt
        .block_on(SignalingClient::join(&b.url, "known", 3, None))
        .unwrap();

    nats.kill();
    for node in [&a, &b] {
        node.wait_until("the node notices the broker is gone", PATIENCE, |s| {
            s["cluster"]["broker_connected"] == false
        });
    }
    // `a` still serves the room whose members are all on it.
    let (mut second, second_id) = rt.block_on(try_join(&a.url, "local")).unwrap();
    rt.block_on(async {
        expect_room_full(&mut first).await;
        expect_room_full(&mut second).await;
    });
    // A new room name cannot be claimed without the broker, nor a room on
    // another node reached: clear refusals, at once.
    match rt.block_on(try_join(&b.url, "elsewhere")) {
        Err(SignalingError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Unavailable),
        other => panic!("expected unavailable, got {:?}", other.map(|_| ())),
    }
    let known = rt.block_on(SignalingClient::join(&b.url, "known", 3, None));
    match known {
        Err(SignalingError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Unavailable),
        other => panic!("expected unavailable, got {:?}", other.map(|_| ())),
    }

    // The broker comes back (empty: it kept nothing): no node restarts.
    nats.restart();
    wait_for_cluster(&[&a, &b]);
    assert!(a.cluster_stat("broker_disconnects").as_u64().unwrap() >= 1);
    rt.block_on(async {
        let (mut on_a, _) = try_join(&a.url, "after").await.unwrap();
        let (mut on_b, _) = try_join(&b.url, "after").await.unwrap();
        expect_room_full(&mut on_a).await;
        expect_room_full(&mut on_b).await;
        // The room of before the outage still relays.
        assert_ne!(first_id, second_id);
        first
            .signal(second_id, SignalData::EndOfCandidates)
            .unwrap();
        let relayed = tokio::time::timeout(PATIENCE, second.next_event())
            .await
            .unwrap();
        assert!(
            matches!(relayed, Some(ServerMessage::Signal { .. })),
            "{relayed:?}"
        );
    });
}

/// Two players on nodes `homes[0]` and `homes[1]`, each told the other node
/// too, connected and playing.
fn connected_pair(first: &SignalNode, second: &SignalNode, room: &str) -> Vec<Socket> {
    let socket = |main: &SignalNode, other: &SignalNode| {
        let mut config = socket_config(&main.url, room, 2);
        config.fallback_signaling_urls = vec![other.url.clone()];
        Socket::new(config).unwrap()
    };
    // The first one's node becomes the room's home.
    let mut sockets = vec![socket(first, second)];
    expect_event(&mut sockets[0], PATIENCE, "WaitingForPlayers", |e| {
        matches!(e, SocketEvent::WaitingForPlayers { .. })
    });
    sockets.push(socket(second, first));
    connect_and_exchange(&mut sockets);
    sockets
}

/// Keep both playing (a reliable message each way per round) until `until`
/// holds for the events seen; fails on a disconnection or reconnection.
fn keep_playing(
    sockets: &mut [Socket],
    what: &str,
    mut until: impl FnMut(usize, &SocketEvent) -> bool,
) {
    let ids: Vec<PeerId> = sockets.iter_mut().map(|s| s.id().unwrap()).collect();
    let deadline = Instant::now() + PATIENCE;
    let mut done = false;
    let mut round = 0u32;
    while !done {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        round += 1;
        for (i, socket) in sockets.iter_mut().enumerate() {
            let to = ids[1 - i];
            socket.send_reliable(to, &round.to_be_bytes()).unwrap();
        }
        for (i, socket) in sockets.iter_mut().enumerate() {
            let mut got = 0;
            let round_deadline = Instant::now() + PATIENCE;
            while got == 0 {
                assert!(
                    Instant::now() < round_deadline,
                    "{what}: socket {i} stopped hearing"
                );
                got += socket
                    .wait_message(Duration::from_millis(20))
                    .into_iter()
                    .count();
                socket.receive();
            }
            while let Some(event) = socket.wait_event(Duration::ZERO) {
                assert!(
                    !matches!(
                        event,
                        SocketEvent::PeerDisconnected { .. } | SocketEvent::PeerReconnecting(_)
                    ),
                    "{what}: the match was disturbed: {event:?}"
                );
                if until(i, &event) {
                    done = true;
                }
            }
        }
    }
}

#[test]
fn a_killed_node_takes_only_its_connections_and_its_clients_resume_through_another() {
    let nats = Nats::start();
    let home = SignalNode::start(BIN, &nats.url(), &[]);
    let mut edge = SignalNode::start(BIN, &nats.url(), &[]);
    wait_for_cluster(&[&home, &edge]);
    let mut sockets = connected_pair(&home, &edge, "kill-edge");
    assert_eq!(home.cluster_stat("remote_members"), 1);

    // The second player's node dies: its signaling connection goes, the match
    // does not; it takes its seat back through the room's node.
    edge.kill();
    keep_playing(
        &mut sockets,
        "the second player resumes signaling",
        |i, event| {
            assert_ne!(
                *event,
                SocketEvent::SignalingLost,
                "socket {i} gave signaling up"
            );
            i == 1 && *event == SocketEvent::SignalingResumed
        },
    );
    let stats = home.stats();
    assert_eq!(
        stats["peers"], 2,
        "both players are members on the room's node"
    );
    assert_eq!(stats["cluster"]["remote_members"], 0);
    assert_eq!(stats["cluster"]["nodes"], 1);
}

#[test]
fn when_a_rooms_node_dies_its_matches_play_on_and_its_filling_rooms_fail_clearly() {
    let nats = Nats::start();
    let mut home = SignalNode::start(BIN, &nats.url(), &[]);
    let edge = SignalNode::start(BIN, &nats.url(), &[]);
    wait_for_cluster(&[&home, &edge]);
    let mut sockets = connected_pair(&home, &edge, "kill-home");
    // A room of three still filling, homed on `home`, one player on each node.
    let rt = runtime();
    let (_creator, _) = rt
        .block_on(SignalingClient::join(&home.url, "filling", 3, None))
        .unwrap();
    let (mut waiter, _) = rt
        .block_on(SignalingClient::join(&edge.url, "filling", 3, None))
        .unwrap();

    home.kill();
    // The waiting player is told its room is gone.
    rt.block_on(async {
        loop {
            match tokio::time::timeout(PATIENCE, waiter.next_event())
                .await
                .unwrap()
            {
                Some(ServerMessage::Error { code, .. }) => {
                    assert_eq!(code, ErrorCode::RoomLost);
                    break;
                }
                Some(ServerMessage::PeerJoined { .. } | ServerMessage::PeerLeft { .. }) => {}
                other => panic!("expected room_lost, got {other:?}"),
            }
        }
    });
    // The match formed through the dead node plays on; neither player can take
    // its seat back (the room died with its node), so both give signaling up.
    let mut lost = [false, false];
    keep_playing(
        &mut sockets,
        "both players give signaling up",
        |i, event| {
            if *event == SocketEvent::SignalingLost {
                lost[i] = true;
            }
            lost == [true, true]
        },
    );
    // The second player, the waiting one (and the first player's resume
    // attempt if it went to the dead node before it was found dead).
    assert!(edge.cluster_stat("rooms_lost").as_u64().unwrap() >= 2);
}

/// Events of `client` until one matches `want` (others skipped).
async fn until(
    client: &mut SignalingClient,
    what: &str,
    want: impl Fn(&ServerMessage) -> bool,
) -> ServerMessage {
    loop {
        let event = tokio::time::timeout(PATIENCE, client.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {PATIENCE:?}"))
            .unwrap_or_else(|| panic!("closed while waiting for {what}"));
        if want(&event) {
            return event;
        }
        assert!(
            !matches!(event, ServerMessage::Error { .. }),
            "error while waiting for {what}: {event:?}"
        );
    }
}

#[test]
fn private_rooms_spectators_rejoin_and_turn_credentials_work_across_nodes() {
    let nats = Nats::start();
    let turn = [
        "--turn-url",
        "turn:127.0.0.1:3478",
        "--turn-secret",
        "cluster-secret",
    ];
    let nodes: Vec<SignalNode> = (0..3)
        .map(|_| SignalNode::start(BIN, &nats.url(), &turn))
        .collect();
    wait_for_cluster(&nodes.iter().collect::<Vec<_>>());
    let url = |i: usize| nodes[i].url.clone();
    let with = |secret: &str| ClientConfig {
        room_secret: Some(secret.into()),
        ..ClientConfig::default()
    };
    runtime().block_on(async {
        // Private rooms: only joiners with the same secret meet, whatever node.
        let (mut x1, w1) = SignalingClient::join_with_config(&url(0), "priv", 2, None, with("s1"))
            .await
            .unwrap();
        let (mut x2, _) = SignalingClient::join_with_config(&url(1), "priv", 2, None, with("s2"))
            .await
            .unwrap();
        let (mut x3, w3) = SignalingClient::join_with_config(&url(2), "priv", 2, None, with("s1"))
            .await
            .unwrap();
        let (mut x4, _) = SignalingClient::join_with_config(&url(0), "priv", 2, None, with("s2"))
            .await
            .unwrap();
        for (client, name) in [
            (&mut x1, "x1"),
            (&mut x3, "x3"),
            (&mut x2, "x2"),
            (&mut x4, "x4"),
        ] {
            until(client, &format!("{name}'s room_full"), |e| {
                matches!(e, ServerMessage::RoomFull { .. })
            })
            .await;
        }
        // TURN credentials are made by the client's own node, with the shared secret.
        for welcome in [&w1, &w3] {
            let turn = welcome
                .ice_servers
                .iter()
                .find(|s| s.urls.iter().any(|u| u.starts_with("turn:")))
                .expect("a TURN server in the welcome");
            assert!(turn.username.is_some() && turn.credential.is_some());
        }

        // A spectator on a third node joins the running private match.
        let spectate = ClientConfig {
            spectator: true,
            ..with("s1")
        };
        let (mut watcher, ws) =
            SignalingClient::join_with_config(&url(1), "priv", 2, None, spectate)
                .await
                .unwrap();
        assert!(ws.spectator);
        until(&mut watcher, "the spectator's room_full", |e| {
            matches!(e, ServerMessage::RoomFull { .. })
        })
        .await;
        for player in [&mut x1, &mut x3] {
            until(player, "peer_joined of the spectator", |e| {
                matches!(
                    e,
                    ServerMessage::PeerJoined {
                        spectator: true,
                        ..
                    }
                )
            })
            .await;
        }

        // A player drops and takes its seat back through another node.
        let token = w3.rejoin_token.clone().expect("players get rejoin tokens");
        drop(x3);
        until(&mut x1, "peer_left", |e| {
            *e == ServerMessage::PeerLeft {
                peer_id: w3.peer_id,
            }
        })
        .await;
        let rejoin = ClientConfig {
            rejoin_token: Some(token),
            ..ClientConfig::default()
        };
        let (mut back, wb) = SignalingClient::join_with_config(&url(1), "priv", 2, None, rejoin)
            .await
            .unwrap();
        assert_eq!(wb.peer_id, w3.peer_id, "the same seat");
        until(&mut x1, "peer_rejoined", |e| {
            *e == ServerMessage::PeerRejoined {
                peer_id: w3.peer_id,
            }
        })
        .await;
        // And signals flow both ways between the nodes again.
        x1.signal(wb.peer_id, SignalData::EndOfCandidates).unwrap();
        until(
            &mut back,
            "the relayed signal",
            |e| matches!(e, ServerMessage::Signal { from, .. } if *from == w1.peer_id),
        )
        .await;
        back.signal(w1.peer_id, SignalData::EndOfCandidates)
            .unwrap();
        until(
            &mut x1,
            "the relayed signal",
            |e| matches!(e, ServerMessage::Signal { from, .. } if *from == wb.peer_id),
        )
        .await;
    });
}

#[test]
fn a_node_cut_off_from_nats_gives_up_a_name_taken_over_meanwhile() {
    let nats = Nats::start();
    // Node `a` reaches NATS through a proxy the test can block (a partition).
    let proxy = TcpProxy::start(nats.addr());
    let a = SignalNode::start(BIN, &format!("nats://{}", proxy.addr), &[]);
    let b = SignalNode::start(BIN, &nats.url(), &[]);
    wait_for_cluster(&[&a, &b]);
    let rt = runtime();
    // `a` holds the name; its first player waits.
    let (mut waiting, _) = rt.block_on(try_join(&a.url, "split")).unwrap();

    proxy.set_blocked(true);
    a.wait_until("a notices the partition", PATIENCE, |s| {
        s["cluster"]["broker_connected"] == false
    });
    b.wait_until("b finds a dead", PATIENCE, |s| s["cluster"]["nodes"] == 1);
    // `b` takes the name over and runs its own room of it.
    rt.block_on(async {
        let (mut one, _) = try_join(&b.url, "split").await.unwrap();
        let (mut two, _) = try_join(&b.url, "split").await.unwrap();
        expect_room_full(&mut one).await;
        expect_room_full(&mut two).await;
    });
    assert_eq!(b.cluster_stat("takeovers"), 1);

    // The partition heals: `a` finds the name is `b`'s, and its room still
    // filling (nobody can join it any more) tells its player so.
    proxy.set_blocked(false);
    rt.block_on(async {
        let event = tokio::time::timeout(PATIENCE, waiting.next_event())
            .await
            .expect("room_lost in time");
        match event {
            Some(ServerMessage::Error { code, .. }) => assert_eq!(code, ErrorCode::RoomLost),
            other => panic!("expected room_lost, got {other:?}"),
        }
        // And a join there now goes to `b`'s room of the name.
        let (mut again, _) = try_join(&a.url, "split").await.unwrap();
        let (mut partner, _) = try_join(&b.url, "split").await.unwrap();
        expect_room_full(&mut again).await;
        expect_room_full(&mut partner).await;
    });
    assert_eq!(a.cluster_stat("homed_names"), 0);
}
