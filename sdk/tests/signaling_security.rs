//! Signaling server security: private rooms, limits on room size, rooms and
//! connections, and room isolation, against a real server on 127.0.0.1:0 with real
//! WebSocket clients. (Rate limiting, the per-IP limit, the server token and
//! oversized frames are covered in `signaling.rs`.)

#![cfg(feature = "native")]
#![allow(clippy::unwrap_used)]

mod signaling_support;

use std::time::Duration;

use rtcplay::signaling::protocol::ClientMessage;
use rtcplay::signaling::{
    ErrorCode, PeerId, ServerConfig, ServerMessage, SignalData, SignalingClient, TurnConfig,
};
use signaling_support::{join_secret, next, refused_with, server, until_full, Raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_rooms_match_only_joiners_with_the_same_secret() {
    let server = server(ServerConfig::default()).await;
    let (mut a, a_id) = join_secret(&server, "duel", 2, Some("s1")).await.unwrap();
    // Same name and size, no secret or another secret: a different room each.
    let (_public, _) = join_secret(&server, "duel", 2, None).await.unwrap();
    let (_other, _) = join_secret(&server, "duel", 2, Some("s2")).await.unwrap();
    assert_eq!(server.stats().open_rooms, 3);
    let (mut d, d_id) = join_secret(&server, "duel", 2, Some("s1")).await.unwrap();
    assert_eq!(until_full(&mut a).await, vec![a_id, d_id]);
    assert_eq!(until_full(&mut d).await, vec![a_id, d_id]);
    let stats = server.stats();
    assert_eq!((stats.rooms, stats.open_rooms), (3, 2));
    // A secret is bounded like everything else a client sends.
    let long = "x".repeat(129);
    refused_with(
        join_secret(&server, "duel", 2, Some(&long)).await,
        ErrorCode::BadRoom,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_size_and_room_count_are_limited() {
    let server = server(ServerConfig {
        max_peers_per_room: 3,
        max_rooms: 2,
        ..ServerConfig::default()
    })
    .await;
    refused_with(
        join_secret(&server, "big", 4, None).await,
        ErrorCode::BadPlayers,
    );
    let _one = join_secret(&server, "one", 3, None).await.unwrap();
    let _two = join_secret(&server, "two", 2, None).await.unwrap();
    refused_with(
        join_secret(&server, "three", 2, None).await,
        ErrorCode::ServerFull,
    );
    // Joining an existing open room needs no new room.
    let _two_b = join_secret(&server, "two", 2, None).await.unwrap();
    assert_eq!(server.stats().rooms, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_connections_are_limited() {
    let server = server(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let _a = join_secret(&server, "a", 2, None).await.unwrap();
    let _b = join_secret(&server, "b", 2, None).await.unwrap();
    match tokio_tungstenite::connect_async(server.url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        Err(other) => panic!("expected HTTP 503, got {other}"),
        Ok(_) => panic!("a third connection was accepted"),
    }
}

/// A raw client of room "left" addresses every peer id there could be; only its
/// own room mate ever hears from it, and the members of "right" (which hold the
/// same ids) receive nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_can_never_signal_a_peer_of_another_room() {
    let server = server(ServerConfig {
        rate_limit_burst: 1000,
        ..ServerConfig::default()
    })
    .await;
    let mut raw = Raw::connect(&server).await;
    raw.send(&ClientMessage::join("left", 2)).await;
    let (mut mate, mate_id) = join_secret(&server, "left", 2, None).await.unwrap();
    let (mut r1, r1_id) = join_secret(&server, "right", 2, None).await.unwrap();
    let (mut r2, r2_id) = join_secret(&server, "right", 2, None).await.unwrap();
    until_full(&mut r1).await;
    until_full(&mut r2).await;
    until_full(&mut mate).await;
    let mut ids: Vec<u32> = (0..=16).collect();
    ids.push(u32::MAX);
    for id in &ids {
        let signal = ClientMessage::Signal {
            to: PeerId(*id),
            data: SignalData::Offer {
                sdp: format!("to {id}"),
            },
        };
        raw.send(&signal).await;
    }
    // Every id but the mate's is refused; the mate gets exactly one signal.
    let mut refused = 0;
    let mut other = Vec::new();
    while refused < ids.len() - 1 {
        match raw.recv().await.expect("connection open") {
            ServerMessage::Error {
                code: ErrorCode::UnknownPeer,
                ..
            } => refused += 1,
            message => other.push(message),
        }
    }
    assert!(
        other
            .iter()
            .all(|m| !matches!(m, ServerMessage::Error { .. })),
        "{other:?}"
    );
    match next(&mut mate).await {
        ServerMessage::Signal { data, .. } => assert_eq!(
            data,
            SignalData::Offer {
                sdp: format!("to {}", mate_id.0)
            }
        ),
        other => panic!("{other:?}"),
    }
    // The right room's members, holding the same ids, got nothing: a signal among
    // themselves is the next thing each of them receives.
    r1.signal(r2_id, SignalData::EndOfCandidates).unwrap();
    r2.signal(r1_id, SignalData::EndOfCandidates).unwrap();
    for (client, from) in [(&mut r1, r2_id), (&mut r2, r1_id)] {
        assert_eq!(
            next(client).await,
            ServerMessage::Signal {
                from,
                data: SignalData::EndOfCandidates
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_credentials_are_issued_per_client_and_expire() {
    let server = server(ServerConfig {
        turn: Some(TurnConfig {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            secret: "never-sent".into(),
            ttl: Duration::from_secs(300),
        }),
        ..ServerConfig::default()
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut seen = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (client, welcome) = SignalingClient::join(&server.url(), "turn", 2, None)
            .await
            .unwrap();
        let turn = welcome
            .ice_servers
            .iter()
            .find(|s| s.urls[0].starts_with("turn:"))
            .expect("a TURN server in welcome");
        let user = turn.username.clone().unwrap();
        let (expiry, client_id) = user.split_once(':').unwrap();
        let expiry: u64 = expiry.parse().unwrap();
        assert!((now + 299..=now + 302).contains(&expiry), "{user}");
        // A random id per connection (16 hex digits), not the room's peer id.
        assert_eq!(client_id.len(), 16, "{user}");
        assert!(client_id.chars().all(|c| c.is_ascii_hexdigit()), "{user}");
        let password = turn.credential.clone().unwrap();
        assert_eq!(
            password,
            rtcplay::signaling::turn_password("never-sent", &user)
        );
        assert!(!password.contains("never-sent"));
        seen.push(user);
        clients.push(client);
    }
    assert_ne!(seen[0], seen[1]);
}
