//! Owner-replicated entities between Bevy apps over real WebRTC on 127.0.0.1
//! with a real signaling server, in state-only matches (no rollback session):
//! entities spawned, moved, changed and despawned by their owners appear,
//! follow and vanish on every other app under `lossy` conditions; an entity
//! handed over mid-run is taken by its new owner and followed by everyone;
//! a peer writing an entity it does not own is dropped and counted.

#![cfg(feature = "native")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_rtcplay::{
    ConnectStatus, ConnectedPeers, Replicated, ReplicationApp, ReplicationStats, RtcPlayConnect,
    RtcPlayConnectPlugin, Smoothing, StateStreams, PRESENCE_STREAM,
};
use rtcplay::netem::LinkConditions;
use rtcplay::state_sync::{StateSyncConfig, Stream};
use rtcplay::transport::PeerId;

/// Replicated as is (the latest value).
#[derive(Component, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Health(u32);

/// Local only: how an owned entity moves.
#[derive(Component, Debug, Clone, Copy)]
struct Mover(Vec3);

/// Whether owners move their entities.
#[derive(Resource)]
struct Moving(bool);

fn move_owned(
    moving: Res<Moving>,
    time: Res<Time>,
    mut q: Query<(&Replicated, &mut Transform, &mut Mover)>,
) {
    if !moving.0 {
        return;
    }
    let dt = time.delta_secs();
    for (r, mut t, mut m) in &mut q {
        if !r.is_mine() {
            continue;
        }
        t.translation += m.0 * dt;
        for axis in 0..2 {
            if t.translation[axis].abs() > 100.0 {
                m.0[axis] = -m.0[axis];
                t.translation[axis] = t.translation[axis].clamp(-100.0, 100.0);
            }
        }
    }
}

fn state_app(url: &str, room: &str, players: usize, conditions: LinkConditions, seed: u64) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, RtcPlayConnectPlugin::<()>::default()));
    let mut connect = RtcPlayConnect::new(url, room, players)
        .state_only()
        .with_netem(conditions, seed);
    connect.bind_ip = Ipv4Addr::LOCALHOST.into();
    app.insert_resource(connect)
        .insert_resource(StateStreams::new(StateSyncConfig::default(), 30))
        .insert_resource(Moving(true))
        .replicate_transform(Smoothing::dead_reckoning(0.01))
        .replicate::<Health>()
        .add_systems(Update, move_owned);
    app
}

fn status(app: &App) -> ConnectStatus {
    app.world().resource::<ConnectStatus>().clone()
}

fn me(app: &App) -> PeerId {
    app.world().resource::<ConnectedPeers>().me.unwrap()
}

fn run_until(apps: &mut [App], limit: Duration, what: &str, done: impl Fn(&mut [App]) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(apps) {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; statuses {:?}",
            apps.iter().map(status).collect::<Vec<_>>()
        );
        for app in apps.iter_mut() {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn run_for(apps: &mut [App], time: Duration) {
    let end = Instant::now() + time;
    while Instant::now() < end {
        for app in apps.iter_mut() {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Per replicated id: owner (`None`: this app), transform, health.
type View = BTreeMap<u64, (Option<PeerId>, Transform, Option<Health>)>;

fn view(app: &mut App) -> View {
    let mut q = app
        .world_mut()
        .query::<(&Replicated, Option<&Transform>, Option<&Health>)>();
    q.iter(app.world())
        .filter_map(|(r, t, h)| Some((r.id()?, (r.owner(), *t?, h.cloned()))))
        .collect()
}

/// Every app's entities, as their owners hold them, are mirrored exactly on
/// every other app, and nothing else is.
fn converged(apps: &mut [App]) -> Result<(), String> {
    let views: Vec<(PeerId, View)> = apps.iter_mut().map(|a| (me(a), view(a))).collect();
    let mut owned: BTreeMap<u64, (PeerId, Transform, Option<Health>)> = BTreeMap::new();
    for (peer, v) in &views {
        for (id, (owner, t, h)) in v {
            if owner.is_none() {
                owned.insert(*id, (*peer, *t, h.clone()));
            }
        }
    }
    for (peer, v) in &views {
        for (id, (owner_peer, t, h)) in &owned {
            if owner_peer == peer {
                continue;
            }
            match v.get(id) {
                Some((Some(o), mt, mh)) if o == owner_peer && mt == t && mh == h => {}
                other => {
                    return Err(format!(
                        "{peer} sees {id:#x} as {other:?}, owner {owner_peer} has {t:?} {h:?}"
                    ))
                }
            }
        }
        if let Some(extra) = v.keys().find(|id| !owned.contains_key(id)) {
            return Err(format!("{peer} still has {extra:#x}"));
        }
    }
    Ok(())
}

fn stats(app: &App) -> ReplicationStats {
    *app.world().resource::<ReplicationStats>()
}

/// `n` apps in a state-only room, each spawning `per_app` moving entities;
/// some are changed and despawned while they move, app 0 hands one to app 1,
/// which then moves it; once everyone holds still, every mirror equals its
/// owner.
fn replicate_between(n: usize, per_app: usize, room: &str) {
    let server = rtcplay_testkit::server::LocalServer::start();
    let mut apps: Vec<App> = (0..n)
        .map(|i| state_app(&server.url, room, n, LinkConditions::lossy(), 40 + i as u64))
        .collect();
    run_until(&mut apps, Duration::from_secs(30), "connect", |apps| {
        apps.iter().all(|a| status(a) == ConnectStatus::Running)
    });
    for (i, app) in apps.iter_mut().enumerate() {
        for k in 0..per_app {
            let angle = (i * per_app + k) as f32 * 0.7;
            app.world_mut().spawn((
                Replicated::new(),
                Transform::from_xyz(k as f32 * 2.0 - 50.0, i as f32 * 10.0, 0.0),
                Health(100),
                Mover(Vec3::new(angle.cos() * 30.0, angle.sin() * 30.0, 0.0)),
            ));
        }
    }
    let total = n * per_app;
    run_until(
        &mut apps,
        Duration::from_secs(30),
        "every mirror spawned",
        |apps| apps.iter_mut().all(|a| view(a).len() == total),
    );
    run_for(&mut apps, Duration::from_millis(1500));
    // Owners change and despawn some of theirs while everything moves.
    for app in apps.iter_mut() {
        let mut q = app
            .world_mut()
            .query::<(Entity, &Replicated, &mut Health)>();
        let mine: Vec<Entity> = q
            .iter_mut(app.world_mut())
            .filter(|(_, r, _)| r.is_mine())
            .map(|(e, _, mut h)| {
                h.0 -= 7;
                e
            })
            .collect();
        for e in mine.iter().take(per_app / 10) {
            app.world_mut().despawn(*e);
        }
    }
    run_for(&mut apps, Duration::from_millis(1500));
    // App 0 hands one of its entities to app 1.
    let to = me(&apps[1]);
    let mut q = apps[0].world_mut().query::<&mut Replicated>();
    let mut handed = None;
    for mut r in q.iter_mut(apps[0].world_mut()) {
        if r.is_mine() && handed.is_none() {
            handed = r.id();
            r.hand_over(to);
        }
    }
    let handed = handed.unwrap();
    run_until(
        &mut apps,
        Duration::from_secs(30),
        "the hand-over",
        |apps| {
            let mut q = apps[1].world_mut().query::<(Entity, &Replicated)>();
            q.iter(apps[1].world())
                .any(|(_, r)| r.id() == Some(handed) && r.is_mine())
        },
    );
    // The new owner moves it (its Mover is local to the old owner) and
    // changes it.
    let mut q = apps[1].world_mut().query::<(Entity, &Replicated)>();
    let entity = q
        .iter(apps[1].world())
        .find(|(_, r)| r.id() == Some(handed))
        .map(|(e, _)| e)
        .unwrap();
    apps[1]
        .world_mut()
        .entity_mut(entity)
        .insert((Mover(Vec3::new(-40.0, 25.0, 0.0)), Health(1)));
    run_for(&mut apps, Duration::from_millis(1500));
    for app in apps.iter_mut() {
        app.insert_resource(Moving(false));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(why) = converged(&mut apps) {
        assert!(
            Instant::now() < deadline,
            "not converged within 60 s: {why}"
        );
        for app in apps.iter_mut() {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The handed entity is app 1's everywhere, with the health it set.
    for app in apps.iter_mut() {
        let (owner, _, health) = view(app)[&handed].clone();
        assert_eq!(health, Some(Health(1)));
        assert_eq!(owner, (me(app) != to).then_some(to));
    }
    let despawned = n * (per_app / 10);
    for (i, app) in apps.iter_mut().enumerate() {
        assert_eq!(view(app).len(), total - despawned);
        let s = stats(app);
        assert_eq!(s.not_owner + s.undecodable, 0, "app {i}: {s:?}");
        assert_eq!(s.spawned as usize, total - per_app, "app {i}: {s:?}");
        assert_eq!(
            s.despawned as usize,
            despawned - per_app / 10,
            "app {i}: {s:?}"
        );
    }
    assert_eq!(stats(&apps[0]).handed_over, 1);
    assert_eq!(stats(&apps[1]).taken_over, 1);
    // Dead reckoning sent far fewer samples than ticks × entities.
    let sent = apps[0].world().resource::<StateStreams>().sync.stats();
    assert!(sent.delta_values > 0, "{sent:?}");
}

#[test]
fn two_apps_mirror_a_hundred_entities_under_lossy_conditions() {
    replicate_between(2, 100, "replicate-two");
}

#[test]
fn four_apps_mirror_each_others_entities_and_follow_a_hand_over() {
    replicate_between(4, 25, "replicate-four");
}

/// A peer that writes values and claims of an entity it does not own: every
/// other peer drops them and counts them; the owner's values stand.
#[test]
fn writes_to_an_entity_someone_else_owns_are_dropped_and_counted() {
    let server = rtcplay_testkit::server::LocalServer::start();
    let mut apps: Vec<App> = (0..3)
        .map(|i| {
            state_app(
                &server.url,
                "replicate-hostile",
                3,
                LinkConditions::good(),
                i,
            )
        })
        .collect();
    run_until(&mut apps, Duration::from_secs(30), "connect", |apps| {
        apps.iter().all(|a| status(a) == ConnectStatus::Running)
    });
    apps[0].insert_resource(Moving(false));
    apps[0].world_mut().spawn((
        Replicated::new(),
        Transform::from_xyz(5.0, 6.0, 0.0),
        Health(50),
        Mover(Vec3::ZERO),
    ));
    run_until(&mut apps, Duration::from_secs(30), "mirrors", |apps| {
        apps.iter_mut().all(|a| view(a).len() == 1)
    });
    let id = *view(&mut apps[0]).keys().next().unwrap();
    // App 2 writes app 0's entity: health (the second replicated stream) and
    // a presence claim of a later generation, for a few seconds.
    const HEALTH: Stream<Health> = Stream::new(PRESENCE_STREAM + 2);
    const CLAIM: Stream<(u32, Option<u32>)> = Stream::new(PRESENCE_STREAM);
    let end = Instant::now() + Duration::from_secs(2);
    let mut round = 0;
    while Instant::now() < end {
        round += 1;
        let mut streams = apps[2].world_mut().resource_mut::<StateStreams>();
        streams.sync.set(HEALTH, id, &Health(round)).unwrap();
        streams.sync.set(CLAIM, id, &(round + 3, None)).unwrap();
        for app in apps.iter_mut() {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    run_for(&mut apps, Duration::from_millis(500));
    let owner = me(&apps[0]);
    let (seen_owner, t, health) = view(&mut apps[1])[&id].clone();
    assert_eq!(seen_owner, Some(owner));
    assert_eq!(health, Some(Health(50)));
    assert_eq!(t.translation, Vec3::new(5.0, 6.0, 0.0));
    for app in [&apps[0], &apps[1]] {
        assert!(stats(app).not_owner > 0, "{:?}", stats(app));
    }
    assert!(converged(&mut apps[..2]).is_ok());
}
