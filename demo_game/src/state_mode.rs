//! `--netcode state`: the same arena with state sync instead of rollback. Each
//! player's avatar and shots are owned by that player and replicated to the
//! others (positions interpolated); a shot's owner decides what it hits and
//! tells everyone with a reliable event; the victim's owner takes the
//! knock-back. No rollback session runs.

use std::time::Duration;

use bevy::app::AppExit;
use bevy::platform::time::Instant;
use bevy::prelude::*;
use bevy_rtcplay::{
    ConnectStatus, ConnectedPeers, Interpolate, Replicated, ReplicationApp, ReplicationStats,
    RtcPlayConnect, Smoothing, StateStreamEvent, StateStreams,
};
use rtcplay::state_sync::StateEvent;

use crate::app::{report, DemoSettings, KeyboardInput, Outcome, EXIT_CONNECT, EXIT_MATCH};
use crate::bot::{bot_input, View};
use bevy_rtcplay::RollbackApp;

use crate::game::{
    fire_shot, shot_hits, spawn_point, step_player, Arena, HitEvent, Player, Pos, Shot, Vel,
    HALF_H, HALF_W, STUN,
};
use crate::lobby::{self, LobbyMessage};

/// Simulation steps per second (as the rollback mode's frames).
const STEPS_PER_SECOND: f64 = 60.0;
/// After the `--frames` target: how long every avatar must stand still before
/// the final line is printed.
const STILL_FOR: Duration = Duration::from_secs(1);
/// After the final line: time for our last values to reach the others.
const LINGER: Duration = Duration::from_secs(2);

/// Pixels are `ONE` units: interpolating positions rounds to whole units.
impl Interpolate for Pos {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        let mix = |a: i32, b: i32| (a as f32 + (b - a) as f32 * t).round() as i32;
        Pos {
            x: mix(self.x, to.x).clamp(-HALF_W, HALF_W),
            y: mix(self.y, to.y).clamp(-HALF_H, HALF_H),
        }
    }
    fn distance(&self, other: &Self) -> f32 {
        ((self.x - other.x) as f32).hypot((self.y - other.y) as f32)
    }
}

/// Steps simulated so far, and the match's progress.
#[derive(Resource, Default)]
struct StateMatch {
    step: u32,
    /// Our avatar is spawned.
    spawned: bool,
    /// Since when every avatar stood still (after the `--frames` target).
    still_since: Option<(Instant, Vec<(u8, Pos)>)>,
    /// The final line was printed at.
    finished_at: Option<Instant>,
}

/// Add the state-sync arena to `app` (the rollback plugin and its connect
/// plugin are there too, for the window's sake; no session runs).
pub fn configure(app: &mut App, players: u8) {
    app.insert_resource(Arena {
        players,
        round: 1,
        ..Arena::default()
    })
    .insert_resource(Time::<Fixed>::from_hz(STEPS_PER_SECOND))
    .init_resource::<StateMatch>()
    // The window's hit effects read it (they stay quiet in this mode).
    .add_rollback_message::<HitEvent>()
    .replicate_interpolated::<Pos>(Smoothing::default())
    .replicate::<Player>()
    .replicate::<Shot>()
    .add_systems(FixedUpdate, step_owned)
    .add_systems(
        Update,
        (take_hits, follow_state_match, update_state_stats).chain(),
    );
}

/// Once a second: per peer, how much its values are buffered beyond the
/// latency (measured jitter + 2 ticks) and the jitter; what we send.
fn update_state_stats(
    peers: Res<ConnectedPeers>,
    streams: Option<Res<StateStreams>>,
    mut live: ResMut<crate::app::LiveStats>,
    mut last: Local<Option<(Instant, u64)>>,
) {
    let Some(streams) = streams else { return };
    let sent = streams.sync.stats().bytes_sent;
    if last.is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(1)) {
        return;
    }
    let rate = last.map_or(0.0, |(at, bytes)| {
        sent.saturating_sub(bytes) as f64 / at.elapsed().as_secs_f64() / 1000.0
    });
    *last = Some((Instant::now(), sent));
    let tick_ms = 1000.0 / f64::from(streams.rate);
    let mut lines = vec![format!("state sync: sending {rate:.1} kB/s")];
    for (handle, peer) in peers.peers.iter().enumerate() {
        if Some(*peer) == peers.me {
            continue;
        }
        if let Some(clock) = streams.sync.clock(*peer) {
            // The delay's part beyond the latency: what interpolation buffers.
            lines.push(format!(
                "P{}: buffered {:.0} ms beyond latency (jitter {:.0} ms)",
                handle + 1,
                (clock.delay - clock.offset as f64) * tick_ms,
                clock.jitter as f64 * tick_ms
            ));
        }
    }
    live.lines = lines;
}

/// The connect request of a state-only match.
pub fn request(base: RtcPlayConnect) -> RtcPlayConnect {
    base.state_only()
}

/// One simulation step of what we own: our avatar moves and fires, our shots
/// fly and hit (the hit is announced to everyone).
#[allow(clippy::too_many_arguments)]
fn step_owned(
    mut commands: Commands,
    settings: Res<DemoSettings>,
    peers: Res<ConnectedPeers>,
    status: Res<ConnectStatus>,
    keyboard: Option<Res<KeyboardInput>>,
    mut state: ResMut<StateMatch>,
    mut arena: ResMut<Arena>,
    streams: Option<ResMut<StateStreams>>,
    mut avatars: Query<(&Replicated, &mut Player, &mut Pos, Option<&mut Vel>), Without<Shot>>,
    mut shots: Query<(Entity, &Replicated, &mut Shot, &mut Pos, &Vel), Without<Player>>,
) {
    let (Some(mut streams), ConnectStatus::Running) = (streams, &*status) else {
        return;
    };
    let handle = u8::try_from(peers.local_handle).unwrap_or(0);
    if !state.spawned {
        state.spawned = true;
        commands.spawn((
            Replicated::new(),
            Player {
                handle,
                facing: if handle % 2 == 0 { (1, 0) } else { (-1, 0) },
                fire_cooldown: 0,
                dash_cooldown: 0,
                dashing: 0,
                stunned: 0,
            },
            spawn_point(handle, settings.players),
            Vel::default(),
        ));
        return;
    }
    state.step += 1;
    let playing = settings.frames.is_none_or(|target| state.step <= target);
    // What the bot sees: every avatar and shot, ours and the mirrors.
    let players: Vec<(Player, Pos)> = avatars.iter().map(|(_, p, pos, _)| (*p, *pos)).collect();
    let flying: Vec<(Shot, Pos)> = shots.iter().map(|(_, _, s, pos, _)| (*s, *pos)).collect();
    let view = View {
        players: &players,
        shots: &flying,
    };
    let input = match (&keyboard, settings.bot) {
        _ if !playing => 0,
        (Some(k), false) => k.0,
        _ => bot_input(handle, state.step, &view),
    };
    for (r, mut p, mut pos, vel) in &mut avatars {
        let (true, Some(mut vel)) = (r.is_mine(), vel) else {
            continue;
        };
        step_player(&mut p, &mut pos, &mut vel, input);
        if let Some((shot, at, v)) = fire_shot(&mut p, &pos, input) {
            commands.spawn((Replicated::new(), shot, at, v));
        }
    }
    for (entity, r, mut shot, mut pos, vel) in &mut shots {
        if !r.is_mine() {
            continue;
        }
        pos.x += vel.x;
        pos.y += vel.y;
        shot.ttl = shot.ttl.saturating_sub(1);
        let victim = players
            .iter()
            .find(|(p, at)| p.handle != shot.owner && p.stunned == 0 && shot_hits(&pos, at))
            .map(|(p, _)| p.handle);
        if let Some(victim) = victim {
            // Ours to decide: everyone counts it, the victim's owner is knocked back.
            if let Some(hits) = arena.hits.get_mut(usize::from(shot.owner)) {
                // No rounds in this mode: a long match must not overflow.
                *hits = hits.saturating_add(1);
            }
            let hit = LobbyMessage::Hit {
                shooter: shot.owner,
                victim,
                push: (vel.x, vel.y),
            };
            lobby::send(&mut streams, &hit);
            commands.entity(entity).despawn();
        } else if pos.x.abs() > HALF_W || pos.y.abs() > HALF_H || shot.ttl == 0 {
            commands.entity(entity).despawn();
        }
    }
}

/// Hits announced by a shot's owner: counted, and our avatar knocked back
/// when it is the victim.
fn take_hits(
    peers: Res<ConnectedPeers>,
    mut events: MessageReader<StateStreamEvent>,
    mut arena: ResMut<Arena>,
    mut avatars: Query<(&Replicated, &mut Player, &mut Vel)>,
) {
    let me = u8::try_from(peers.local_handle).unwrap_or(0);
    for StateStreamEvent(event) in events.read() {
        let StateEvent::Event { bytes, .. } = event else {
            continue;
        };
        let Some(LobbyMessage::Hit {
            shooter,
            victim,
            push,
        }) = lobby::decode(bytes)
        else {
            continue;
        };
        if let Some(hits) = arena.hits.get_mut(usize::from(shooter)) {
            *hits = hits.saturating_add(1);
        }
        if victim != me {
            continue;
        }
        for (r, mut p, mut vel) in &mut avatars {
            if r.is_mine() {
                p.stunned = STUN;
                p.dashing = 0;
                vel.x = push.0;
                vel.y = push.1;
            }
        }
    }
}

/// Connection status, the `--frames` target and the end: once every avatar
/// has stood still for a second after the target, print the final line
/// (every avatar's position and the hits: equal on every peer when the state
/// converged), linger, exit.
#[allow(clippy::too_many_arguments)]
fn follow_state_match(
    settings: Res<DemoSettings>,
    status: Res<ConnectStatus>,
    peers: Res<ConnectedPeers>,
    arena: Res<Arena>,
    stats: Option<Res<ReplicationStats>>,
    streams: Option<Res<StateStreams>>,
    avatars: Query<(&Player, &Pos)>,
    shots: Query<(), With<Shot>>,
    mut state: ResMut<StateMatch>,
    mut outcome: ResMut<Outcome>,
    mut exit: MessageWriter<AppExit>,
) {
    let say = |line: &str| report(&settings, line);
    if status.is_changed() {
        match &*status {
            ConnectStatus::Running => say(&format!(
                "all peers connected over WebRTC; state sync running (player {})",
                peers.local_handle + 1
            )),
            ConnectStatus::Failed(reason) => {
                outcome.error =
                    Some((EXIT_CONNECT, format!("could not start the match: {reason}")));
            }
            ConnectStatus::Ended(reason) if state.finished_at.is_none() => {
                outcome.error = Some((EXIT_MATCH, format!("no other player is left ({reason})")));
            }
            _ => {}
        }
    }
    if let Some((code, _)) = &outcome.error {
        if !settings.windowed {
            exit.write(AppExit::Error(
                std::num::NonZeroU8::new(*code).unwrap_or(std::num::NonZeroU8::MIN),
            ));
        }
        return;
    }
    if let Some(at) = state.finished_at {
        if at.elapsed() >= LINGER && !settings.windowed {
            exit.write(AppExit::Success);
        }
        return;
    }
    let Some(target) = settings.frames else {
        return;
    };
    if state.step < target {
        return;
    }
    let mut now: Vec<(u8, Pos)> = avatars.iter().map(|(p, pos)| (p.handle, *pos)).collect();
    now.sort_by_key(|(h, _)| *h);
    let complete = now.len() == usize::from(settings.players) && shots.is_empty();
    match &state.still_since {
        Some((since, seen)) if complete && *seen == now => {
            if since.elapsed() < STILL_FOR {
                return;
            }
        }
        _ => {
            state.still_since = complete.then(|| (Instant::now(), now));
            return;
        }
    }
    let positions: Vec<String> = now
        .iter()
        .map(|(h, p)| format!("P{} ({},{})", h + 1, p.x, p.y))
        .collect();
    let hits: Vec<String> = arena.hits[..usize::from(settings.players)]
        .iter()
        .map(u8::to_string)
        .collect();
    say(&format!(
        "final: {} hits {}",
        positions.join(" "),
        hits.join("-")
    ));
    if let (Some(stats), Some(streams)) = (stats, streams) {
        let s = streams.sync.stats();
        say(&format!(
            "state sync: {} mirrors spawned, {} despawned, {} datagrams sent ({} bytes), dropped: {} not owner, {} malformed",
            stats.spawned, stats.despawned, s.datagrams_sent, s.bytes_sent, stats.not_owner, s.malformed
        ));
    }
    state.finished_at = Some(Instant::now());
    outcome.done_at = state.finished_at;
}
