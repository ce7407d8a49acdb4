//! The desktop program: command-line flags, the embedded signaling server, bot
//! peers in threads, a window or a headless run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bevy::app::AppExit;
use bevy::prelude::*;
use bevy_rtcplay::RtcPlayRecording;
use clap::Parser;
use rtcplay::signaling::WebFiles;

use crate::app::{self, DemoSettings, MeetOptions, Outcome, EXIT_CONNECT};
use crate::cli::{Cli, Netcode};
use crate::server::EmbeddedServer;
use crate::{headless, rejoin, replays, window, QUIET_WEBRTC};

/// Run the program with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_CONNECT)
        }
    }
}

/// Where the signaling server is and who runs it.
enum Meeting {
    /// Local match: embedded server on loopback, bot peers in threads.
    Local(EmbeddedServer),
    /// `--host`: embedded server, others join.
    Host(EmbeddedServer),
    /// `--signal URL`.
    Remote(String),
    /// `--synctest`: no network.
    SyncTest,
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let ice_servers = cli.ice_servers()?;
    let display = std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty());
    let headless = cli.headless || cli.frames.is_some() && cli.screenshot.is_none() || !display;
    if let Some(path) = cli.replay.clone() {
        return run_replay(&cli, &path, headless);
    }
    if !cli.headless && !display && cli.frames.is_none() {
        println!("no X11 display (DISPLAY is not set): playing the match headless");
    }
    if headless && cli.screenshot.is_some() {
        return Err("--screenshot needs a display".into());
    }
    if let Some(k) = cli.start_with {
        if k > cli.players {
            return Err(format!(
                "--start-with {k}: at most --players ({})",
                cli.players
            ));
        }
        if cli.signal.is_none() && cli.host.is_none() {
            return Err(
                "--start-with needs --host or --signal (a local match has all its bots from the start)"
                    .into(),
            );
        }
    }
    let meeting = if cli.synctest {
        Meeting::SyncTest
    } else if let Some(url) = &cli.signal {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(format!("--signal {url}: expected a ws:// or wss:// URL"));
        }
        Meeting::Remote(url.clone())
    } else if let Some(addr) = cli.host {
        let web = web_build(cli.web_dir.as_deref())?;
        let server = EmbeddedServer::start(addr, web.as_ref().map(|(_, files)| files.clone()))?;
        let bound = server
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let port = server.local_addr().map_or(0, |a| a.port());
        println!("signaling server listening on ws://{bound}");
        println!(
            "others join with: rtcplay-demo --signal ws://<this machine's address>:{port} --room {} --players {}",
            cli.room,
            cli.players
        );
        match &web {
            Some((dir, _)) => println!(
                "or in a browser (web build from {}): http://<this machine's address>:{port}/?room={}&players={}",
                dir.display(),
                cli.room,
                cli.players
            ),
            None => println!(
                "no web build found (build it with ./demo_game/build-web, or point --web-dir at one): browsers cannot join"
            ),
        }
        Meeting::Host(server)
    } else {
        let server = EmbeddedServer::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), None)?;
        Meeting::Local(server)
    };
    let url = match &meeting {
        Meeting::Local(s) | Meeting::Host(s) => s.local_url(),
        Meeting::Remote(url) => url.clone(),
        Meeting::SyncTest => String::new(),
    };
    let bind_ip = cli.bind.unwrap_or_else(|| default_bind(&meeting, &url));
    let meet = MeetOptions {
        url: url.clone(),
        room: cli.room.clone(),
        players: cli.players,
        input_delay: cli.input_delay,
        disconnect_timeout: Duration::from_secs_f64(cli.disconnect_timeout),
        ice_servers: ice_servers.clone(),
        bind_ip,
        spectate: cli.spectate,
        netem: cli.netem,
        start_with: cli.start_with,
    };
    let state_sync = cli.netcode == Netcode::State;
    let connect = |seed: u64| {
        let request = meet.request(seed);
        if state_sync {
            crate::state_mode::request(request)
        } else {
            request
        }
    };
    let settings = DemoSettings {
        players: cli.players,
        // Headless has no keyboard: the local player is a bot.
        bot: cli.bot || headless || cli.synctest,
        synctest: cli.synctest,
        spectate: cli.spectate,
        windowed: !headless,
        frames: cli.frames,
        verbose: true,
        label: String::new(),
        wait_timeout: Duration::from_secs(cli.wait_timeout),
        rejoin: cli.rejoin,
        replay: false,
        state_sync: cli.netcode == Netcode::State,
    };

    // Local match: the other players are bots in this process, connected over
    // real WebRTC through the embedded server.
    let mut bots = Vec::new();
    if let Meeting::Local(_) = meeting {
        println!(
            "local match: {} bot peer(s) join room `{}` on {url} over WebRTC",
            cli.players - 1,
            cli.room
        );
        for i in 1..cli.players {
            let bot_settings = DemoSettings {
                bot: true,
                verbose: false,
                label: format!("bot {i}"),
                ..settings.clone()
            };
            let c = connect(1000 + u64::from(i));
            let handle = std::thread::Builder::new()
                .name(format!("bot-peer-{i}"))
                .spawn(move || {
                    let mut app = headless::headless_app();
                    let _ = app::configure(&mut app, bot_settings);
                    app::start_session(&mut app, Some(c), 0);
                    app.run()
                })
                .map_err(|e| format!("cannot start a bot peer: {e}"))?;
            bots.push(handle);
        }
    }

    let mut app = if headless {
        init_logging();
        headless::headless_app()
    } else {
        window::windowed_app(window::WindowOptions {
            screenshot: cli.screenshot.clone(),
            signal_url: url.clone(),
        })
    };
    let players = settings.players;
    let sink = app::configure(&mut app, settings);
    let mut request = match meeting {
        Meeting::SyncTest => None,
        // Each process conditions its link with its own seed.
        _ => Some(connect(process_seed())),
    };
    if let (Some(base), false) = (&mut request, cli.spectate) {
        // Keep the token the server gives us; with --rejoin, come back with one.
        let mut candidates = Vec::new();
        if cli.rejoin {
            candidates = rejoin::tokens(&url, &cli.room);
            if candidates.is_empty() {
                return Err(format!(
                    "--rejoin: no rejoin token kept for room `{}` on {url} (looked in {})",
                    cli.room,
                    rejoin::token_file(&url, &cli.room).display()
                ));
            }
            base.rejoin_token = Some(candidates.remove(0));
        }
        app.insert_resource(app::RejoinSupport::new(
            rejoin::remember,
            base.clone(),
            candidates,
        ));
    }
    // Every rollback match is recorded: into --record FILE, or kept as the
    // last match (state sync has no replays).
    let recording = (!cli.synctest && !state_sync).then(|| {
        let explicit = cli.record.is_some();
        let path = cli
            .record
            .clone()
            .unwrap_or_else(replays::default_recording);
        (path, explicit)
    });
    if let Some((path, _)) = &recording {
        replays::prepare(path)?;
        app.insert_resource(RtcPlayRecording::to_file(path, app::BUILD));
    }
    if let Some(frame) = cli.inject_desync {
        app.insert_resource(app::InjectDesync(frame));
    }
    app::start_session(&mut app, request, players);
    let exit = app.run();
    if let Some((path, explicit)) = recording {
        if path.is_file() {
            let kept = replays::keep(&path, explicit);
            println!(
                "replay of this match: {} (watch it with: rtcplay-demo --replay {})",
                kept.display(),
                kept.display()
            );
        }
    }
    finish(exit, &sink, headless)
}

/// `--replay FILE`: play a recorded match, in a window or headless (as fast as
/// the machine goes, printing the `frames N checksum` line at the end).
fn run_replay(cli: &Cli, path: &Path, headless: bool) -> Result<ExitCode, String> {
    let opened = replays::open(path)?;
    println!(
        "replay {}: {} players, frames {}..{}{}",
        path.display(),
        opened.players,
        opened.start_frame,
        opened.end_frame,
        if opened.complete {
            ""
        } else {
            " (the recording stopped before the match ended)"
        }
    );
    if let Some(n) = cli.frames {
        if n > opened.end_frame {
            return Err(format!(
                "--frames {n}: the replay ends at frame {}",
                opened.end_frame
            ));
        }
    }
    let settings = DemoSettings {
        players: opened.players,
        bot: true,
        synctest: false,
        spectate: false,
        windowed: !headless,
        frames: cli.frames.or(headless.then_some(opened.end_frame)),
        verbose: true,
        label: String::new(),
        wait_timeout: Duration::from_secs(cli.wait_timeout),
        rejoin: false,
        replay: true,
        state_sync: false,
    };
    let mut app = if headless {
        init_logging();
        headless::unpaced_app()
    } else {
        window::windowed_app(window::WindowOptions {
            screenshot: cli.screenshot.clone(),
            signal_url: String::new(),
        })
    };
    let sink = app::configure(&mut app, settings);
    if headless {
        // No one watches: eight frames per update, updates back to back.
        let frame = Duration::from_secs(1) / 60;
        app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(frame * 8));
        app.world_mut()
            .resource_mut::<bevy_rtcplay::ReplayControl>()
            .speed = 8.0;
    }
    let end_frame = opened.end_frame;
    app.insert_resource(opened.session);
    app.world_mut().resource_mut::<Outcome>().running_since =
        Some(bevy::platform::time::Instant::now());
    if let Some(seeks) = cli.seek_bench {
        seek_bench(&mut app, end_frame, seeks);
        return Ok(ExitCode::SUCCESS);
    }
    let exit = app.run();
    finish(exit, &sink, headless)
}

/// `--seek-bench N`: play to the end (keeping states on the way, as a viewer
/// would), then jump to N frames spread over the match, each timed from the
/// request to the update that lands on it.
fn seek_bench(app: &mut App, end_frame: u32, seeks: u32) {
    use bevy_rtcplay::ReplayControl;
    if end_frame == 0 {
        println!("the replay has no frames to seek in");
        return;
    }
    let started = std::time::Instant::now();
    while app.world().resource::<ReplayControl>().frame() < end_frame {
        app.update();
    }
    println!(
        "played {end_frame} frames in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    app.world_mut().resource_mut::<ReplayControl>().paused = true;
    // A fixed spread of targets (a multiplicative walk), the same every run.
    let mut x: u64 = 1;
    for _ in 0..seeks {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let target = ((x >> 33) % u64::from(end_frame)) as u32;
        app.world_mut().resource_mut::<ReplayControl>().seek(target);
        let t = std::time::Instant::now();
        app.update();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let landed = app.world().resource::<ReplayControl>().frame();
        println!("seek to {target}: {ms:.2} ms (at {landed})");
    }
}

/// The exit code from how the app ended.
fn finish(exit: AppExit, sink: &app::OutcomeSink, headless: bool) -> Result<ExitCode, String> {
    let outcome: Outcome = sink.get();
    if let Some((code, message)) = &outcome.error {
        eprintln!("error: {message}");
        return Ok(ExitCode::from(*code));
    }
    match exit {
        AppExit::Success => {
            if outcome.done_at.is_none() && headless {
                eprintln!("error: the app stopped before the match ended");
                return Ok(ExitCode::from(app::EXIT_MATCH));
            }
            Ok(ExitCode::SUCCESS)
        }
        AppExit::Error(code) => Ok(ExitCode::from(code.get())),
    }
}

/// The web build `--host` serves: `--web-dir`, else `target/web/demo` under the
/// working directory or next to this program's build directory (where
/// `demo_game/build-web` puts it). `None` when there is none.
fn web_build(dir: Option<&Path>) -> Result<Option<(PathBuf, Arc<WebFiles>)>, String> {
    let found = match dir {
        Some(dir) if dir.join("index.html").is_file() => Some(dir.to_path_buf()),
        Some(dir) => {
            return Err(format!(
                "--web-dir {}: no index.html there (build it with ./demo_game/build-web)",
                dir.display()
            ))
        }
        None => {
            let beside_exe = std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.parent()?.join("web/demo")));
            std::iter::once(PathBuf::from("target/web/demo"))
                .chain(beside_exe)
                .find(|dir| dir.join("index.html").is_file())
        }
    };
    let Some(dir) = found else {
        return Ok(None);
    };
    let files = WebFiles::from_dir(&dir)
        .map_err(|e| format!("cannot read the web build in {}: {e}", dir.display()))?;
    Ok(Some((dir, Arc::new(files))))
}

/// Loopback when the signaling server is on this machine's loopback (WebRTC's
/// "every interface" skips loopback), every interface otherwise.
fn default_bind(meeting: &Meeting, url: &str) -> IpAddr {
    let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
    match meeting {
        Meeting::Local(_) => loopback,
        Meeting::Host(s) if s.local_addr().is_some_and(|a| a.ip().is_loopback()) => loopback,
        Meeting::Remote(_) => {
            let host = url
                .split("://")
                .nth(1)
                .unwrap_or_default()
                .split(['/', ':'])
                .next()
                .unwrap_or_default();
            if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
                loopback
            } else {
                Ipv4Addr::UNSPECIFIED.into()
            }
        }
        _ => Ipv4Addr::UNSPECIFIED.into(),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "warn,{QUIET_WEBRTC},rtcplay=warn,bevy_rtcplay=warn,rtcplay_demo=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A netem seed of this process: its id and the time, so two demo processes on
/// one machine do not lose the same packets.
fn process_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32) ^ u64::from(nanos)
}
