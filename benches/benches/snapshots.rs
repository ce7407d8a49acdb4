//! Snapshot save, load and a full 8-frame rollback (8 × advance + save, then a
//! load): bevy_rtcplay vs bevy_ggrs 0.22 in the same run, for 1k and 10k entities
//! with one Copy component, and with a Copy plus a Clone component holding a String.
//!
//! `cargo bench -p rtcplay_benches --bench snapshots`

#![allow(missing_docs)] // criterion_group! generates undocumented items

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

#[derive(Component, Clone, Copy, Hash, PartialEq)]
struct Counter(u64);

#[derive(Component, Clone, Hash, PartialEq)]
struct Label(String);

fn increment(mut q: Query<&mut Counter>) {
    for mut c in &mut q {
        c.0 += 1;
    }
}

/// The libraries under test, driven the same way.
trait Snapshots {
    fn app(entities: usize, with_string: bool) -> App;
    fn advance(app: &mut App);
    fn save(app: &mut App, frame: i32);
    fn load(app: &mut App, frame: i32);
}

struct Rtcplay;

impl Snapshots for Rtcplay {
    fn app(entities: usize, with_string: bool) -> App {
        use bevy_rtcplay::prelude::*;
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, RtcPlayPlugin::<u8>::default()))
            .rollback_component::<Counter>()
            .add_systems(RollbackSchedule, increment);
        if with_string {
            app.rollback_component::<Label>();
        }
        app.update();
        app.world_mut()
            .run_system_once(move |mut commands: Commands| {
                for i in 0..entities {
                    let mut e = commands.spawn((Counter(i as u64), Rollback::new()));
                    if with_string {
                        e.insert(Label(format!("entity number {i}")));
                    }
                }
            })
            .expect("spawn");
        app
    }
    fn advance(app: &mut App) {
        app.world_mut().run_schedule(bevy_rtcplay::RollbackSchedule);
    }
    fn save(app: &mut App, frame: i32) {
        bevy_rtcplay::save_world(app.world_mut(), frame as u32);
    }
    fn load(app: &mut App, frame: i32) {
        bevy_rtcplay::load_world(app.world_mut(), frame as u32);
    }
}

struct BevyGgrs;

impl Snapshots for BevyGgrs {
    fn app(entities: usize, with_string: bool) -> App {
        use bevy_ggrs::prelude::*;
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, bevy_ggrs::SnapshotPlugin))
            .rollback_component_with_copy::<Counter>()
            .add_systems(bevy_ggrs::AdvanceWorld, increment);
        if with_string {
            app.rollback_component_with_clone::<Label>();
        }
        app.update();
        app.world_mut()
            .run_system_once(move |mut commands: Commands| {
                for i in 0..entities {
                    let mut e = commands.spawn((Counter(i as u64), Rollback));
                    if with_string {
                        e.insert(Label(format!("entity number {i}")));
                    }
                }
            })
            .expect("spawn");
        app
    }
    fn advance(app: &mut App) {
        app.world_mut().run_schedule(bevy_ggrs::AdvanceWorld);
    }
    fn save(app: &mut App, frame: i32) {
        app.insert_resource(bevy_ggrs::RollbackFrameCount(frame));
        app.world_mut().run_schedule(bevy_ggrs::SaveWorld);
    }
    fn load(app: &mut App, frame: i32) {
        app.insert_resource(bevy_ggrs::RollbackFrameCount(frame));
        app.world_mut().run_schedule(bevy_ggrs::LoadWorld);
    }
}

const CASES: [(usize, bool, &str); 4] = [
    (1_000, false, "1k_copy"),
    (10_000, false, "10k_copy"),
    (1_000, true, "1k_copy+string"),
    (10_000, true, "10k_copy+string"),
];

fn bench_lib<S: Snapshots>(c: &mut Criterion, name: &str) {
    for (entities, with_string, case) in CASES {
        let mut app = S::app(entities, with_string);
        let mut frame = 1;
        c.benchmark_group("snapshot_save")
            .bench_function(BenchmarkId::new(name, case), |b| {
                b.iter(|| {
                    S::save(&mut app, frame % 8 + 1);
                    frame += 1;
                })
            });
        S::save(&mut app, 1);
        c.benchmark_group("snapshot_load")
            .bench_function(BenchmarkId::new(name, case), |b| {
                b.iter(|| S::load(&mut app, 1))
            });
        c.benchmark_group("rollback_8_frames")
            .bench_function(BenchmarkId::new(name, case), |b| {
                b.iter(|| {
                    for f in 1..=8 {
                        S::advance(&mut app);
                        S::save(&mut app, f);
                    }
                    S::load(&mut app, 1);
                })
            });
    }
}

fn snapshots(c: &mut Criterion) {
    bench_lib::<Rtcplay>(c, "bevy_rtcplay");
    bench_lib::<BevyGgrs>(c, "bevy_ggrs");
}

criterion_group!(benches, snapshots);
criterion_main!(benches);
