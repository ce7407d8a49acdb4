//! Building the Bevy app (windowed or headless) and following the match to its end.

use std::net::IpAddr;
use std::time::Duration;

// `std::time::Instant` does not exist in the browser; Bevy's works everywhere.
use bevy::platform::time::Instant;

use bevy::app::AppExit;
use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use bevy_rtcplay::{
    ConnectStatus, ConnectedPeers, PeerDroppedIn, RtcPlayConnect, RtcPlayConnectPlugin,
};
use rtcplay::netem::Preset;
use rtcplay::session::ReplayEvent;
use rtcplay::transport::{IceServerConfig, PeerId};

use crate::bot::{bot_input, View};
use crate::game::{add_game, Arena, ArenaInput, FrameChecksums, Player, Pos, Shot};

/// Exit code: the match could not start (bad flags, unreachable server, room
/// trouble, ...).
pub const EXIT_CONNECT: u8 = 2;
/// Exit code: a peer left or desynced before the match ended.
pub const EXIT_MATCH: u8 = 3;

/// The demo's build string in its replays: a replay plays only in the same
/// version of the demo (another version may simulate differently).
pub const BUILD: &str = concat!("rtcplay-demo ", env!("CARGO_PKG_VERSION"));

/// How this endpoint takes part.
#[derive(Resource, Debug, Clone)]
pub struct DemoSettings {
    /// Players in the match.
    pub players: u8,
    /// The local player(s) are played by the AI.
    pub bot: bool,
    /// Sync-test: every player is local.
    pub synctest: bool,
    /// Watch the match as a spectator (no local player).
    pub spectate: bool,
    /// Played in a window: a rematch follows each match, and an error stays on
    /// screen until the window is closed (instead of ending the app).
    pub windowed: bool,
    /// Stop after this many frames and print the state checksum.
    pub frames: Option<u32>,
    /// Print progress and stats (headless main endpoint).
    pub verbose: bool,
    /// Label in printed lines (e.g. `bot 2` for the in-process bot peers).
    pub label: String,
    /// Give up when the room is not complete after this long.
    pub wait_timeout: Duration,
    /// Started with `--rejoin` (to come back to our own seat).
    pub rejoin: bool,
    /// Playing a recorded match (no local player, no network).
    pub replay: bool,
    /// State sync instead of rollback (`--netcode state`).
    pub state_sync: bool,
}

/// How the match went, once it is over (read by `main` after the app returns).
#[derive(Resource, Debug, Clone, Default)]
pub struct Outcome {
    /// When the result was known (we then linger so peers get our last inputs).
    pub done_at: Option<Instant>,
    /// Lines to print at the end.
    pub result: Vec<String>,
    /// Error that ended the match early.
    pub error: Option<(u8, String)>,
    /// Frame the result refers to.
    pub final_frame: Option<u32>,
    /// When connecting started.
    pub started: Option<Instant>,
    /// When the session started running (all peers synchronized).
    pub running_since: Option<Instant>,
    /// A desync was detected: when, and its message; the match ends once the
    /// peers have compared their values (or after [`FORENSICS_WAIT`]).
    pub desync: Option<(Instant, String)>,
}

/// How long a desynced endpoint waits for the peer's values before it ends.
const FORENSICS_WAIT: Duration = Duration::from_secs(3);

/// Where the app leaves its [`Outcome`] for `main` (`App::run` consumes the world).
#[derive(Resource, Debug, Clone, Default)]
pub struct OutcomeSink(pub std::sync::Arc<std::sync::Mutex<Outcome>>);

impl OutcomeSink {
    /// The latest outcome (the desktop program reads it after the app returns).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub fn get(&self) -> Outcome {
        self.0.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

fn publish_outcome(outcome: Res<Outcome>, sink: Res<OutcomeSink>) {
    if outcome.is_changed() {
        if let Ok(mut slot) = sink.0.lock() {
            *slot = outcome.clone();
        }
    }
}

/// Rollbacks per second and the latest stats line, refreshed once a second.
#[derive(Resource, Debug, Clone, Default)]
pub struct LiveStats {
    /// Text lines (one per peer plus a session line).
    pub lines: Vec<String>,
    last: Option<(Instant, u64, u64)>,
}

/// How this endpoint meets the others (from the command line or the page's URL).
#[derive(Debug, Clone)]
pub struct MeetOptions {
    /// Signaling server URL.
    pub url: String,
    /// Room name.
    pub room: String,
    /// Players in the match.
    pub players: u8,
    /// Fixed input delay; `None` adapts it to the link (2 to 8 frames).
    pub input_delay: Option<u32>,
    /// Silence after which a peer counts as gone.
    pub disconnect_timeout: Duration,
    /// STUN / TURN servers.
    pub ice_servers: Vec<IceServerConfig>,
    /// Local IP for WebRTC (native only; the browser picks its own).
    pub bind_ip: IpAddr,
    /// Watch instead of play.
    pub spectate: bool,
    /// Link conditioner preset on this endpoint's traffic.
    pub netem: Option<Preset>,
    /// Drop-in match: start with this many players.
    pub start_with: Option<u8>,
}

impl MeetOptions {
    /// The connect request; `seed` seeds the link conditioner.
    pub fn request(&self, seed: u64) -> RtcPlayConnect {
        let mut c = RtcPlayConnect::new(
            self.url.clone(),
            self.room.clone(),
            usize::from(self.players),
        );
        match self.input_delay {
            Some(frames) => c = c.with_input_delay(frames),
            None => {
                c.session.adaptive_input_delay = true;
                c.session.max_input_delay = 8;
            }
        }
        c.session.disconnect_timeout = self.disconnect_timeout;
        c.ice_servers = self.ice_servers.clone();
        c.bind_ip = self.bind_ip;
        c.session.checksum_interval = 30;
        c.spectate = self.spectate;
        if let Some(k) = self.start_with {
            c = c.with_drop_in(usize::from(k));
        }
        if let Some(preset) = self.netem {
            c = c.with_netem(preset.conditions(), seed);
        }
        c
    }
}

/// Rejoin tokens: where to keep the one we are given, and which to try when
/// coming back (`--rejoin`). Native only (the tokens live in a file).
#[derive(Resource)]
pub struct RejoinSupport {
    /// Keeps a token for (server URL, room).
    pub remember: fn(&str, &str, &str),
    /// Tokens still to try, newest first, after the one in use was refused.
    pub candidates: Vec<String>,
    /// The connect request to retry with the next token.
    pub request: RtcPlayConnect,
    kept: bool,
}

impl RejoinSupport {
    /// Keep tokens with `remember`; retry `request` with `candidates` on refusal.
    pub fn new(
        remember: fn(&str, &str, &str),
        request: RtcPlayConnect,
        candidates: Vec<String>,
    ) -> Self {
        RejoinSupport {
            remember,
            candidates,
            request,
            kept: false,
        }
    }
}

/// Keep our rejoin token once we have one; when the server refuses the token we
/// came back with (another player's seat, or a stale one), try the next.
fn manage_rejoin(
    support: Option<ResMut<RejoinSupport>>,
    peers: Res<ConnectedPeers>,
    mut status: ResMut<ConnectStatus>,
    mut commands: Commands,
) {
    let Some(mut support) = support else { return };
    if let (Some(token), false) = (&peers.rejoin_token, support.kept) {
        support.kept = true;
        (support.remember)(&support.request.signal_url, &support.request.room, token);
    }
    let ConnectStatus::Failed(reason) = &*status else {
        return;
    };
    let refused = reason.contains("rejoin_refused") || reason.contains("seat_taken");
    if !refused || support.request.rejoin_token.is_none() || support.candidates.is_empty() {
        return;
    }
    let next = support.candidates.remove(0);
    support.request.rejoin_token = Some(next);
    commands.insert_resource(support.request.clone());
    *status = ConnectStatus::Connecting;
}

/// Print a line where the player sees it: stdout, or the browser's console.
pub fn print_line(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
}

/// Add the game, the rollback plugin, inputs and match tracking to `app`.
pub fn configure(app: &mut App, settings: DemoSettings) -> OutcomeSink {
    let sink = OutcomeSink::default();
    let players = settings.players;
    app.add_plugins((
        RtcPlayPlugin::<ArenaInput>::default(),
        RtcPlayConnectPlugin::<ArenaInput>::default(),
    ));
    crate::lobby::add_lobby(app);
    if settings.state_sync {
        // No rollback session: the plugin is there for the window's sake.
        crate::state_mode::configure(app, players);
        app.insert_resource(settings)
            .init_resource::<Outcome>()
            .init_resource::<LiveStats>()
            .insert_resource(sink.clone())
            .add_systems(Last, publish_outcome);
        return sink;
    }
    add_game(app, players);
    if let Some(n) = settings.frames {
        app.world_mut().resource_mut::<FrameChecksums>().target = Some(n);
    }
    app.insert_resource(settings)
        .init_resource::<Outcome>()
        .init_resource::<LiveStats>()
        .add_systems(ReadInputs, read_local_inputs)
        .insert_resource(sink.clone())
        .add_systems(
            Update,
            (manage_rejoin, follow_match, update_live_stats).chain(),
        )
        .add_systems(Last, publish_outcome)
        .add_systems(
            RollbackSchedule,
            inject_desync.before(crate::game::record_checksum),
        );
    sink
}

/// Test hook (`--inject-desync F`): this endpoint alone nudges player 2's
/// position at frame F, as a non-deterministic bug would.
#[derive(Resource, Debug, Clone, Copy)]
pub struct InjectDesync(pub u32);

fn inject_desync(
    inject: Option<Res<InjectDesync>>,
    frame: Res<RollbackFrame>,
    mut players: Query<(&Player, &mut Pos)>,
) {
    if inject.is_some_and(|i| i.0 == frame.frame) {
        for (player, mut pos) in &mut players {
            if player.handle == 1 {
                pos.x += 1;
            }
        }
    }
}

/// Start connecting (P2P) or a sync-test session.
pub fn start_session(app: &mut App, connect: Option<RtcPlayConnect>, players: u8) {
    match connect {
        Some(connect) => {
            app.insert_resource(connect);
        }
        None => match RtcPlaySession::<ArenaInput>::sync_test(usize::from(players), 7) {
            Ok(session) => {
                app.insert_resource(session);
                app.world_mut().resource_mut::<Outcome>().running_since = Some(Instant::now());
            }
            Err(e) => {
                app.world_mut().resource_mut::<Outcome>().error =
                    Some((EXIT_CONNECT, format!("sync-test session: {e}")));
            }
        },
    }
}

/// The handles this endpoint plays.
fn local_handles(settings: &DemoSettings, peers: &ConnectedPeers) -> Vec<u8> {
    if settings.spectate || settings.replay {
        Vec::new()
    } else if settings.synctest {
        (0..settings.players).collect()
    } else {
        vec![u8::try_from(peers.local_handle).unwrap_or(0)]
    }
}

/// Keyboard for the human player: WASD / arrows move, Space fires, Shift dashes.
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct KeyboardInput(pub ArenaInput);

fn read_local_inputs(
    settings: Res<DemoSettings>,
    peers: Res<ConnectedPeers>,
    frame: Res<RollbackFrame>,
    keyboard: Option<Res<KeyboardInput>>,
    players: Query<(&Player, &Pos)>,
    shots: Query<(&Shot, &Pos)>,
    mut inputs: ResMut<LocalInputs<ArenaInput>>,
) {
    let players: Vec<(Player, Pos)> = players.iter().map(|(p, pos)| (*p, *pos)).collect();
    let shots: Vec<(Shot, Pos)> = shots.iter().map(|(s, pos)| (*s, *pos)).collect();
    let view = View {
        players: &players,
        shots: &shots,
    };
    for (i, handle) in local_handles(&settings, &peers).into_iter().enumerate() {
        let human = !settings.bot && i == 0;
        let input = match (&keyboard, human) {
            (Some(k), true) => k.0,
            _ => bot_input(handle, frame.frame, &view),
        };
        inputs.set(usize::from(handle), input);
    }
}

/// Watch connection status, session events and the match result; end the app
/// when the match is over (after lingering until the peers have our last inputs).
#[allow(clippy::too_many_arguments)]
fn follow_match(
    settings: Res<DemoSettings>,
    status: Res<ConnectStatus>,
    frame: Res<RollbackFrame>,
    arena: Res<Arena>,
    sums: Res<FrameChecksums>,
    stats: Res<NetworkStats>,
    session: Option<Res<RtcPlaySession<ArenaInput>>>,
    peers: Res<ConnectedPeers>,
    mut spectators_seen: Local<usize>,
    mut matches_announced: Local<Option<u16>>,
    mut caught_up: Local<bool>,
    mut newcomers: Local<Vec<PeerId>>,
    mut dropped_in: MessageReader<PeerDroppedIn>,
    mut events: MessageReader<RtcPlayEvent>,
    mut outcome: ResMut<Outcome>,
    mut exit: MessageWriter<AppExit>,
) {
    let say = |line: &str| {
        if settings.verbose {
            print_line(&format!("{}{line}", prefix(&settings)));
        }
    };
    if let Some((code, _)) = &outcome.error {
        if !settings.windowed {
            exit.write(AppExit::Error(code_nz(*code)));
        }
        return;
    }
    if status.is_changed() && !settings.synctest {
        match &*status {
            ConnectStatus::Connecting => say("connecting to the signaling server…"),
            ConnectStatus::WaitingForPlayers { have, need } => say(&format!(
                "in the room, waiting for players ({have}/{need} here)"
            )),
            ConnectStatus::ConnectingPeers if settings.spectate => {
                say("the match is on; connecting to its host…")
            }
            ConnectStatus::ConnectingPeers => say("room full; connecting to the peers…"),
            ConnectStatus::Running if settings.spectate => {
                say("connected to the host over WebRTC; replaying the match…")
            }
            ConnectStatus::Running => say("all peers connected over WebRTC; synchronizing…"),
            ConnectStatus::Failed(reason) => {
                outcome.error =
                    Some((EXIT_CONNECT, format!("could not start the match: {reason}")));
            }
            ConnectStatus::Ended(reason) => say(&format!("no other player is left ({reason})")),
            ConnectStatus::Idle => {}
        }
    }
    if matches!(
        *status,
        ConnectStatus::Connecting
            | ConnectStatus::WaitingForPlayers { .. }
            | ConnectStatus::ConnectingPeers
    ) {
        let since = *outcome.started.get_or_insert_with(Instant::now);
        if since.elapsed() > settings.wait_timeout {
            outcome.error = Some((
                EXIT_CONNECT,
                format!(
                    "the room did not fill within {} s ({}): nobody joined, or the room is full",
                    settings.wait_timeout.as_secs(),
                    match &*status {
                        ConnectStatus::WaitingForPlayers { have, need } =>
                            format!("{have}/{need} players"),
                        ConnectStatus::ConnectingPeers => "the peers did not connect".into(),
                        _ => "still reaching the signaling server".into(),
                    }
                ),
            ));
            return;
        }
    }
    if let Some(RtcPlaySession::Spectator { session: s, .. }) = session.as_deref() {
        // Replaying the match from frame 0 until it is within a few frames of the host.
        if !*caught_up && s.is_running() && s.current_frame() > 0 && s.frames_behind_host() <= 8 {
            *caught_up = true;
            let secs = outcome
                .running_since
                .map_or(0.0, |t| t.elapsed().as_secs_f64());
            say(&format!(
                "caught up with the match at frame {} ({secs:.1} s after the replay started)",
                s.current_frame()
            ));
        }
    }
    for peer in peers.spectators.iter().skip(*spectators_seen) {
        say(&format!(
            "spectator {peer} joined; it replays the match and follows live"
        ));
    }
    *spectators_seen = peers.spectators.len();
    let done = outcome.done_at.is_some();
    for joined in dropped_in.read() {
        say(&format!(
            "{} took the free seat of player {}",
            joined.peer,
            joined.handle + 1
        ));
        newcomers.push(joined.peer);
    }
    for event in events.read() {
        match event {
            RtcPlayEvent::Session(SessionEvent::Running) => {
                outcome.running_since = Some(Instant::now());
                say("match running");
            }
            // Not one of the match's players: a spectator watching through us.
            RtcPlayEvent::Session(SessionEvent::Disconnected { peer, .. })
                if !peers.peers.contains(peer) =>
            {
                say(&format!("spectator {peer} left"));
            }
            RtcPlayEvent::Session(SessionEvent::Disconnected { peer, frame }) if !done => {
                let gone = |p: &PeerId| p == peer || peers.departed.iter().any(|(d, _)| d == p);
                let others = peers
                    .peers
                    .iter()
                    .filter(|p| Some(**p) != peers.me && !gone(p))
                    .count();
                // Its inputs reach past a `--frames` target: the match is
                // complete here too (it finished and left before we got there).
                let complete = settings.frames.is_some_and(|target| *frame >= target);
                if complete {
                    say(&format!(
                        "{peer} finished the match and left at frame {frame}"
                    ));
                } else if others == 0 {
                    outcome.error = Some((
                        EXIT_MATCH,
                        format!("{peer} left the match at frame {frame}: match abandoned"),
                    ));
                } else {
                    say(&format!(
                        "{peer} left the match at frame {frame}; playing on without it (its seat is held: it can come back with --rejoin)"
                    ));
                }
            }
            RtcPlayEvent::Session(SessionEvent::PeerRejoined { peer, frame })
                if newcomers.contains(peer) =>
            {
                newcomers.retain(|p| p != peer);
                say(&format!(
                    "{peer} joined the match: it plays from frame {frame}"
                ));
            }
            RtcPlayEvent::Session(SessionEvent::PeerRejoined { peer, frame }) => say(&format!(
                "{peer} rejoined the match: it plays again from frame {frame}"
            )),
            RtcPlayEvent::Session(SessionEvent::Rejoined {
                frame,
                state_frame,
                state_bytes,
                transfer,
            }) => {
                outcome.running_since = Some(Instant::now());
                let how = if settings.rejoin {
                    "rejoined the match"
                } else {
                    "joined the running match"
                };
                say(&format!(
                    "{how} with the state of frame {state_frame} ({state_bytes} bytes in {:.1} ms); playing from frame {frame}",
                    transfer.as_secs_f64() * 1000.0
                ));
            }
            RtcPlayEvent::Session(SessionEvent::NetworkInterrupted {
                peer,
                disconnect_in,
            }) if !done => say(&format!(
                "{peer} is not responding… (counts as gone in {:.1} s)",
                disconnect_in.as_secs_f64()
            )),
            RtcPlayEvent::Session(SessionEvent::NetworkResumed { peer }) if !done => {
                say(&format!("{peer} is back"))
            }
            RtcPlayEvent::Session(SessionEvent::InputDelayChanged { frames }) => {
                say(&format!("input delay now {frames} frames"))
            }
            RtcPlayEvent::Session(SessionEvent::DesyncDetected {
                frame, peer, parts, ..
            }) if outcome.desync.is_none() => {
                let message = format!("desync with {peer} at frame {frame} (differs: {parts:?})");
                say(&format!("{message}; comparing values with the peer…"));
                outcome.desync = Some((Instant::now(), message));
            }
            RtcPlayEvent::DesyncForensics(report) => {
                let values: Vec<String> = report.values.iter().map(ToString::to_string).collect();
                say(&format!(
                    "desync forensics: frame {} with {}: differing values {}{}",
                    report.frame,
                    report.peer,
                    values.join(", "),
                    report
                        .file
                        .as_deref()
                        .map(|f| format!(" (report: {f})"))
                        .unwrap_or_default()
                ));
                let message = outcome.desync.as_ref().map_or_else(
                    || format!("desync with {} at frame {}", report.peer, report.frame),
                    |(_, m)| m.clone(),
                );
                outcome.error = Some((EXIT_MATCH, message));
            }
            RtcPlayEvent::Replay(ReplayEvent::Mismatch(m)) => {
                outcome.error = Some((
                    EXIT_MATCH,
                    format!(
                        "the replay differs from the recorded match at frame {} (differs: {:?}): this build simulates it differently",
                        m.frame, m.parts
                    ),
                ));
            }
            RtcPlayEvent::SyncTestMismatch { frame, parts, .. } => {
                outcome.error = Some((
                    EXIT_MATCH,
                    format!("sync-test: frame {frame} re-simulated differently ({parts:?})"),
                ));
            }
            _ => {}
        }
    }
    if let Some((at, message)) = &outcome.desync {
        if outcome.error.is_none() && at.elapsed() > FORENSICS_WAIT {
            say("the peer's values did not arrive");
            outcome.error = Some((EXIT_MATCH, message.clone()));
        }
    }
    if outcome.error.is_some() {
        return;
    }
    let confirmed = frame.confirmed;
    if !done {
        if let (Some(target), Some(c)) = (settings.frames, confirmed) {
            if c + 1 >= target {
                if let Some(sum) = sums.at_target {
                    outcome.final_frame = Some(target);
                    outcome.result = vec![
                        result_line(&arena),
                        format!("frames {target} checksum {sum:016x}"),
                    ];
                    outcome.done_at = Some(Instant::now());
                }
            }
        } else if settings.frames.is_none() {
            if let (Some(end), Some(c)) = (arena.ended_at, confirmed) {
                if c >= end && settings.windowed {
                    if *matches_announced != Some(arena.matches) {
                        *matches_announced = Some(arena.matches);
                        say(&result_line(&arena));
                        say(&summary_line(&stats, outcome.running_since, frame.frame));
                        say("rematch in 5 s");
                    }
                } else if c >= end {
                    outcome.final_frame = Some(end);
                    outcome.result = vec![result_line(&arena)];
                    outcome.done_at = Some(Instant::now());
                }
            }
        }
        if outcome.done_at.is_some() {
            let summary = summary_line(&stats, outcome.running_since, frame.frame);
            outcome.result.push(summary);
            if let Some(RtcPlaySession::Replay(replay)) = session.as_deref() {
                outcome.result.push(format!(
                    "replay: {} recorded checksums verified, none differ",
                    replay.checksums_verified()
                ));
            }
            for line in outcome.result.clone() {
                say(&line);
            }
        }
    }
    // Linger until every peer has acknowledged our inputs past the final frame (it
    // then has what it needs to confirm it too), at most 5 s (a slow peer, e.g. a
    // software-rendered browser tab on a busy machine, acknowledges late).
    if let (Some(at), Some(last)) = (outcome.done_at, outcome.final_frame) {
        let delay = match session.as_deref() {
            Some(RtcPlaySession::P2P { session, .. }) => session.input_delay(),
            _ => 0,
        };
        let acked = stats
            .peers
            .iter()
            .all(|(_, s)| frame.frame + delay >= last + s.unacked_frames + 2);
        if acked || at.elapsed() > Duration::from_secs(5) {
            exit.write(AppExit::Success);
        }
    }
}

/// Whole-match figures: frame rate, rollbacks, depth and bandwidth per peer.
fn summary_line(stats: &NetworkStats, since: Option<Instant>, frame: u32) -> String {
    let secs = since.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-3);
    let s = &stats.session;
    let peers = stats.peers.len().max(1) as f64;
    let mean_depth = if s.rollbacks == 0 {
        0.0
    } else {
        s.rollback_frames as f64 / s.rollbacks as f64
    };
    format!(
        "summary: {frame} frames in {secs:.1} s ({:.1} fps), rollbacks {} ({:.1}/s, mean depth {mean_depth:.1}, max {}), sent {:.2} kbps per peer ({} datagrams)",
        f64::from(frame) / secs,
        s.rollbacks,
        s.rollbacks as f64 / secs,
        s.max_rollback_depth,
        s.bytes_sent as f64 * 8.0 / 1000.0 / secs / peers,
        s.datagrams_sent,
    )
}

fn code_nz(code: u8) -> std::num::NonZero<u8> {
    std::num::NonZero::new(code).unwrap_or(std::num::NonZero::<u8>::MIN)
}

/// Print `line` (with the endpoint's label) when this endpoint reports: the
/// main endpoint, or every endpoint of a `--frames` run (their end lines are
/// compared).
pub fn report(settings: &DemoSettings, line: &str) {
    if settings.verbose || settings.frames.is_some() {
        print_line(&format!("{}{line}", prefix(settings)));
    }
}

fn prefix(settings: &DemoSettings) -> String {
    if settings.label.is_empty() {
        String::new()
    } else {
        format!("[{}] ", settings.label)
    }
}

/// "player 2 wins the match (rounds 2-1)" or the current score.
pub fn result_line(arena: &Arena) -> String {
    let n = usize::from(arena.players);
    let rounds: Vec<String> = arena.rounds[..n].iter().map(u8::to_string).collect();
    match arena.winner {
        Some(w) => format!(
            "result: player {} wins the match (rounds {})",
            w + 1,
            rounds.join("-")
        ),
        None => {
            let hits: Vec<String> = arena.hits[..n].iter().map(u8::to_string).collect();
            format!(
                "result: no winner yet: round {} (rounds {}, hits {})",
                arena.round,
                rounds.join("-"),
                hits.join("-")
            )
        }
    }
}

fn update_live_stats(
    settings: Res<DemoSettings>,
    session: Option<Res<RtcPlaySession<ArenaInput>>>,
    stats: Res<NetworkStats>,
    peers: Res<ConnectedPeers>,
    frame: Res<RollbackFrame>,
    mut live: ResMut<LiveStats>,
) {
    let now = Instant::now();
    let (rollbacks, frames) = (stats.session.rollbacks, u64::from(frame.frame));
    let Some((at, last_rb, last_frames)) = live.last else {
        live.last = Some((now, rollbacks, frames));
        return;
    };
    let dt = now.duration_since(at).as_secs_f64();
    if dt < 1.0 {
        return;
    }
    live.last = Some((now, rollbacks, frames));
    let mut lines = Vec::new();
    if peers.spectating {
        lines.push("spectating: following the host's confirmed frames".to_string());
    }
    for (peer, s) in &stats.peers {
        // A spectator has no frame advantage (it may be replaying far behind):
        // its row shows how many of our frames it has yet to confirm instead.
        let advantage = || format!("advantage {:+}", s.local_frame_advantage);
        let (who, timing) = match peers.peers.iter().position(|p| p == peer) {
            Some(0) if peers.spectating => ("host".to_string(), advantage()),
            Some(h) => (format!("P{}", h + 1), advantage()),
            None => (
                "spectator".to_string(),
                format!("behind {}", s.unacked_frames),
            ),
        };
        lines.push(format!(
            "{who} {peer} {}: ping {} ms, {timing}, in {:.1} kbps, out {:.1} kbps",
            peers.connection_type(*peer),
            s.rtt.as_millis(),
            f64::from(s.bytes_in_per_sec) * 8.0 / 1000.0,
            f64::from(s.bytes_out_per_sec) * 8.0 / 1000.0,
        ));
    }
    let delay = match session.as_deref() {
        Some(RtcPlaySession::P2P { session, .. }) => {
            format!(", input delay {}", session.input_delay())
        }
        _ => String::new(),
    };
    lines.push(format!(
        "frame {} ({:.0} fps){delay}, rollbacks {:.1}/s, depth {} (max {})",
        frame.frame,
        (frames.saturating_sub(last_frames)) as f64 / dt,
        (rollbacks.saturating_sub(last_rb)) as f64 / dt,
        stats.session.last_rollback_depth,
        stats.session.max_rollback_depth,
    ));
    if settings.verbose {
        for line in &lines {
            print_line(&format!("{}stats: {line}", prefix(&settings)));
        }
    }
    live.lines = lines;
}
