//! `rtcplay-signal`: the standalone rtcplay signaling server.
//!
//! ```text
//! rtcplay-signal --bind 0.0.0.0:3536 --stun stun:stun.l.google.com:19302
//! ```
//! The wire protocol is described in `docs/signaling.md`.

use std::time::Duration;

use clap::Parser;
use rtcplay::signaling::{IceServer, ServerConfig, SignalingServer, TurnConfig};

/// rtcplay signaling server: rooms, N-player matchmaking and relay of WebRTC
/// offers, answers and ICE candidates over WebSocket.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:3536")]
    bind: String,
    /// Largest accepted WebSocket frame, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame_size: usize,
    /// Messages a client may send in a burst.
    #[arg(long, default_value_t = 200)]
    rate_burst: u32,
    /// Messages per second a client may send on average.
    #[arg(long, default_value_t = 50)]
    rate_per_sec: u32,
    /// Largest room size (2..=8).
    #[arg(long, default_value_t = 8)]
    max_peers_per_room: u8,
    /// Most spectators per room.
    #[arg(long, default_value_t = 8)]
    max_spectators_per_room: usize,
    /// Most rooms at once.
    #[arg(long, default_value_t = 50_000)]
    max_rooms: usize,
    /// Most connections at once.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Most connections from one IP address.
    #[arg(long, default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Seconds of silence after which a client is disconnected.
    #[arg(long, default_value_t = 30)]
    idle_timeout: u64,
    /// Shared secret clients must send in `join` (or set RTCPLAY_ROOM_TOKEN).
    #[arg(long, env = "RTCPLAY_ROOM_TOKEN", hide_env_values = true)]
    room_token: Option<String>,
    /// STUN server URL handed to clients (repeatable).
    #[arg(long)]
    stun: Vec<String>,
    /// TURN server URL handed to clients (repeatable).
    #[arg(long)]
    turn: Vec<String>,
    /// TURN server URL for which each peer gets its own time-limited credentials
    /// (coturn `use-auth-secret`; repeatable). Needs --turn-secret.
    #[arg(long)]
    turn_url: Vec<String>,
    /// Secret shared with the TURN server (coturn `static-auth-secret`), or set
    /// RTCPLAY_TURN_SECRET.
    #[arg(long, env = "RTCPLAY_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// Seconds an issued TURN credential stays valid.
    #[arg(long, default_value_t = 3600)]
    turn_ttl: u64,
    /// TURN user name (static credentials for --turn; prefer --turn-url).
    #[arg(long)]
    turn_username: Option<String>,
    /// TURN credential.
    #[arg(long)]
    turn_credential: Option<String>,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or `debug`.
    #[arg(long, default_value = "info")]
    log: String,
    /// Worker threads of the tokio runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut ice_servers = Vec::new();
    if !args.stun.is_empty() {
        ice_servers.push(IceServer {
            urls: args.stun.clone(),
            username: None,
            credential: None,
        });
    }
    if !args.turn.is_empty() {
        ice_servers.push(IceServer {
            urls: args.turn.clone(),
            username: args.turn_username.clone(),
            credential: args.turn_credential.clone(),
        });
    }
    let turn = match (&args.turn_secret, args.turn_url.is_empty()) {
        (Some(secret), false) => Some(TurnConfig {
            urls: args.turn_url.clone(),
            secret: secret.clone(),
            ttl: Duration::from_secs(args.turn_ttl.max(1)),
        }),
        (None, true) => None,
        _ => {
            eprintln!("rtcplay-signal: --turn-url and --turn-secret go together");
            std::process::exit(2);
        }
    };
    let config = ServerConfig {
        max_frame_size: args.max_frame_size,
        rate_limit_burst: args.rate_burst,
        rate_limit_per_sec: args.rate_per_sec,
        max_peers_per_room: args.max_peers_per_room,
        max_spectators_per_room: args.max_spectators_per_room,
        max_rooms: args.max_rooms,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        room_token: args.room_token.clone(),
        ice_servers,
        turn,
        ..ServerConfig::default()
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtcplay-signal: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let server = match SignalingServer::bind(&args.bind, config).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("rtcplay-signal: cannot listen on {}: {e}", args.bind);
                std::process::exit(1);
            }
        };
        // The first line on stdout is the URL, so scripts can bind port 0.
        println!("{}", server.url());
        tracing::info!("listening on {}", server.url());
        let mut last = server.stats();
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let stats = server.stats();
            if stats != last {
                tracing::info!(?stats, "signaling server");
                last = stats;
            }
        }
    });
}
