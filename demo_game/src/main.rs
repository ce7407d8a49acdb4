//! rtcplay-demo: a small 2D arena for 2-4 players over peer-to-peer WebRTC with
//! rollback netcode. See `docs/demo.md`.

#![forbid(unsafe_code)]

mod app;
mod bot;
mod cli;
mod game;
mod headless;
mod server;
mod window;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use bevy::app::AppExit;
use bevy::prelude::*;
use bevy_rtcplay::RtcPlayConnect;
use clap::Parser;

use app::{DemoSettings, Outcome, EXIT_CONNECT};
use cli::Cli;
use server::EmbeddedServer;

fn main() -> ExitCode {
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
    if !cli.headless && !display && cli.frames.is_none() {
        println!("no X11 display (DISPLAY is not set): playing the match headless");
    }
    if headless && cli.screenshot.is_some() {
        return Err("--screenshot needs a display".into());
    }
    let meeting = if cli.synctest {
        Meeting::SyncTest
    } else if let Some(url) = &cli.signal {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(format!("--signal {url}: expected a ws:// or wss:// URL"));
        }
        Meeting::Remote(url.clone())
    } else if let Some(addr) = cli.host {
        let server = EmbeddedServer::start(addr)?;
        let bound = server
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        println!("signaling server listening on ws://{bound}");
        println!(
            "others join with: rtcplay-demo --signal ws://<this machine's address>:{} --room {} --players {}",
            server.local_addr().map_or(0, |a| a.port()),
            cli.room,
            cli.players
        );
        Meeting::Host(server)
    } else {
        let server = EmbeddedServer::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        Meeting::Local(server)
    };
    let url = match &meeting {
        Meeting::Local(s) | Meeting::Host(s) => s.local_url(),
        Meeting::Remote(url) => url.clone(),
        Meeting::SyncTest => String::new(),
    };
    let bind_ip = cli.bind.unwrap_or_else(|| default_bind(&meeting, &url));
    let connect = |seed: u64| {
        let mut c = RtcPlayConnect::new(url.clone(), cli.room.clone(), usize::from(cli.players));
        match cli.input_delay {
            Some(frames) => c = c.with_input_delay(frames),
            None => {
                c.session.adaptive_input_delay = true;
                c.session.max_input_delay = 8;
            }
        }
        c.session.disconnect_timeout = Duration::from_secs_f64(cli.disconnect_timeout);
        c.ice_servers = ice_servers.clone();
        c.bind_ip = bind_ip;
        c.session.checksum_interval = 30;
        c.spectate = cli.spectate;
        if let Some(preset) = cli.netem {
            c = c.with_netem(preset.conditions(), seed);
        }
        c
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
        let mut app = App::new();
        app.add_plugins(window::window_plugins());
        window::add_window(
            &mut app,
            window::WindowOptions {
                screenshot: cli.screenshot.clone(),
                signal_url: url.clone(),
            },
        );
        app
    };
    let players = settings.players;
    let sink = app::configure(&mut app, settings);
    let request = match meeting {
        Meeting::SyncTest => None,
        // Each process conditions its link with its own seed.
        _ => Some(connect(process_seed())),
    };
    app::start_session(&mut app, request, players);
    let exit = app.run();
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

/// Log filter directives that keep webrtc-rs's own warnings out of the console:
/// during every setup it warns about benign races (a connectivity check before the
/// remote credentials, no candidate pairs yet, DTLS without a server name). Real
/// failures still reach the player through the socket's errors; `RUST_LOG`
/// overrides all of this. A target directive matches by prefix, so `rtc` also
/// matches our `rtcplay*` crates: whoever uses this names their levels after it.
pub const QUIET_WEBRTC: &str = "rtc=error,webrtc=error";

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
