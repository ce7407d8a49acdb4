//! The receiving side's cost of replicated entities in Bevy: two state-only
//! apps over real WebRTC on 127.0.0.1 (a real signaling server); the owner
//! moves N entities (`Transform`, interpolated, dead reckoning at 0.01 units;
//! each at a steady velocity, bouncing off walls), the viewer mirrors them.
//! Measured: the viewer's whole `App::update` (socket, state ticks at 30 Hz,
//! ownership, applying values, sampling every mirror at its render tick),
//! for N = 0 and N = 1,000, over 10 s of updates paced at ~1 ms.
//!
//! `cargo run --release -p rtcplay_benches --bin replication_cpu`

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_rtcplay::{
    ConnectStatus, Replicated, ReplicationApp, RtcPlayConnect, RtcPlayConnectPlugin, Smoothing,
    StateStreams,
};
use hdrhistogram::Histogram;
use rtcplay::state_sync::StateSyncConfig;

#[derive(Component)]
struct Mover(Vec3);

fn move_owned(time: Res<Time>, mut q: Query<(&Replicated, &mut Transform, &mut Mover)>) {
    let dt = time.delta_secs();
    for (r, mut t, mut m) in &mut q {
        if !r.is_mine() {
            continue;
        }
        t.translation += m.0 * dt;
        for axis in 0..2 {
            if t.translation[axis].abs() > 500.0 {
                m.0[axis] = -m.0[axis];
                t.translation[axis] = t.translation[axis].clamp(-500.0, 500.0);
            }
        }
    }
}

fn app(url: &str, room: &str) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, RtcPlayConnectPlugin::<()>::default()));
    let mut connect = RtcPlayConnect::new(url, room, 2).state_only();
    connect.bind_ip = Ipv4Addr::LOCALHOST.into();
    app.insert_resource(connect)
        .insert_resource(StateStreams::new(StateSyncConfig::default(), 30))
        .replicate_transform(Smoothing::dead_reckoning(0.01))
        .add_systems(Update, move_owned);
    app
}

fn mirrors(app: &mut App) -> usize {
    let mut q = app.world_mut().query::<&Replicated>();
    q.iter(app.world()).filter(|r| r.owner().is_some()).count()
}

/// The viewer's update times (µs) with `n` entities mirrored.
fn measure(url: &str, n: usize) -> Histogram<u64> {
    let room = format!("replication-cpu-{n}");
    let (mut owner, mut viewer) = (app(url, &room), app(url, &room));
    let deadline = Instant::now() + Duration::from_secs(30);
    while [&owner, &viewer]
        .iter()
        .any(|a| *a.world().resource::<ConnectStatus>() != ConnectStatus::Running)
    {
        assert!(Instant::now() < deadline, "the apps did not connect");
        owner.update();
        viewer.update();
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..n {
        let a = i as f32 * 0.37;
        owner.world_mut().spawn((
            Replicated::new(),
            Transform::from_xyz(
                (i % 40) as f32 * 20.0 - 400.0,
                (i / 40) as f32 * 20.0 - 250.0,
                0.0,
            ),
            Mover(Vec3::new(a.cos() * 60.0, a.sin() * 60.0, 0.0)),
        ));
    }
    while mirrors(&mut viewer) < n {
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "mirrors missing"
        );
        owner.update();
        viewer.update();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut micros = Histogram::<u64>::new(3).expect("histogram");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        owner.update();
        let started = Instant::now();
        viewer.update();
        micros.saturating_record(started.elapsed().as_micros() as u64);
        std::thread::sleep(Duration::from_millis(1));
    }
    micros
}

fn main() {
    let server = rtcplay_testkit::server::LocalServer::start();
    println!("viewer's App::update, 10 s paced at ~1 ms, state ticks at 30 Hz:");
    for n in [0, 1000] {
        let h = measure(&server.url, n);
        println!(
            "  {n:>5} mirrored entities: p50 {} µs, p99 {} µs, mean {:.0} µs over {} updates",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.mean(),
            h.len()
        );
    }
}
