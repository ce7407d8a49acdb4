//! A small deterministic game for the plugin tests: players move with inputs and
//! fire bullets (spawned and despawned inside the rollback schedule); hits score
//! and write a rollback-safe message. Each player has a cosmetic child.

#![allow(
    dead_code,
    missing_docs,
    clippy::unwrap_used,
    clippy::too_many_arguments
)]

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_rtcplay::prelude::*;
use rtcplay::session::{Frame, PlayerType, SessionBuilder};
use rtcplay::transport::{PeerId, SharedMemoryNetwork};
use serde::{Deserialize, Serialize};

pub type Input = u8;
pub const FRAME: Duration = Duration::from_micros(16_667);

#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Pos {
    pub x: i32,
    pub y: i32,
}

#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Vel {
    pub x: i32,
    pub y: i32,
}

#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Player {
    pub handle: usize,
    pub cooldown: u32,
}

#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Bullet {
    pub owner: usize,
    pub ttl: u32,
}

/// Cosmetic, never rolled back.
#[derive(Component)]
pub struct Sparkle;

#[derive(Resource, Clone, Hash, Default, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score(pub [i32; 4]);

#[derive(Message, Clone, Debug)]
pub struct Hit {
    pub shooter: usize,
}

/// Per frame: state checksum after the step (the last write is the final one).
#[derive(Resource, Default)]
pub struct StateLog(pub BTreeMap<Frame, u64>);

/// Per frame: hits written by the step (the last simulation's count).
#[derive(Resource, Default)]
pub struct HitsWritten(pub BTreeMap<Frame, usize>);

/// Per frame: `Confirmed<Hit>` messages received outside the rollback schedule.
#[derive(Resource, Default)]
pub struct HitsDelivered(pub BTreeMap<Frame, usize>);

/// Times each frame was simulated (>1 means it was re-simulated).
#[derive(Resource, Default)]
pub struct Simulations(pub BTreeMap<Frame, u32>);

/// Scripted input for `handle` at `frame`: changes every ~12 frames, fires often.
pub fn scripted(handle: usize, frame: Frame) -> Input {
    let mut z = u64::from(frame / 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (handle as u64 * 77);
    z ^= z >> 29;
    z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z >> 50) as u8 & 0x1F
}

fn spawn_players(mut commands: Commands, session: Res<PlayersCount>) {
    for handle in 0..session.0 {
        commands
            .spawn((
                Player {
                    handle,
                    cooldown: 0,
                },
                Pos {
                    x: 200 * handle as i32 - 200,
                    y: 0,
                },
                Vel::default(),
                Rollback::new(),
            ))
            .with_child(Sparkle);
    }
}

#[derive(Resource)]
pub struct PlayersCount(pub usize);

/// Which local handle this app plays and its scripted input source.
#[derive(Resource)]
pub struct LocalPlayer(pub usize);

fn read_input(
    mut inputs: ResMut<LocalInputs<Input>>,
    local: Res<LocalPlayer>,
    frame: Res<RollbackFrame>,
) {
    inputs.set(local.0, scripted(local.0, frame.frame));
}

fn move_players(
    inputs: Res<PlayerInputs<Input>>,
    mut players: Query<(&Player, &mut Pos, &mut Vel)>,
) {
    for (p, mut pos, mut vel) in &mut players {
        let (input, _) = inputs.get(p.handle);
        let dx = i32::from(input & 1) - i32::from((input >> 1) & 1);
        let dy = i32::from((input >> 2) & 1) - i32::from((input >> 3) & 1);
        vel.x = (vel.x + dx * 2).clamp(-12, 12);
        vel.y = (vel.y + dy * 2).clamp(-12, 12);
        pos.x = (pos.x + vel.x).clamp(-400, 400);
        pos.y = (pos.y + vel.y).clamp(-300, 300);
    }
}

fn fire(
    mut commands: Commands,
    inputs: Res<PlayerInputs<Input>>,
    mut players: Query<(&mut Player, &Pos)>,
) {
    // Spawn in handle order: rollback ids are handed out in spawn order.
    let mut sorted: Vec<_> = players.iter_mut().collect();
    sorted.sort_by_key(|(p, _)| p.handle);
    let positions: Vec<Pos> = sorted.iter().map(|(_, pos)| **pos).collect();
    let n = positions.len();
    for (i, (mut p, pos)) in sorted.into_iter().enumerate() {
        p.cooldown = p.cooldown.saturating_sub(1);
        let (input, _) = inputs.get(p.handle);
        if input & 16 != 0 && p.cooldown == 0 {
            p.cooldown = 15;
            // Aim at the next player.
            let target = positions[(i + 1) % n];
            commands.spawn((
                Bullet {
                    owner: p.handle,
                    ttl: 60,
                },
                *pos,
                Vel {
                    x: (target.x - pos.x).signum() * 16,
                    y: (target.y - pos.y).signum() * 16,
                },
                Rollback::new(),
            ));
        }
    }
}

fn move_bullets(
    mut commands: Commands,
    mut bullets: Query<(Entity, &mut Bullet, &mut Pos, &Vel), Without<Player>>,
    players: Query<(&Player, &Pos)>,
    mut score: ResMut<Score>,
    mut hits: MessageWriter<Hit>,
) {
    for (e, mut b, mut pos, vel) in &mut bullets {
        pos.x += vel.x;
        pos.y += vel.y;
        b.ttl = b.ttl.saturating_sub(1);
        let hit = players.iter().find(|(p, pp)| {
            p.handle != b.owner && (pp.x - pos.x).abs() < 40 && (pp.y - pos.y).abs() < 40
        });
        if hit.is_some() {
            score.0[b.owner] += 1;
            hits.write(Hit { shooter: b.owner });
            commands.entity(e).despawn();
        } else if b.ttl == 0 {
            commands.entity(e).despawn();
        }
    }
}

/// Runs last in the step: log the state and the hits written this frame.
fn log_state(
    frame: Res<RollbackFrame>,
    players: Query<(&Rollback, &Player, &Pos, &Vel)>,
    bullets: Query<(&Rollback, &Bullet, &Pos)>,
    score: Res<Score>,
    mut log: ResMut<StateLog>,
    mut sims: ResMut<Simulations>,
    hits: Res<bevy::ecs::message::Messages<Hit>>,
    mut written: ResMut<HitsWritten>,
) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut ps: Vec<_> = players
        .iter()
        .map(|(r, p, pos, v)| (r.id(), *p, *pos, *v))
        .collect();
    ps.sort_by_key(|x| x.0);
    let mut bs: Vec<_> = bullets
        .iter()
        .map(|(r, b, pos)| (r.id(), *b, *pos))
        .collect();
    bs.sort_by_key(|x| x.0);
    ps.hash(&mut h);
    bs.hash(&mut h);
    score.hash(&mut h);
    log.0.insert(frame.frame, h.finish());
    *sims.0.entry(frame.frame).or_default() += 1;
    written.0.insert(frame.frame, hits.len());
}

fn count_confirmed_hits(
    mut reader: MessageReader<Confirmed<Hit>>,
    mut delivered: ResMut<HitsDelivered>,
) {
    for hit in reader.read() {
        *delivered.0.entry(hit.frame).or_default() += 1;
    }
}

/// Collect session events outside the rollback schedule.
#[derive(Resource, Default)]
pub struct Events(pub Vec<RtcPlayEvent>);

fn collect_events(mut reader: MessageReader<RtcPlayEvent>, mut events: ResMut<Events>) {
    events.0.extend(reader.read().cloned());
}

/// A headless app running the test game.
pub fn game_app(players: usize, local: usize) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, RtcPlayPlugin::<Input>::default()))
        .insert_resource(TimeUpdateStrategy::ManualDuration(FRAME))
        .insert_resource(PlayersCount(players))
        .insert_resource(LocalPlayer(local))
        .init_resource::<Score>()
        .init_resource::<StateLog>()
        .init_resource::<HitsWritten>()
        .init_resource::<HitsDelivered>()
        .init_resource::<Simulations>()
        .init_resource::<Events>()
        .rollback_component_with_checksum::<Pos>()
        .rollback_component_with_checksum::<Vel>()
        .rollback_component_with_checksum::<Player>()
        .rollback_component_with_checksum::<Bullet>()
        .rollback_resource_with_checksum::<Score>()
        .transfer_component::<Pos>()
        .transfer_component::<Vel>()
        .transfer_component::<Player>()
        .transfer_component::<Bullet>()
        .transfer_resource::<Score>()
        .add_rollback_message::<Hit>()
        .add_systems(Startup, spawn_players)
        .add_systems(ReadInputs, read_input)
        .add_systems(
            RollbackSchedule,
            (move_players, fire, move_bullets, log_state).chain(),
        )
        .add_systems(Update, (count_confirmed_hits, collect_events));
    app
}

/// `players` apps on a shared in-memory network, one P2P session each.
pub fn p2p_apps(
    players: usize,
    conditions: rtcplay::netem::LinkConditions,
    seed: u64,
) -> (Vec<App>, SharedMemoryNetwork) {
    let ids: Vec<PeerId> = (0..players as u32).map(PeerId).collect();
    let net = SharedMemoryNetwork::new(rtcplay::transport::MemoryNetwork::new(
        &ids, conditions, seed,
    ));
    let apps = (0..players)
        .map(|me| p2p_app(players, me, &net, None))
        .collect();
    (apps, net)
}

/// The app of player `me` (peer id `me`) on `net`; with `rejoin`, a fresh app
/// whose session rejoins the running match under that incarnation number.
pub fn p2p_app(players: usize, me: usize, net: &SharedMemoryNetwork, rejoin: Option<u32>) -> App {
    let mut b = SessionBuilder::<Input>::new()
        .with_num_players(players)
        .with_checksum_interval(10);
    for h in 0..players {
        let kind = if h == me {
            PlayerType::Local
        } else {
            PlayerType::Remote(PeerId(h as u32))
        };
        b = b.add_player(kind, h);
    }
    if let Some(incarnation) = rejoin {
        b = b.rejoining(incarnation);
    }
    let session = b.start_p2p_session().unwrap();
    let mut app = game_app(players, me);
    app.insert_resource(RtcPlaySession::p2p(
        session,
        net.endpoint(PeerId(me as u32)),
    ));
    app
}

/// Update every app once per simulated frame.
pub fn run(apps: &mut [App], net: &SharedMemoryNetwork, updates: u32, start: &mut Duration) {
    for _ in 0..updates {
        *start += FRAME;
        let now = *start;
        net.with(|n| n.set_now(now));
        for app in apps.iter_mut() {
            app.update();
        }
    }
}

/// The app's `Rejoined` event, if its session rejoined: (frame its inputs
/// count from, frame of the imported state).
pub fn rejoined(app: &App) -> Option<(Frame, Frame)> {
    app.world()
        .resource::<Events>()
        .0
        .iter()
        .find_map(|e| match e {
            RtcPlayEvent::Session(SessionEvent::Rejoined {
                frame, state_frame, ..
            }) => Some((*frame, *state_frame)),
            _ => None,
        })
}

pub fn confirmed(app: &App) -> Frame {
    app.world()
        .resource::<RollbackFrame>()
        .confirmed
        .unwrap_or(0)
}
