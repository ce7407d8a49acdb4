//! Two Bevy apps start a P2P session by signaling URL + room through
//! `RtcPlayConnect`, over real WebRTC on 127.0.0.1 with a real signaling server, and
//! play the test game in sync through rollbacks.

#![cfg(feature = "native")]
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use bevy_rtcplay::{ConnectStatus, ConnectedPeers, PeerLeft, RtcPlayConnect, RtcPlayConnectPlugin};
use common::*;
use rtcplay::netem::LinkConditions;
use rtcplay::transport::DisconnectReason;

fn connecting_app(url: &str, room: &str, seed: u64) -> App {
    let mut app = game_app(2, 0);
    app.add_plugins(RtcPlayConnectPlugin::<Input>::default());
    let mut connect = RtcPlayConnect::new(url, room, 2)
        .with_input_delay(1)
        .with_netem(LinkConditions::good(), seed);
    connect.bind_ip = Ipv4Addr::LOCALHOST.into();
    connect.session.checksum_interval = 10;
    // Far above how long a goodbye takes, so the test tells the two apart.
    connect.session.disconnect_timeout = Duration::from_secs(10);
    app.insert_resource(connect)
        .init_resource::<Departures>()
        .add_systems(Update, collect_departures);
    app
}

/// `PeerLeft` messages seen so far.
#[derive(Resource, Default)]
struct Departures(Vec<PeerLeft>);

fn collect_departures(mut reader: MessageReader<PeerLeft>, mut seen: ResMut<Departures>) {
    seen.0.extend(reader.read().copied());
}

fn status(app: &App) -> ConnectStatus {
    app.world().resource::<ConnectStatus>().clone()
}

#[test]
fn two_apps_connect_by_room_and_play_in_sync_over_webrtc() {
    let server = rtcplay_testkit::server::LocalServer::start();
    let url = server.url.clone();
    // The first app waits alone in the room: 1 of 2 players.
    let mut first = connecting_app(&url, "bevy-connect", 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&first) != (ConnectStatus::WaitingForPlayers { have: 1, need: 2 }) {
        assert!(Instant::now() < deadline, "{:?}", status(&first));
        first.update();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut apps = [first, connecting_app(&url, "bevy-connect", 2)];

    // Connect: statuses move on through WaitingForPlayers / ConnectingPeers to
    // Running.
    let mut seen_waiting = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !apps.iter().all(|a| status(a) == ConnectStatus::Running) {
        assert!(
            Instant::now() < deadline,
            "never connected: {:?}",
            apps.iter().map(status).collect::<Vec<_>>()
        );
        for app in &mut apps {
            app.update();
            match status(app) {
                ConnectStatus::Failed(reason) => panic!("connect failed: {reason}"),
                ConnectStatus::WaitingForPlayers { need, .. } => {
                    assert_eq!(need, 2);
                    seen_waiting = true;
                }
                ConnectStatus::ConnectingPeers => seen_waiting = true,
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        seen_waiting,
        "no WaitingForPlayers or ConnectingPeers status"
    );
    // Handles follow the peer order: the two apps got different handles.
    let handles: Vec<usize> = apps
        .iter()
        .map(|a| a.world().resource::<ConnectedPeers>().local_handle)
        .collect();
    assert_ne!(handles[0], handles[1]);
    for (app, handle) in apps.iter_mut().zip(&handles) {
        app.world_mut().resource_mut::<LocalPlayer>().0 = *handle;
    }

    // Play until both apps have confirmed 1,000+ frames.
    let deadline = Instant::now() + Duration::from_secs(120);
    while apps.iter().map(confirmed).min().unwrap() < 1100 {
        assert!(
            Instant::now() < deadline,
            "match stalled at {:?}",
            apps.iter().map(confirmed).collect::<Vec<_>>()
        );
        for app in &mut apps {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    let upto = apps.iter().map(confirmed).min().unwrap();
    let logs: Vec<_> = apps
        .iter()
        .map(|a| &a.world().resource::<StateLog>().0)
        .collect();
    let mut compared = 0;
    for f in 0..=upto {
        let first = logs[0].get(&f);
        assert!(first.is_some(), "frame {f} never simulated");
        assert_eq!(logs[1].get(&f), first, "frame {f} differs between apps");
        compared += 1;
    }
    assert!(compared >= 1000);
    for app in &apps {
        let world = app.world();
        let stats = world.resource::<NetworkStats>();
        println!(
            "rollbacks {} max depth {} checksums {} score {:?}",
            stats.session.rollbacks,
            stats.session.max_rollback_depth,
            stats.session.checksums_compared,
            world.resource::<Score>().0
        );
        assert!(
            stats.session.rollbacks > 0,
            "the conditioner caused no rollback"
        );
        assert!(stats.session.checksums_compared > 50);
        let events = &world.resource::<Events>().0;
        assert!(
            !events.iter().any(|e| matches!(
                e,
                RtcPlayEvent::Session(SessionEvent::DesyncDetected { .. })
            )),
            "desync: {events:?}"
        );
        // The transport's connection type is known (loopback: host candidates).
        let peers = world.resource::<ConnectedPeers>();
        let remote = peers.peers.iter().find(|p| Some(**p) != peers.me).unwrap();
        let kind = peers.connection_type(*remote);
        assert!(kind == "host" || kind == "prflx", "connection type {kind}");
    }

    // A normal quit: the second app closes (its socket says goodbye). The first
    // learns it at once, not after its 10 s disconnect timeout: a PeerLeft
    // message, the session's Disconnected event, the peer gone from the stats,
    // and the status Ended (no other player is left).
    let [mut stays, leaves] = apps;
    let gone = leaves.world().resource::<ConnectedPeers>().me.unwrap();
    drop(leaves);
    let quit = Instant::now();
    while stays.world().resource::<Departures>().0.is_empty() {
        assert!(
            quit.elapsed() < Duration::from_secs(5),
            "no PeerLeft 5 s after the other app closed"
        );
        stays.update();
        std::thread::sleep(Duration::from_millis(1));
    }
    let noticed = quit.elapsed();
    for _ in 0..5 {
        stays.update();
    }
    let world = stays.world();
    assert_eq!(
        world.resource::<Departures>().0,
        vec![PeerLeft {
            peer: gone,
            reason: DisconnectReason::Closed,
            spectator: false
        }]
    );
    assert!(
        matches!(status(&stays), ConnectStatus::Ended(reason) if reason.contains(&gone.to_string())),
        "{:?}",
        status(&stays)
    );
    assert!(world.resource::<Events>().0.iter().any(|e| matches!(
        e,
        RtcPlayEvent::Session(SessionEvent::Disconnected { peer, .. }) if *peer == gone
    )));
    assert!(
        world.resource::<NetworkStats>().peers.is_empty(),
        "the departed peer is still in the stats"
    );
    let peers = world.resource::<ConnectedPeers>();
    assert!(!peers.transport.contains_key(&gone));
    println!("the other app's quit was noticed after {noticed:?}");
    drop(stays);
    drop(server);
}

#[test]
fn unreachable_signaling_server_is_a_failed_status() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut app = connecting_app(&format!("ws://127.0.0.1:{port}"), "nobody", 9);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no failure reported: {:?}",
            status(&app)
        );
        app.update();
        if let ConnectStatus::Failed(reason) = status(&app) {
            assert!(reason.contains("signaling"), "{reason}");
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(!app.world().contains_resource::<RtcPlaySession<Input>>());
}

/// Update every app until `done` holds, at most `limit`.
fn run_until(apps: &mut [App], limit: Duration, what: &str, done: impl Fn(&[App]) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(apps) {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; statuses {:?}, confirmed {:?}",
            apps.iter().map(status).collect::<Vec<_>>(),
            apps.iter().map(confirmed).collect::<Vec<_>>()
        );
        for app in apps.iter_mut() {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A player's signaling connection drops mid-match (as when its network goes
/// away or changes): its app takes its seat back by itself — a new socket with
/// its rejoin token, then a rejoining session with the other player's state —
/// and both play on in sync.
#[test]
fn an_app_whose_connection_dropped_takes_its_seat_back_by_itself() {
    let server = rtcplay_testkit::server::LocalServer::start();
    let target: SocketAddr = server.url.trim_start_matches("ws://").parse().unwrap();
    // The second app reaches the server through a proxy we can cut.
    let proxy = rtcplay_testkit::proxy::TcpProxy::start(target);
    let mut apps = [
        connecting_app(&server.url, "auto-rejoin", 3),
        connecting_app(&proxy.url(), "auto-rejoin", 4),
    ];
    run_until(&mut apps, Duration::from_secs(30), "connect", |apps| {
        apps.iter().all(|a| status(a) == ConnectStatus::Running)
    });
    for app in &mut apps {
        let handle = app.world().resource::<ConnectedPeers>().local_handle;
        app.world_mut().resource_mut::<LocalPlayer>().0 = handle;
    }
    let moved = apps[1].world().resource::<ConnectedPeers>().me.unwrap();
    assert!(apps[1]
        .world()
        .resource::<ConnectedPeers>()
        .rejoin_token
        .is_some());
    run_until(&mut apps, Duration::from_secs(60), "play", |apps| {
        apps.iter().map(confirmed).min().unwrap() >= 300
    });

    // The second app's signaling connection is cut.
    let before_cut = confirmed(&apps[1]);
    proxy.cut();
    run_until(
        &mut apps,
        Duration::from_secs(10),
        "notice the cut",
        |apps| apps[1].world().resource::<ConnectedPeers>().rejoining,
    );
    run_until(&mut apps, Duration::from_secs(30), "rejoin", |apps| {
        rejoined(&apps[1]).is_some()
    });
    let (resume, state_frame) = rejoined(&apps[1]).unwrap();
    assert!(!apps[1].world().resource::<ConnectedPeers>().rejoining);
    // The survivor resumed it at the same frame.
    assert!(apps[0].world().resource::<Events>().0.iter().any(|e| matches!(
        e,
        RtcPlayEvent::Session(SessionEvent::PeerRejoined { peer, frame }) if *peer == moved && *frame == resume
    )));
    run_until(&mut apps, Duration::from_secs(60), "play on", |apps| {
        apps.iter().map(confirmed).min().unwrap() >= resume + 600
    });
    for app in &apps {
        assert_eq!(status(app), ConnectStatus::Running);
    }

    // Every frame both confirmed before the cut, and every frame from the
    // transferred state on, is the same on both apps.
    let upto = apps.iter().map(confirmed).min().unwrap();
    let logs: Vec<_> = apps
        .iter()
        .map(|a| &a.world().resource::<StateLog>().0)
        .collect();
    for f in (0..=before_cut).chain(state_frame..=upto) {
        let theirs = logs[0].get(&f);
        assert!(theirs.is_some(), "frame {f} never simulated");
        assert_eq!(logs[1].get(&f), theirs, "frame {f} differs");
    }
    for app in &apps {
        assert!(
            !app.world().resource::<Events>().0.iter().any(|e| matches!(
                e,
                RtcPlayEvent::Session(SessionEvent::DesyncDetected { .. })
            )),
            "desync"
        );
    }
    println!(
        "cut at frame {before_cut}; back from the state of frame {state_frame}, \
         playing again from frame {resume}"
    );
}

/// State streams beside the rollback session over the same WebRTC socket: each
/// app owns a value (its avatar) and sends a chat line; each sees the other's
/// value follow and hears the line once, while the rollback game stays in sync
/// and the session drops nothing.
#[test]
fn state_streams_ride_beside_the_rollback_session_over_webrtc() {
    use bevy_rtcplay::{Replicated, ReplicationApp, StateStreamEvent, StateStreams};
    use rtcplay::state_sync::{StateEvent, StateSyncConfig, Stream};

    const AVATAR: Stream<(u32, i32)> = Stream::new(1);

    /// Replicated beside the rollback game: each app owns one, named after it.
    #[derive(Component, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Banner(String);

    #[derive(Resource, Default)]
    struct Heard(Vec<(rtcplay::transport::PeerId, String)>);

    fn move_avatar(
        frame: Res<RollbackFrame>,
        peers: Res<ConnectedPeers>,
        mut streams: ResMut<StateStreams>,
    ) {
        if let Some(me) = peers.me {
            let value = (me.0, frame.frame as i32);
            streams.sync.set(AVATAR, u64::from(me.0), &value).unwrap();
        }
    }

    fn listen(mut events: MessageReader<StateStreamEvent>, mut heard: ResMut<Heard>) {
        for StateStreamEvent(e) in events.read() {
            if let StateEvent::Event { peer, bytes } = e {
                let (line, _): (String, usize) =
                    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).unwrap();
                heard.0.push((*peer, line));
            }
        }
    }

    let server = rtcplay_testkit::server::LocalServer::start();
    let url = server.url.clone();
    let mut apps = [1, 2].map(|seed| {
        let mut app = connecting_app(&url, "bevy-streams", seed);
        let mut streams = StateStreams::new(StateSyncConfig::default(), 30);
        streams.sync.accept(AVATAR);
        app.insert_resource(streams)
            .init_resource::<Heard>()
            .replicate::<Banner>()
            .add_systems(Update, (move_avatar, listen));
        app
    });
    run_until(&mut apps, Duration::from_secs(30), "connect", |apps| {
        apps.iter().all(|a| status(a) == ConnectStatus::Running)
    });
    for app in &mut apps {
        let me = app.world().resource::<ConnectedPeers>().me.unwrap();
        app.world_mut()
            .resource_mut::<StateStreams>()
            .sync
            .send_event(None, &format!("hello from {me}"))
            .unwrap();
        app.world_mut()
            .spawn((Replicated::new(), Banner(format!("banner of {me}"))));
    }
    let banners = |app: &mut App| {
        let mut q = app.world_mut().query::<(&Replicated, &Banner)>();
        let mut seen: Vec<(Option<rtcplay::transport::PeerId>, String)> = q
            .iter(app.world())
            .map(|(r, b)| (r.owner(), b.0.clone()))
            .collect();
        seen.sort();
        seen
    };
    let other = |app: &App| {
        let peers = app.world().resource::<ConnectedPeers>();
        *peers.peers.iter().find(|p| Some(**p) != peers.me).unwrap()
    };
    run_until(
        &mut apps,
        Duration::from_secs(30),
        "avatars and chat",
        |apps| {
            apps.iter().all(|a| {
                let o = other(a);
                let seen = a
                    .world()
                    .resource::<StateStreams>()
                    .sync
                    .get(o, AVATAR, u64::from(o.0));
                seen.is_some_and(|(id, frame)| id == o.0 && frame > 200)
                    && !a.world().resource::<Heard>().0.is_empty()
            }) && apps.iter().map(confirmed).min().unwrap() > 300
        },
    );
    // Each app holds its own banner and a mirror of the other's.
    run_until(&mut apps, Duration::from_secs(30), "banners", |apps| {
        apps.iter().all(|a| {
            a.world()
                .resource::<bevy_rtcplay::ReplicationStats>()
                .spawned
                == 1
        })
    });
    for app in apps.iter_mut() {
        let (me, o) = (
            app.world().resource::<ConnectedPeers>().me.unwrap(),
            other(app),
        );
        let mut expected = vec![
            (None, format!("banner of {me}")),
            (Some(o), format!("banner of {o}")),
        ];
        expected.sort();
        assert_eq!(banners(app), expected);
    }
    for app in &apps {
        let o = other(app);
        assert_eq!(
            app.world().resource::<Heard>().0,
            vec![(o, format!("hello from {o}"))],
            "the line arrives exactly once"
        );
        let stats = app.world().resource::<StateStreams>().sync.stats();
        assert_eq!(stats.malformed + stats.unknown_peer, 0, "{stats:?}");
        assert!(stats.delta_values > 0, "{stats:?}");
        let RtcPlaySession::P2P { session, .. } = app.world().resource::<RtcPlaySession<Input>>()
        else {
            panic!("a P2P session");
        };
        assert_eq!(
            session.drop_counters().total(),
            0,
            "the session saw state datagrams"
        );
    }
    // The rollback game agrees.
    let upto = apps.iter().map(confirmed).min().unwrap();
    let logs: Vec<_> = apps
        .iter()
        .map(|a| &a.world().resource::<StateLog>().0)
        .collect();
    for f in 0..=upto {
        assert_eq!(logs[0].get(&f), logs[1].get(&f), "frame {f}");
    }
}
