//! The windowed front end: sprites drawn smoothly outside the rollback schedule,
//! the HUD and the status screens.

use std::path::PathBuf;
use std::time::Duration;

use bevy::input::InputSystems;
use bevy::prelude::*;
use bevy::render::view::screenshot::{save_to_disk, Screenshot, ScreenshotCaptured};
use bevy::window::{PrimaryWindow, WindowResolution};
use bevy_rtcplay::prelude::*;
use bevy_rtcplay::ConnectStatus;

use crate::app::{result_line, KeyboardInput, LiveStats, Outcome, EXIT_MATCH};
use crate::game::{
    Arena, ArenaInput, HitEvent, Player, Pos, Shot, DASH, DOWN, FIRE, HALF_H, HALF_W, LEFT, ONE,
    REMATCH_DELAY, RIGHT, UP,
};

/// Windowed-mode options.
#[derive(Resource, Debug, Clone, Default)]
pub struct WindowOptions {
    /// Save a screenshot here once the match has run for a while, then exit.
    pub screenshot: Option<PathBuf>,
    /// What the status screen says while connecting (e.g. the server URL).
    pub signal_url: String,
}

/// The default plugins for the window.
fn window_plugins() -> bevy::app::PluginGroupBuilder {
    DefaultPlugins
        .set(bevy::log::LogPlugin {
            filter: format!(
                "warn,{},rtcplay=info,bevy_rtcplay=info,rtcplay_demo=info",
                crate::QUIET_WEBRTC
            ),
            ..default()
        })
        .set(WindowPlugin {
            primary_window: Some(Window {
                title: "rtcplay demo".into(),
                resolution: WindowResolution::new(960, 720),
                // In the browser: the page's canvas (demo_game/web/index.html),
                // keys kept from scrolling the page.
                canvas: cfg!(target_arch = "wasm32").then(|| "#rtcplay".into()),
                prevent_default_event_handling: true,
                ..default()
            }),
            ..default()
        })
}

/// An app with the window's plugins, rendering, HUD and keyboard input.
pub fn windowed_app(options: WindowOptions) -> App {
    let mut app = App::new();
    app.add_plugins(window_plugins());
    add_window(&mut app, options);
    app
}

/// Add rendering, HUD and keyboard input.
fn add_window(app: &mut App, options: WindowOptions) {
    app.insert_resource(options)
        .insert_resource(ClearColor(Color::srgb(0.05, 0.05, 0.08)))
        .init_resource::<KeyboardInput>()
        .init_resource::<ScreenshotState>()
        .add_systems(Startup, setup)
        .add_systems(
            PreUpdate,
            (read_keyboard, replay_keys)
                .after(InputSystems)
                .before(RtcPlaySystems::Advance),
        )
        .add_systems(
            Update,
            (
                attach_visuals,
                interpolate,
                hit_effects,
                fade_effects,
                update_hud,
                take_screenshot,
            ),
        );
}

const COLORS: [Color; 4] = [
    Color::srgb(0.30, 0.70, 1.00),
    Color::srgb(1.00, 0.45, 0.35),
    Color::srgb(0.45, 0.95, 0.45),
    Color::srgb(1.00, 0.85, 0.30),
];

#[derive(Component)]
struct StatusText;
#[derive(Component)]
struct StatsText;
#[derive(Component)]
struct ScoreText;
#[derive(Component)]
struct Effect(f32);

fn setup(mut commands: Commands) {
    commands.spawn(Camera2d);
    // The arena floor.
    commands.spawn((
        Sprite::from_color(
            Color::srgb(0.12, 0.13, 0.18),
            Vec2::new((2 * HALF_W / ONE) as f32, (2 * HALF_H / ONE) as f32),
        ),
        Transform::from_xyz(0.0, 0.0, -1.0),
    ));
    let font = |size: f32| TextFont {
        font_size: FontSize::Px(size),
        ..default()
    };
    commands.spawn((
        StatsText,
        Text::new(""),
        font(14.0),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Px(8.0),
            top: Val::Px(6.0),
            ..default()
        },
    ));
    commands.spawn((
        ScoreText,
        Text::new(""),
        font(20.0),
        Node {
            position_type: PositionType::Absolute,
            right: Val::Px(10.0),
            top: Val::Px(6.0),
            ..default()
        },
    ));
    commands.spawn((
        StatusText,
        Text::new(""),
        font(32.0),
        TextLayout::justify(Justify::Center),
        Node {
            position_type: PositionType::Absolute,
            width: Val::Percent(100.0),
            top: Val::Percent(42.0),
            justify_content: JustifyContent::Center,
            ..default()
        },
    ));
}

/// Replay keys: Space pause, . step, Left/Right 5 s, Home start, [ ] speed.
fn replay_keys(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    session: Option<Res<RtcPlaySession<ArenaInput>>>,
    mut control: ResMut<ReplayControl>,
) {
    let (Some(keys), Some(RtcPlaySession::Replay(replay))) = (keys, session.as_deref()) else {
        return;
    };
    let frame = replay.current_frame();
    let start = replay.replay().start_frame();
    let five_s = 5 * replay.replay().header().fps;
    if keys.just_pressed(KeyCode::Space) {
        control.paused = !control.paused;
    }
    if keys.just_pressed(KeyCode::Period) {
        control.step();
    }
    if keys.just_pressed(KeyCode::ArrowLeft) {
        control.seek(frame.saturating_sub(five_s).max(start));
    }
    if keys.just_pressed(KeyCode::ArrowRight) {
        control.seek((frame + five_s).min(replay.end_frame()));
    }
    if keys.just_pressed(KeyCode::Home) {
        control.seek(start);
    }
    if keys.just_pressed(KeyCode::BracketLeft) {
        control.speed = (control.speed / 2.0).max(0.25);
    }
    if keys.just_pressed(KeyCode::BracketRight) {
        control.speed = (control.speed * 2.0).min(8.0);
    }
}

fn read_keyboard(keys: Option<Res<ButtonInput<KeyCode>>>, mut out: ResMut<KeyboardInput>) {
    let Some(keys) = keys else {
        return;
    };
    let any = |codes: &[KeyCode]| keys.any_pressed(codes.iter().copied());
    let mut input: ArenaInput = 0;
    if any(&[KeyCode::KeyW, KeyCode::ArrowUp]) {
        input |= UP;
    }
    if any(&[KeyCode::KeyS, KeyCode::ArrowDown]) {
        input |= DOWN;
    }
    if any(&[KeyCode::KeyA, KeyCode::ArrowLeft]) {
        input |= LEFT;
    }
    if any(&[KeyCode::KeyD, KeyCode::ArrowRight]) {
        input |= RIGHT;
    }
    if any(&[KeyCode::Space, KeyCode::KeyJ]) {
        input |= FIRE;
    }
    if any(&[KeyCode::ShiftLeft, KeyCode::ShiftRight, KeyCode::KeyK]) {
        input |= DASH;
    }
    out.0 = input;
}

fn to_screen(pos: &Pos) -> Vec3 {
    Vec3::new(pos.x as f32 / ONE as f32, pos.y as f32 / ONE as f32, 0.0)
}

/// Rollback entities carry no visuals (a load may respawn them); add sprites to
/// any avatar or shot that has none.
fn attach_visuals(
    mut commands: Commands,
    players: Query<(Entity, &Player, &Pos), Without<Sprite>>,
    shots: Query<(Entity, &Shot, &Pos), Without<Sprite>>,
) {
    for (e, p, pos) in &players {
        commands.entity(e).insert((
            Sprite::from_color(COLORS[usize::from(p.handle % 4)], Vec2::splat(28.0)),
            Transform::from_translation(to_screen(pos) + Vec3::Z),
        ));
    }
    for (e, s, pos) in &shots {
        let color = COLORS[usize::from(s.owner % 4)].lighter(0.2);
        commands.entity(e).insert((
            Sprite::from_color(color, Vec2::splat(8.0)),
            Transform::from_translation(to_screen(pos) + Vec3::Z * 2.0),
        ));
    }
}

/// Draw smoothly: ease towards the simulated position; snap on big jumps
/// (rollback corrections of more than a few pixels, round restarts).
fn interpolate(
    time: Res<Time>,
    mut q: Query<(&Pos, &mut Transform, &mut Sprite, Option<&Player>)>,
) {
    let k = 1.0 - (-time.delta_secs() * 30.0).exp();
    for (pos, mut t, mut sprite, player) in &mut q {
        let target = to_screen(pos).with_z(t.translation.z);
        if t.translation.distance(target) > 60.0 {
            t.translation = target;
        } else {
            t.translation = t.translation.lerp(target, k);
        }
        if let Some(p) = player {
            let base = COLORS[usize::from(p.handle % 4)];
            sprite.color = if p.stunned > 0 {
                base.with_alpha(0.35)
            } else if p.dashing > 0 {
                base.lighter(0.25)
            } else {
                base
            };
        }
    }
}

/// Effects only for confirmed hits: never shown twice, never for a hit that a
/// rollback undid.
fn hit_effects(
    mut commands: Commands,
    mut hits: MessageReader<Confirmed<HitEvent>>,
    players: Query<(&Player, &Pos)>,
) {
    for hit in hits.read() {
        if let Some((_, pos)) = players.iter().find(|(p, _)| p.handle == hit.message.victim) {
            commands.spawn((
                Effect(0.4),
                Sprite::from_color(
                    COLORS[usize::from(hit.message.shooter % 4)].with_alpha(0.6),
                    Vec2::splat(56.0),
                ),
                Transform::from_translation(to_screen(pos) - Vec3::Z * 0.5),
            ));
        }
    }
}

fn fade_effects(
    mut commands: Commands,
    time: Res<Time>,
    mut q: Query<(Entity, &mut Effect, &mut Sprite, &mut Transform)>,
) {
    for (e, mut fx, mut sprite, mut t) in &mut q {
        fx.0 -= time.delta_secs();
        if fx.0 <= 0.0 {
            commands.entity(e).despawn();
        } else {
            sprite.color = sprite.color.with_alpha(fx.0 * 1.5);
            t.scale = Vec3::splat(1.0 + (0.4 - fx.0) * 2.0);
        }
    }
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn update_hud(
    status: Res<ConnectStatus>,
    options: Res<WindowOptions>,
    outcome: Res<Outcome>,
    arena: Res<Arena>,
    live: Res<LiveStats>,
    frame: Res<RollbackFrame>,
    session: Option<Res<RtcPlaySession<ArenaInput>>>,
    peers: Option<Res<ConnectedPeers>>,
    settings: Option<Res<crate::app::DemoSettings>>,
    lobby: Option<Res<crate::lobby::LobbyLog>>,
    mut texts: ParamSet<(
        Query<&mut Text, With<StatusText>>,
        Query<&mut Text, With<StatsText>>,
        Query<&mut Text, With<ScoreText>>,
    )>,
) {
    let running = session.as_deref().is_some_and(|s| match s {
        RtcPlaySession::P2P { session, .. } => session.is_running(),
        RtcPlaySession::Spectator { session, .. } => session.is_running(),
        RtcPlaySession::SyncTest(_) | RtcPlaySession::Replay(_) => true,
    }) || (settings.as_deref().is_some_and(|s| s.state_sync)
        && *status == ConnectStatus::Running);
    let replay = match session.as_deref() {
        Some(RtcPlaySession::Replay(r)) => Some(r),
        _ => None,
    };
    let behind = match session.as_deref() {
        Some(RtcPlaySession::Spectator { session, .. }) => session.frames_behind_host(),
        _ => 0,
    };
    // Players whose link is being set up again, by their HUD name.
    let reconnecting: Vec<String> = peers
        .as_deref()
        .map(|peers| {
            peers
                .reconnecting
                .iter()
                .filter_map(|p| peers.peers.iter().position(|q| q == p))
                .map(|h| format!("P{}", h + 1))
                .collect()
        })
        .unwrap_or_default();
    let message = if let Some((code, error)) = &outcome.error {
        if *code == EXIT_MATCH {
            format!("Peer disconnected\n{error}\n(close the window to quit)")
        } else {
            format!("Error\n{error}\n(close the window to quit)")
        }
    } else if let Some(r) = replay {
        format!(
            "Replay: frame {} of {}  x{}{}\nSpace pause · . step · ←/→ 5 s · Home start · [ ] speed",
            r.current_frame(),
            r.end_frame(),
            r.speed(),
            if r.is_finished() {
                "  (end)"
            } else if r.is_paused() {
                "  (paused)"
            } else {
                ""
            }
        )
    } else {
        match &*status {
            ConnectStatus::Connecting => format!("Connecting to {}…", options.signal_url),
            ConnectStatus::WaitingForPlayers { have, need } => {
                format!("Waiting for players\n{have} of {need} here")
            }
            ConnectStatus::ConnectingPeers => "Connecting to the players…".to_string(),
            ConnectStatus::Failed(reason) => format!("Could not connect\n{reason}"),
            ConnectStatus::Running if peers.as_deref().is_some_and(|p| p.rejoining) => {
                "Connection lost: taking our seat back…".to_string()
            }
            ConnectStatus::Running if !reconnecting.is_empty() => {
                format!("{} reconnecting…", reconnecting.join(", "))
            }
            _ if !running => "Synchronizing…".to_string(),
            _ if behind > 30 => format!("Spectating: catching up\n{behind} frames behind"),
            _ if arena.winner.is_some() => {
                let left = arena
                    .ended_at
                    .map_or(0, |end| (end + REMATCH_DELAY).saturating_sub(frame.frame));
                format!(
                    "{}\nRematch in {} s (close the window to quit)",
                    result_line(&arena).trim_start_matches("result: "),
                    left / 60 + 1
                )
            }
            _ if arena.intermission > 0 => format!(
                "Round {} starts in {}",
                arena.round + 1,
                arena.intermission / 60 + 1
            ),
            _ => String::new(),
        }
    };
    if let Ok(mut t) = texts.p0().single_mut() {
        if t.0 != message {
            t.0 = message;
        }
    }
    if let Ok(mut t) = texts.p1().single_mut() {
        // Stats, then the lobby's last lines (chat, ready flags).
        let recent = lobby
            .as_deref()
            .map(|l| &l.lines[l.lines.len().saturating_sub(3)..])
            .unwrap_or_default();
        let joined = live
            .lines
            .iter()
            .chain(recent)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        if t.0 != joined {
            t.0 = joined;
        }
    }
    if let Ok(mut t) = texts.p2().single_mut() {
        let n = usize::from(arena.players);
        let line = (0..n)
            .map(|h| {
                format!(
                    "P{}: {} hits, {} rounds",
                    h + 1,
                    arena.hits[h],
                    arena.rounds[h]
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let line = format!("Round {}\n{line}", arena.round);
        if t.0 != line {
            t.0 = line;
        }
    }
}

#[derive(Resource, Default)]
struct ScreenshotState {
    running_for: Duration,
    requested: bool,
    saved_after: Option<Duration>,
}

/// `--screenshot`: once the match has run for two seconds, save the window and
/// exit a little later (the capture completes asynchronously).
#[allow(clippy::too_many_arguments)]
fn take_screenshot(
    mut commands: Commands,
    time: Res<Time<Real>>,
    options: Res<WindowOptions>,
    frame: Res<RollbackFrame>,
    status: Res<ConnectStatus>,
    settings: Option<Res<crate::app::DemoSettings>>,
    mut state: ResMut<ScreenshotState>,
    window: Query<(), With<PrimaryWindow>>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(path) = &options.screenshot else {
        return;
    };
    let state_sync_running =
        settings.is_some_and(|s| s.state_sync) && *status == ConnectStatus::Running;
    if frame.frame > 0 || state_sync_running {
        state.running_for += time.delta();
    }
    if !state.requested && state.running_for > Duration::from_secs(2) && !window.is_empty() {
        state.requested = true;
        let path = path.clone();
        commands
            .spawn(Screenshot::primary_window())
            .observe(save_to_disk(path.clone()))
            .observe(move |shot: On<ScreenshotCaptured>| {
                let size = shot.image.size();
                println!(
                    "screenshot {}x{} saved to {}",
                    size.x,
                    size.y,
                    path.display()
                );
            });
        state.saved_after = Some(state.running_for);
    }
    if let Some(at) = state.saved_after {
        if path.exists() && state.running_for > at + Duration::from_millis(500) {
            exit.write(AppExit::Success);
        }
        if state.running_for > at + Duration::from_secs(20) {
            eprintln!("error: the screenshot was never written");
            exit.write(AppExit::error());
        }
    }
}
