//! The arena's rules: deterministic integer math, run in the rollback schedule.
//!
//! Positions and velocities are fixed-point integers: 1 pixel = [`ONE`] units
//! (24.8 fixed point). No floats touch the simulation, so every peer computes the
//! same bits on any CPU.

use std::hash::{Hash, Hasher};

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use serde::{Deserialize, Serialize};

/// Fixed-point units per pixel.
pub const ONE: i32 = 256;
/// Half the arena's width, in units.
pub const HALF_W: i32 = 400 * ONE;
/// Half the arena's height, in units.
pub const HALF_H: i32 = 300 * ONE;
/// A player's radius, in units.
pub const PLAYER_R: i32 = 14 * ONE;
/// A projectile's radius, in units.
pub const SHOT_R: i32 = 4 * ONE;
/// Hits that win a round.
pub const HITS_TO_WIN_ROUND: u8 = 3;
/// Rounds that win the match.
pub const ROUNDS_TO_WIN_MATCH: u8 = 2;
/// Frames between a round's end and the next round.
pub const INTERMISSION: u16 = 90;
/// Frames between a match's end and the rematch (5 s at 60 Hz).
pub const REMATCH_DELAY: u32 = 300;

const ACCEL: i32 = ONE / 2;
const MAX_SPEED: i32 = 5 * ONE;
const FRICTION_NUM: i32 = 7;
const FRICTION_DEN: i32 = 8;
const DASH_SPEED: i32 = 14 * ONE;
const DASH_FRAMES: u8 = 8;
const DASH_COOLDOWN: u8 = 60;
const FIRE_COOLDOWN: u8 = 18;
const SHOT_SPEED: i32 = 9 * ONE;
const SHOT_TTL: u16 = 100;
const STUN_FRAMES: u8 = 30;

/// One player's buttons for one frame.
pub type ArenaInput = u8;
/// Input bit: move up.
pub const UP: u8 = 1;
/// Input bit: move down.
pub const DOWN: u8 = 2;
/// Input bit: move left.
pub const LEFT: u8 = 4;
/// Input bit: move right.
pub const RIGHT: u8 = 8;
/// Input bit: fire in the facing direction.
pub const FIRE: u8 = 16;
/// Input bit: dash in the facing direction.
pub const DASH: u8 = 32;

/// Position in fixed-point units (origin at the arena's centre, y up).
#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Pos {
    /// x.
    pub x: i32,
    /// y.
    pub y: i32,
}

/// Velocity in units per frame.
#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Vel {
    /// x.
    pub x: i32,
    /// y.
    pub y: i32,
}

/// A player avatar and its timers.
#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Player {
    /// The player's handle (0..players).
    pub handle: u8,
    /// Facing direction, each of x and y in -1..=1, never both 0.
    pub facing: (i8, i8),
    /// Frames until the next shot.
    pub fire_cooldown: u8,
    /// Frames until the next dash.
    pub dash_cooldown: u8,
    /// Frames of dash left.
    pub dashing: u8,
    /// Frames of knock-back stun left (no control, no damage).
    pub stunned: u8,
}

/// A projectile.
#[derive(Component, Clone, Copy, Hash, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Shot {
    /// Who fired it.
    pub owner: u8,
    /// Frames left to live.
    pub ttl: u16,
}

/// Scores, rounds and the match state.
#[derive(Resource, Clone, Copy, Hash, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Arena {
    /// Players in the match.
    pub players: u8,
    /// Hits landed this round, per player.
    pub hits: [u8; 4],
    /// Rounds won, per player.
    pub rounds: [u8; 4],
    /// Round number, from 1.
    pub round: u16,
    /// Frames until the next round starts (0 while a round is on).
    pub intermission: u16,
    /// The match winner, once there is one.
    pub winner: Option<u8>,
    /// Frame the match ended on.
    pub ended_at: Option<u32>,
    /// Matches finished before this one (a rematch starts [`REMATCH_DELAY`]
    /// frames after a match ends).
    pub matches: u16,
}

/// A hit, written in the rollback schedule and delivered once per confirmed frame
/// (as `Confirmed<HitEvent>`): drives effects.
#[derive(Message, Clone, Copy, Debug)]
pub struct HitEvent {
    /// Who fired.
    pub shooter: u8,
    /// Who was hit.
    pub victim: u8,
}

/// Where player `handle` of `players` starts a round.
pub fn spawn_point(handle: u8, players: u8) -> Pos {
    let corners = [(-1, 1), (1, -1), (1, 1), (-1, -1)];
    let (cx, cy) = corners[usize::from(handle % 4)];
    let _ = players;
    Pos {
        x: cx * (HALF_W - 80 * ONE),
        y: cy * (HALF_H - 80 * ONE),
    }
}

fn facing_of(handle: u8) -> (i8, i8) {
    if handle.is_multiple_of(2) {
        (1, 0)
    } else {
        (-1, 0)
    }
}

/// Startup: spawn one avatar per player.
pub fn spawn_players(mut commands: Commands, arena: Res<Arena>) {
    for handle in 0..arena.players {
        commands.spawn((
            Player {
                handle,
                facing: facing_of(handle),
                fire_cooldown: 0,
                dash_cooldown: 0,
                dashing: 0,
                stunned: 0,
            },
            spawn_point(handle, arena.players),
            Vel::default(),
            Rollback::new(),
        ));
    }
}

fn axis(input: u8, neg: u8, pos: u8) -> i32 {
    i32::from(input & pos != 0) - i32::from(input & neg != 0)
}

/// Movement, dashes and facing from inputs.
pub fn move_players(
    inputs: Res<PlayerInputs<ArenaInput>>,
    arena: Res<Arena>,
    mut players: Query<(&mut Player, &mut Pos, &mut Vel)>,
) {
    let frozen = arena.intermission > 0 || arena.winner.is_some();
    for (mut p, mut pos, mut vel) in &mut players {
        let (input, _) = inputs.get(usize::from(p.handle));
        step_player(&mut p, &mut pos, &mut vel, if frozen { 0 } else { input });
    }
}

/// One frame of one avatar's movement, dash and facing under `input` (both
/// netcode modes move avatars with it).
pub fn step_player(p: &mut Player, pos: &mut Pos, vel: &mut Vel, input: ArenaInput) {
    let input = if p.stunned > 0 { 0 } else { input };
    let dx = axis(input, LEFT, RIGHT);
    let dy = axis(input, DOWN, UP);
    if dx != 0 || dy != 0 {
        p.facing = (dx as i8, dy as i8);
    }
    p.fire_cooldown = p.fire_cooldown.saturating_sub(1);
    p.dash_cooldown = p.dash_cooldown.saturating_sub(1);
    p.stunned = p.stunned.saturating_sub(1);
    if input & DASH != 0 && p.dash_cooldown == 0 {
        p.dashing = DASH_FRAMES;
        p.dash_cooldown = DASH_COOLDOWN;
    }
    if p.dashing > 0 {
        p.dashing -= 1;
        vel.x = i32::from(p.facing.0) * DASH_SPEED;
        vel.y = i32::from(p.facing.1) * DASH_SPEED;
    } else {
        vel.x = ((vel.x + dx * ACCEL) * FRICTION_NUM / FRICTION_DEN).clamp(-MAX_SPEED, MAX_SPEED);
        vel.y = ((vel.y + dy * ACCEL) * FRICTION_NUM / FRICTION_DEN).clamp(-MAX_SPEED, MAX_SPEED);
    }
    pos.x = (pos.x + vel.x).clamp(-HALF_W + PLAYER_R, HALF_W - PLAYER_R);
    pos.y = (pos.y + vel.y).clamp(-HALF_H + PLAYER_R, HALF_H - PLAYER_R);
}

/// Fire projectiles (spawned in handle order, so rollback ids match on every peer).
pub fn fire(
    mut commands: Commands,
    inputs: Res<PlayerInputs<ArenaInput>>,
    arena: Res<Arena>,
    mut players: Query<(&mut Player, &Pos)>,
) {
    if arena.intermission > 0 || arena.winner.is_some() {
        return;
    }
    let mut sorted: Vec<_> = players.iter_mut().collect();
    sorted.sort_by_key(|(p, _)| p.handle);
    for (mut p, pos) in sorted {
        let (input, _) = inputs.get(usize::from(p.handle));
        if let Some(shot) = fire_shot(&mut p, pos, input) {
            commands.spawn((shot, Rollback::new()));
        }
    }
}

/// The shot `p` fires under `input`, if it can fire now (both netcode modes).
pub fn fire_shot(p: &mut Player, pos: &Pos, input: ArenaInput) -> Option<(Shot, Pos, Vel)> {
    if input & FIRE == 0 || p.fire_cooldown > 0 || p.stunned > 0 {
        return None;
    }
    p.fire_cooldown = FIRE_COOLDOWN;
    let (fx, fy) = (i32::from(p.facing.0), i32::from(p.facing.1));
    // Diagonal shots are as fast as straight ones (181/256 ≈ 1/√2).
    let speed = if fx != 0 && fy != 0 {
        SHOT_SPEED * 181 / 256
    } else {
        SHOT_SPEED
    };
    Some((
        Shot {
            owner: p.handle,
            ttl: SHOT_TTL,
        },
        Pos {
            x: pos.x + fx * (PLAYER_R + SHOT_R + ONE),
            y: pos.y + fy * (PLAYER_R + SHOT_R + ONE),
        },
        Vel {
            x: fx * speed,
            y: fy * speed,
        },
    ))
}

/// Where a shot reaches a player: true if `shot_at` touches `player_at`.
pub fn shot_hits(shot_at: &Pos, player_at: &Pos) -> bool {
    let reach = i64::from(PLAYER_R + SHOT_R);
    let (dx, dy) = (
        i64::from(player_at.x - shot_at.x),
        i64::from(player_at.y - shot_at.y),
    );
    dx * dx + dy * dy <= reach * reach
}

/// Frames a hit player is stunned.
pub const STUN: u8 = STUN_FRAMES;

/// Move projectiles, land hits, score, knock back.
pub fn move_shots(
    mut commands: Commands,
    mut shots: Query<(Entity, &Rollback, &mut Shot, &mut Pos, &Vel), Without<Player>>,
    mut players: Query<(&mut Player, &Pos, &mut Vel), Without<Shot>>,
    mut arena: ResMut<Arena>,
    mut hits: MessageWriter<HitEvent>,
) {
    // Oldest shot first: the order decides who scores when two shots land together.
    let mut sorted: Vec<_> = shots.iter_mut().collect();
    sorted.sort_by_key(|(_, r, ..)| r.id());
    for (entity, _, mut shot, mut pos, vel) in sorted {
        pos.x += vel.x;
        pos.y += vel.y;
        shot.ttl = shot.ttl.saturating_sub(1);
        let out = pos.x.abs() > HALF_W || pos.y.abs() > HALF_H;
        let mut hit = None;
        for (mut p, ppos, mut pvel) in &mut players {
            if p.handle != shot.owner && p.stunned == 0 && shot_hits(&pos, ppos) {
                p.stunned = STUN_FRAMES;
                p.dashing = 0;
                pvel.x = vel.x;
                pvel.y = vel.y;
                hit = Some(p.handle);
                break;
            }
        }
        if let Some(victim) = hit {
            if arena.intermission == 0 && arena.winner.is_none() {
                arena.hits[usize::from(shot.owner)] += 1;
                hits.write(HitEvent {
                    shooter: shot.owner,
                    victim,
                });
            }
            commands.entity(entity).despawn();
        } else if out || shot.ttl == 0 {
            commands.entity(entity).despawn();
        }
    }
}

/// Round and match flow: a round ends at [`HITS_TO_WIN_ROUND`] hits, the next one
/// starts after [`INTERMISSION`] frames with everyone back at their spawn point; a
/// match ends at [`ROUNDS_TO_WIN_MATCH`] rounds and a rematch starts
/// [`REMATCH_DELAY`] frames later.
pub fn round_flow(
    mut commands: Commands,
    frame: Res<RollbackFrame>,
    mut arena: ResMut<Arena>,
    mut players: Query<(&mut Player, &mut Pos, &mut Vel)>,
    shots: Query<Entity, With<Shot>>,
) {
    if let Some(end) = arena.ended_at {
        if frame.frame >= end.saturating_add(REMATCH_DELAY) {
            *arena = Arena {
                players: arena.players,
                round: 1,
                matches: arena.matches.saturating_add(1),
                ..Arena::default()
            };
            restart_round(&mut commands, arena.players, &mut players, &shots);
        }
        return;
    }
    if arena.intermission > 0 {
        arena.intermission -= 1;
        if arena.intermission == 0 {
            arena.round += 1;
            arena.hits = [0; 4];
            restart_round(&mut commands, arena.players, &mut players, &shots);
        }
        return;
    }
    let leader = (0..arena.players).find(|h| arena.hits[usize::from(*h)] >= HITS_TO_WIN_ROUND);
    if let Some(h) = leader {
        arena.rounds[usize::from(h)] += 1;
        if arena.rounds[usize::from(h)] >= ROUNDS_TO_WIN_MATCH {
            arena.winner = Some(h);
            arena.ended_at = Some(frame.frame);
        } else {
            arena.intermission = INTERMISSION;
        }
    }
}

/// Everyone back to their spawn point, projectiles gone.
fn restart_round(
    commands: &mut Commands,
    n: u8,
    players: &mut Query<(&mut Player, &mut Pos, &mut Vel)>,
    shots: &Query<Entity, With<Shot>>,
) {
    for (mut p, mut pos, mut vel) in players.iter_mut() {
        *pos = spawn_point(p.handle, n);
        *vel = Vel::default();
        p.facing = facing_of(p.handle);
        p.stunned = 0;
        p.dashing = 0;
    }
    for e in shots {
        commands.entity(e).despawn();
    }
}

/// The state checksum of the frame just simulated (written last in the step; the
/// final simulation of a frame overwrites earlier ones).
#[derive(Resource, Debug, Default)]
pub struct FrameChecksums {
    /// Frame whose checksum is wanted (the `--frames` target), if any.
    pub target: Option<u32>,
    /// Checksum of the state after simulating frame `target - 1`.
    pub at_target: Option<u64>,
}

/// Checksum of the whole game state: every avatar and shot by rollback id, and the
/// arena. Uses a fixed hasher (no random seed), so processes agree.
pub fn state_checksum(
    players: &Query<(&Rollback, &Player, &Pos, &Vel)>,
    shots: &Query<(&Rollback, &Shot, &Pos, &Vel)>,
    arena: &Arena,
) -> u64 {
    let mut h = bevy_rtcplay::StableHasher::default();
    let mut ps: Vec<_> = players
        .iter()
        .map(|(r, p, pos, v)| (r.id(), *p, *pos, *v))
        .collect();
    ps.sort_by_key(|x| x.0);
    let mut ss: Vec<_> = shots
        .iter()
        .map(|(r, s, pos, v)| (r.id(), *s, *pos, *v))
        .collect();
    ss.sort_by_key(|x| x.0);
    ps.hash(&mut h);
    ss.hash(&mut h);
    arena.hash(&mut h);
    h.finish()
}

/// Last in the step: record the checksum of the `--frames` target state.
pub fn record_checksum(
    frame: Res<RollbackFrame>,
    players: Query<(&Rollback, &Player, &Pos, &Vel)>,
    shots: Query<(&Rollback, &Shot, &Pos, &Vel)>,
    arena: Res<Arena>,
    mut sums: ResMut<FrameChecksums>,
) {
    if sums.target.is_some_and(|t| t > 0 && frame.frame == t - 1) {
        sums.at_target = Some(state_checksum(&players, &shots, &arena));
    }
}

/// Registers the game's rollback state and systems on an app that already has
/// `RtcPlayPlugin::<ArenaInput>`.
pub fn add_game(app: &mut App, players: u8) {
    app.insert_resource(Arena {
        players,
        round: 1,
        ..Arena::default()
    })
    .init_resource::<FrameChecksums>()
    .rollback_component_with_checksum::<Pos>()
    .rollback_component_with_checksum::<Vel>()
    .rollback_component_with_checksum::<Player>()
    .rollback_component_with_checksum::<Shot>()
    .rollback_resource_with_checksum::<Arena>()
    // A player that rejoins a running match gets all of it from a survivor.
    .transfer_component::<Pos>()
    .transfer_component::<Vel>()
    .transfer_component::<Player>()
    .transfer_component::<Shot>()
    .transfer_resource::<Arena>()
    .add_rollback_message::<HitEvent>()
    .add_systems(Startup, spawn_players)
    .add_systems(
        RollbackSchedule,
        (move_players, fire, move_shots, round_flow, record_checksum).chain(),
    );
}
