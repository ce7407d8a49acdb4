//! The rollback session over the real WebRTC socket (127.0.0.1, real signaling
//! server), with the link conditioner wrapped around each socket.

#![cfg(feature = "native")]
#![allow(clippy::unwrap_used)]

use rtcplay_testkit::sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtcplay::netem::{ConditionedTransport, LinkConditions};
use rtcplay::session::{PlayerType, SessionBuilder, SessionError, SessionEvent};
use rtcplay::signaling::{ServerConfig, SignalingServer};
use rtcplay::transport::native::Socket;
use rtcplay::transport::{SocketConfig, SocketEvent};
use sim::{scripted_input, Replica};

#[test]
fn three_peers_play_in_sync_over_webrtc_with_the_conditioner() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = runtime
        .block_on(SignalingServer::bind(addr, ServerConfig::default()))
        .unwrap();
    let url = format!("ws://{}", server.local_addr());

    let players = 3;
    let mut sockets: Vec<Socket> = (0..players)
        .map(|_| {
            let mut config = SocketConfig::new(url.clone(), "session-over-webrtc", players as u8);
            config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
            Socket::new(config).unwrap()
        })
        .collect();
    for s in &mut sockets {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match s.wait_event(deadline.saturating_duration_since(Instant::now())) {
                Some(SocketEvent::AllConnected) => break,
                Some(SocketEvent::Error(e)) => panic!("socket error: {e}"),
                Some(_) => {}
                None => panic!("room never connected"),
            }
        }
    }
    // Player handles follow peer ids, so every peer numbers players alike.
    let mut ids: Vec<_> = sockets.iter_mut().map(|s| s.id().unwrap()).collect();
    let mine = ids.clone();
    ids.sort();
    let mut peers: Vec<_> = sockets
        .into_iter()
        .zip(mine)
        .enumerate()
        .map(|(i, (socket, me))| {
            let mut b = SessionBuilder::<u8>::new()
                .with_num_players(players)
                .with_session_id(0x77);
            for (h, id) in ids.iter().enumerate() {
                let kind = if *id == me {
                    PlayerType::Local
                } else {
                    PlayerType::Remote(*id)
                };
                b = b.add_player(kind, h);
            }
            let net = ConditionedTransport::new(socket, LinkConditions::good(), 100 + i as u64);
            (b.start_p2p_session().unwrap(), net, Replica::new(players))
        })
        .collect();

    const FRAMES: u32 = 900;
    let start = Instant::now();
    let mut desyncs = 0;
    while peers.iter().any(|p| p.0.current_frame() < FRAMES) {
        assert!(start.elapsed() < Duration::from_secs(90), "match stalled");
        let now = start.elapsed();
        for (session, net, replica) in &mut peers {
            net.set_now(now);
            if !session.is_running() {
                session.poll(now, net);
                continue;
            }
            if session.current_frame() >= FRAMES {
                session.poll(now, net);
                continue;
            }
            let h = session.local_player_handles()[0];
            let target = session.current_frame() + session.input_delay();
            session
                .add_local_input(h, scripted_input(h, target))
                .unwrap();
            match session.advance_frame(now, net) {
                Ok(requests) => replica.carry_out(session, requests).unwrap(),
                Err(SessionError::PredictionThreshold) => {}
                Err(e) => panic!("{e}"),
            }
            desyncs += session
                .events()
                .filter(|e| matches!(e, SessionEvent::DesyncDetected { .. }))
                .count();
        }
        // A fast game loop on real time: 4 ms per tick.
        std::thread::sleep(Duration::from_millis(4));
    }
    assert_eq!(desyncs, 0);
    let upto = peers
        .iter()
        .map(|p| p.0.confirmed_frame().unwrap().min(p.0.current_frame() - 1))
        .min()
        .unwrap();
    assert!(upto > FRAMES - 20);
    for f in 0..=upto {
        let first = peers[0].2.history.get(&f);
        assert!(first.is_some());
        for p in &peers[1..] {
            assert_eq!(p.2.history.get(&f), first, "frame {f} differs");
        }
    }
    for p in &peers {
        assert!(
            p.0.stats().rollbacks > 0,
            "the conditioner caused no rollback"
        );
        assert!(p.0.stats().checksums_compared > 10);
    }
    drop(server);
}
