//! `rtcplay-signal`: the standalone rtcplay signaling server.
//!
//! ```text
//! rtcplay-signal --bind 0.0.0.0:3536 --stun stun:stun.l.google.com:19302
//! ```
//! The wire protocol and every limit are described in `docs/signaling.md`.
//!
//! The first line on stdout is the server's URL; logs go to stderr (colored only
//! when stderr is a terminal). SIGTERM or SIGINT (Ctrl-C) shut it down
//! gracefully: every client gets a WebSocket close with code 1001, then the
//! process exits 0.
//!
//! Several servers share rooms through a NATS server with `--cluster
//! nats://HOST:4222` (`docs/cluster.md`); `--stats-addr` serves the figures as
//! JSON over HTTP.

mod stats_http;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rtcplay::signaling::{
    ClusterConfig, IceServer, ServerConfig, SignalingServer, TurnConfig, WebFiles,
};

/// How long a graceful shutdown waits for clients to take their close frames.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// rtcplay signaling server: rooms, N-player matchmaking and relay of WebRTC
/// offers, answers and ICE candidates over WebSocket.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (`[::]:3536` for IPv6 and IPv4).
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
    /// Bytes per second a client's input is read at, at most (faster clients are
    /// slowed down).
    #[arg(long, default_value_t = 64 * 1024)]
    rate_bytes_per_sec: u32,
    /// Joins a client may send per minute (after a burst of 5).
    #[arg(long, default_value_t = 30)]
    joins_per_minute: u32,
    /// Largest room size (2..=8).
    #[arg(long, default_value_t = 8)]
    max_peers_per_room: u8,
    /// Most spectators per room.
    #[arg(long, default_value_t = 8)]
    max_spectators_per_room: usize,
    /// Admit spectators only to rooms whose creator set a spectator secret.
    #[arg(long)]
    spectators_need_secret: bool,
    /// Seconds a player's seat is held after its connection is lost mid-match (it
    /// takes the seat back with its rejoin token); 0 = no seats held; at most a day.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    seat_grace_secs: u64,
    /// Most rooms at once.
    #[arg(long, default_value_t = 50_000)]
    max_rooms: usize,
    /// Most connections at once (lowered to what the open-file limit allows).
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Most connections from one IPv4 address or IPv6 prefix.
    #[arg(long, default_value_t = 64)]
    max_connections_per_ip: usize,
    /// IPv6 clients count per prefix of this many bits for --max-connections-per-ip.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=128))]
    ipv6_prefix_len: u8,
    /// Bytes of unfinished (fragmented) messages all clients together may hold.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_unfinished_bytes: usize,
    /// Seconds without a complete message after which a client is disconnected.
    #[arg(long, default_value_t = 30)]
    idle_timeout: u64,
    /// Shared secret clients must send in `join`. Prefer RTCPLAY_ROOM_TOKEN or
    /// --room-token-file: other local users can read a process's command line.
    #[arg(long, env = "RTCPLAY_ROOM_TOKEN", hide_env_values = true)]
    room_token: Option<String>,
    /// File holding the room token (its first line).
    #[arg(long, conflicts_with = "room_token")]
    room_token_file: Option<PathBuf>,
    /// Serve the files of this directory over plain HTTP on the signaling port
    /// (a web game's index.html, script and wasm; `/` is index.html). Loaded into
    /// memory at start (at most 256 MiB).
    #[arg(long, value_name = "DIR")]
    web_dir: Option<PathBuf>,
    /// STUN server URL handed to clients (repeatable).
    #[arg(long)]
    stun: Vec<String>,
    /// TURN server URL handed to clients (repeatable).
    #[arg(long)]
    turn: Vec<String>,
    /// TURN server URL for which each client gets its own time-limited credentials
    /// (coturn `use-auth-secret`; repeatable). Needs a TURN secret.
    #[arg(long)]
    turn_url: Vec<String>,
    /// Secret shared with the TURN server (coturn `static-auth-secret`). Prefer
    /// RTCPLAY_TURN_SECRET or --turn-secret-file: other local users can read a
    /// process's command line.
    #[arg(long, env = "RTCPLAY_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// File holding the TURN secret (its first line).
    #[arg(long, conflicts_with = "turn_secret")]
    turn_secret_file: Option<PathBuf>,
    /// Seconds an issued TURN credential stays valid.
    #[arg(long, default_value_t = 3600)]
    turn_ttl: u64,
    /// TURN user name (static credentials for --turn; prefer --turn-url).
    #[arg(long)]
    turn_username: Option<String>,
    /// TURN credential.
    #[arg(long)]
    turn_credential: Option<String>,
    /// Share rooms with other rtcplay-signal servers through this NATS server
    /// (JetStream on: `nats-server -js`), e.g. `nats://10.0.0.5:4222`. Clients
    /// may then connect to any of the servers. Every server of a cluster must
    /// run with the same room settings.
    #[arg(
        long,
        value_name = "NATS_URL",
        env = "RTCPLAY_CLUSTER",
        hide_env_values = true
    )]
    cluster: Option<String>,
    /// Name of the cluster's subjects and claims bucket (several clusters can
    /// share one NATS server).
    #[arg(long, default_value = "rtcplay")]
    cluster_prefix: String,
    /// Milliseconds after which a silent cluster node counts as dead (its
    /// members leave their rooms; its rooms' clients get `room_lost`).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(500..))]
    node_timeout_ms: u64,
    /// Milliseconds between a cluster node's heartbeats.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..))]
    heartbeat_ms: u64,
    /// Serve the server's figures as JSON on this address (`GET /stats`), e.g.
    /// `127.0.0.1:9536`. Keep it private: it is meant for monitoring.
    #[arg(long, value_name = "ADDR")]
    stats_addr: Option<String>,
    /// Seconds between the figures in the log (only when they changed).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    stats_log_secs: u64,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or `debug`.
    #[arg(long, default_value = "info")]
    log: String,
    /// Worker threads of the tokio runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() {
    let args = Args::parse();
    let stderr = std::io::stderr();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match server_config(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("rtcplay-signal: {message}");
            std::process::exit(2);
        }
    };
    raise_open_file_limit();
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
    let code = runtime.block_on(serve(&args, config));
    std::process::exit(code);
}

/// Run the server until SIGTERM or SIGINT; returns the exit code.
async fn serve(args: &Args, config: ServerConfig) -> i32 {
    let bind = &args.bind;
    let server = match SignalingServer::bind(bind, config).await {
        Ok(server) => Arc::new(server),
        Err(e) => {
            eprintln!("rtcplay-signal: cannot listen on {bind}: {e}");
            return 1;
        }
    };
    let latest = stats_http::Latest::default();
    let sampler = tokio::spawn(stats_http::sample(Arc::clone(&server), Arc::clone(&latest)));
    let endpoint = match &args.stats_addr {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                if let Ok(local) = listener.local_addr() {
                    tracing::info!("stats on http://{local}/stats");
                }
                Some(tokio::spawn(stats_http::serve(
                    listener,
                    Arc::clone(&server),
                    Arc::clone(&latest),
                )))
            }
            Err(e) => {
                eprintln!("rtcplay-signal: cannot listen on --stats-addr {addr}: {e}");
                return 1;
            }
        },
        None => None,
    };
    // The first line on stdout is the URL, so scripts can bind port 0.
    println!("{}", server.url());
    tracing::info!(
        "listening on {} (at most {} connections)",
        server.url(),
        server.stats().max_connections
    );
    let signal = match shutdown_signal() {
        Ok(signal) => signal,
        Err(e) => {
            eprintln!("rtcplay-signal: cannot handle SIGTERM/SIGINT: {e}");
            return 1;
        }
    };
    tokio::pin!(signal);
    let mut last = server.stats();
    let name = loop {
        tokio::select! {
            name = &mut signal => break name,
            () = tokio::time::sleep(Duration::from_secs(args.stats_log_secs)) => {
                let stats = server.stats();
                if stats != last {
                    let relays_per_sec = stats.signals_relayed.saturating_sub(last.signals_relayed)
                        / args.stats_log_secs;
                    tracing::info!(?stats, relays_per_sec, "signaling server");
                    last = stats;
                }
            }
        }
    };
    sampler.abort();
    let _ = sampler.await;
    if let Some(endpoint) = endpoint {
        endpoint.abort();
        let _ = endpoint.await;
    }
    let open = server.stats().connections;
    tracing::info!("{name}: closing {open} connections (code 1001) and shutting down");
    let Ok(server) = Arc::try_unwrap(server) else {
        tracing::warn!("stats endpoint still holds the server; exiting without waiting");
        return 0;
    };
    let left = server.shutdown_gracefully(SHUTDOWN_GRACE).await;
    if left > 0 {
        tracing::warn!("{left} connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    tracing::info!("shut down");
    0
}

/// Resolves with the signal's name on the first SIGTERM or SIGINT.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}

/// Servers want many sockets: raise the soft open-file limit to the hard one.
#[cfg(unix)]
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(
                "open-file limit raised from {:?} to {:?}",
                limit.current,
                limit.maximum
            ),
            Err(e) => tracing::debug!("open-file limit stays at {:?}: {e}", limit.current),
        }
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() {}

/// The first line of a secret file, without its line ending.
fn read_secret(path: &PathBuf, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").to_owned();
    if secret.is_empty() {
        return Err(format!("the {what} file {} is empty", path.display()));
    }
    Ok(secret)
}

fn server_config(args: &Args) -> Result<ServerConfig, String> {
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
    let turn_secret = match &args.turn_secret_file {
        Some(path) => Some(read_secret(path, "TURN secret")?),
        None => args.turn_secret.clone(),
    };
    let room_token = match &args.room_token_file {
        Some(path) => Some(read_secret(path, "room token")?),
        None => args.room_token.clone(),
    };
    let turn = match (turn_secret, args.turn_url.is_empty()) {
        (Some(secret), false) => Some(TurnConfig {
            urls: args.turn_url.clone(),
            secret,
            ttl: Duration::from_secs(args.turn_ttl.max(1)),
        }),
        (None, true) => None,
        _ => return Err("--turn-url and a TURN secret go together".into()),
    };
    let web_files = match &args.web_dir {
        Some(dir) => {
            let files =
                WebFiles::from_dir(dir).map_err(|e| format!("--web-dir {}: {e}", dir.display()))?;
            if files.is_empty() {
                return Err(format!("--web-dir {}: no files", dir.display()));
            }
            Some(Arc::new(files))
        }
        None => None,
    };
    let cluster = args.cluster.as_ref().map(|url| ClusterConfig {
        prefix: args.cluster_prefix.clone(),
        node_timeout: Duration::from_millis(args.node_timeout_ms),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        ..ClusterConfig::new(url.clone())
    });
    if cluster
        .as_ref()
        .is_some_and(|c| c.heartbeat >= c.node_timeout)
    {
        return Err("--heartbeat-ms must be shorter than --node-timeout-ms".into());
    }
    Ok(ServerConfig {
        cluster,
        web_files,
        max_frame_size: args.max_frame_size,
        rate_limit_burst: args.rate_burst,
        rate_limit_per_sec: args.rate_per_sec,
        rate_limit_bytes_per_sec: args.rate_bytes_per_sec,
        joins_per_minute: args.joins_per_minute,
        max_peers_per_room: args.max_peers_per_room,
        max_spectators_per_room: args.max_spectators_per_room,
        require_spectator_secret: args.spectators_need_secret,
        seat_grace: Duration::from_secs(args.seat_grace_secs),
        max_rooms: args.max_rooms,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        ipv6_prefix_len: args.ipv6_prefix_len,
        max_unfinished_bytes: args.max_unfinished_bytes,
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        room_token,
        ice_servers,
        turn,
        ..ServerConfig::default()
    })
}
