//! How long a match takes to start: from the room filling up to the first frame
//! simulated, for two headless Bevy apps connecting through `RtcPlayConnect` over
//! real WebRTC on 127.0.0.1 with a real signaling server (transport setup plus the
//! session's synchronization).
//!
//! `cargo run --release -p rtcplay_benches --bin match_start -- [runs] [sync round trips]`
//!
//! Two frame pacings: apps updated back to back ("spin", what headless
//! `MinimalPlugins` does) and every 16.7 ms ("60 Hz", a vsync'd window).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use bevy_rtcplay::{ConnectStatus, RtcPlayConnect, RtcPlayConnectPlugin};
use rtcplay::signaling::{ServerConfig, SignalingServer};
use rtcplay_benches::percentiles::percentile;

/// When this app saw the room full, and when it simulated its first frame.
#[derive(Resource, Default)]
struct Milestones {
    room_full: Option<Instant>,
    first_frame: Option<Instant>,
}

fn note_room_full(status: Res<ConnectStatus>, mut milestones: ResMut<Milestones>) {
    if milestones.room_full.is_none()
        && matches!(
            *status,
            ConnectStatus::ConnectingPeers | ConnectStatus::Running
        )
    {
        milestones.room_full = Some(Instant::now());
    }
}

fn note_first_frame(mut milestones: ResMut<Milestones>) {
    milestones.first_frame.get_or_insert_with(Instant::now);
}

fn app(url: &str, room: &str, sync_round_trips: u32) -> App {
    let mut app = App::new();
    let mut connect = RtcPlayConnect::new(url, room, 2);
    connect.bind_ip = Ipv4Addr::LOCALHOST.into();
    connect.session.sync_round_trips = sync_round_trips;
    app.add_plugins((
        MinimalPlugins,
        RtcPlayPlugin::<u8>::default(),
        RtcPlayConnectPlugin::<u8>::default(),
    ))
    .init_resource::<Milestones>()
    .insert_resource(connect)
    .add_systems(Update, note_room_full)
    .add_systems(RollbackSchedule, note_first_frame);
    app
}

/// One match start: milliseconds from room full to first frame, per app.
fn one_start(url: &str, room: &str, pace: Option<Duration>, sync: u32) -> [f64; 2] {
    let mut apps = [app(url, room, sync), app(url, room, sync)];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = Instant::now();
        for app in &mut apps {
            app.update();
            if let ConnectStatus::Failed(reason) = app.world().resource::<ConnectStatus>() {
                panic!("connect failed: {reason}");
            }
        }
        let done = apps
            .iter()
            .all(|a| a.world().resource::<Milestones>().first_frame.is_some());
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "no first frame within 30 s");
        if let Some(pace) = pace {
            std::thread::sleep(pace.saturating_sub(started.elapsed()));
        }
    }
    apps.map(|a| {
        let m = a.world().resource::<Milestones>();
        let (full, first) = (
            m.room_full.expect("room full"),
            m.first_frame.expect("frame"),
        );
        first.saturating_duration_since(full).as_secs_f64() * 1e3
    })
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let sync: u32 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(rtcplay::session::SessionConfig::default().sync_round_trips);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let server = runtime
        .block_on(SignalingServer::bind(addr, ServerConfig::default()))
        .expect("signaling server");
    let url = server.url();
    println!(
        "room full → first frame, 2 headless Bevy apps in one thread, {sync} sync round trips, \
         {runs} starts (+1 warm-up) per pacing"
    );
    for (name, pace) in [("spin", None), ("60 Hz", Some(Duration::from_secs(1) / 60))] {
        let mut samples = Vec::new();
        for run in 0..=runs {
            let both = one_start(&url, &format!("start-{name}-{run}"), pace, sync);
            if run > 0 {
                samples.extend(both);
            }
        }
        println!(
            "{name:<6} p50={:>6.1} ms  p90={:>6.1} ms  max={:>6.1} ms",
            percentile(&samples, 0.5),
            percentile(&samples, 0.9),
            percentile(&samples, 1.0)
        );
    }
}
