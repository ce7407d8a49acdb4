//! Command-line flags.

use std::net::{IpAddr, SocketAddr};

use clap::Parser;
use rtcplay::netem::Preset;
use rtcplay::transport::IceServerConfig;

/// rtcplay-demo: a small 2D arena for 2-4 players over peer-to-peer WebRTC with
/// rollback netcode.
///
/// With no flags: starts a local signaling server, opens a window and plays against
/// bot peers connected over real WebRTC on loopback. Without a display it plays the
/// same match headless.
#[derive(Parser, Debug, Clone)]
#[command(name = "rtcplay-demo", version)]
pub struct Cli {
    /// Players in the match (2-4).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=4))]
    pub players: u8,

    /// Drop-in match (with --host or --signal): it starts once K players are in
    /// (2 <= K <= --players); the free seats are taken by players who join the
    /// running match later with the same flags (a survivor hands them the game
    /// state). Until then those seats' ships stand still.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(2..=4))]
    pub start_with: Option<u8>,

    /// Room name on the signaling server.
    #[arg(long, default_value = "rtcplay-demo")]
    pub room: String,

    /// Join a remote signaling server (e.g. ws://192.168.1.10:3536) instead of
    /// playing a local match against bots.
    #[arg(long, value_name = "URL", conflicts_with = "host")]
    pub signal: Option<String>,

    /// Embed the signaling server on this address and wait for the other players
    /// (they join with --signal ws://THIS_MACHINE:PORT).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "0.0.0.0:3536")]
    pub host: Option<SocketAddr>,

    /// With --host: the web build to serve over HTTP on the signaling port
    /// (default: target/web/demo, where ./demo_game/build-web puts it), so browser
    /// players open http://HOST:PORT/.
    #[arg(long, value_name = "DIR", requires = "host")]
    pub web_dir: Option<std::path::PathBuf>,

    /// This player is played by the AI.
    #[arg(long)]
    pub bot: bool,

    /// Pin the input delay to F frames (0-8). Without it the delay adapts to the
    /// measured round trip and jitter (2 to 8 frames), so one slow link does not
    /// slow the whole match down.
    #[arg(long, value_name = "F", value_parser = clap::value_parser!(u32).range(0..=8))]
    pub input_delay: Option<u32>,

    /// Seconds of silence after which a peer counts as gone (the match ends when
    /// no other player is left). A link silent for 2 s is restarted meanwhile, so
    /// a player whose Wi-Fi drops out for a few seconds stays in the match; a
    /// player whose game quits or crashes is gone within about 2 s.
    #[arg(long, value_name = "SECS", default_value_t = 12.0, value_parser = parse_timeout)]
    pub disconnect_timeout: f64,

    /// Link conditioner preset on this peer's traffic: perfect, lan, good, average,
    /// poor, lossy.
    #[arg(long, value_name = "PRESET", value_parser = parse_preset)]
    pub netem: Option<Preset>,

    /// Determinism check on this machine: every frame is re-simulated and compared
    /// (no network; all players are bots).
    #[arg(long, conflicts_with_all = ["signal", "host", "spectate"])]
    pub synctest: bool,

    /// Watch the match running in --room on the --signal server as a spectator
    /// (--players must match the room's size). Joins at any point of the match,
    /// replays it from the start at high speed and then follows it live.
    #[arg(long, requires = "signal", conflicts_with_all = ["host", "bot"])]
    pub spectate: bool,

    /// Come back to the match running in --room on the --signal server after
    /// this player's demo crashed or was killed: start it again with the same
    /// flags plus --rejoin. It takes its old seat back (with the token kept from
    /// the earlier run; seats are held for a minute) and a survivor hands it the
    /// game state.
    #[arg(long, requires = "signal", conflicts_with_all = ["host", "spectate", "synctest"])]
    pub rejoin: bool,

    /// Record this player's view of the match into FILE (a replay; see --replay).
    /// Without it the match is still recorded, into the demo's data directory
    /// (the path is printed at the end; the last match is kept as
    /// `last-match.rtcreplay`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["replay", "synctest"])]
    pub record: Option<std::path::PathBuf>,

    /// Play a recorded match (a file from --record, or the kept last match): in
    /// a window with Space pause, . step, Left/Right 5 s back/forward, Home
    /// start, [ and ] speed; headless it plays to the end (or --frames N) and
    /// prints the same `frames N checksum` line the live match printed.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["signal", "host", "synctest", "spectate", "rejoin", "bot"])]
    pub replay: Option<std::path::PathBuf>,

    /// No window: print progress, stats once a second and the result.
    #[arg(long)]
    pub headless: bool,

    /// Play this many frames, print the final state checksum and exit.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub frames: Option<u32>,

    /// STUN or TURN server URL (repeatable), e.g. stun:stun.example.org:3478 or
    /// turn:turn.example.org:3478.
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,

    /// TURN username for the --ice-server TURN URLs.
    #[arg(long, value_name = "NAME", requires = "ice_credential")]
    pub ice_username: Option<String>,

    /// TURN credential for the --ice-server TURN URLs.
    #[arg(long, value_name = "SECRET", requires = "ice_username")]
    pub ice_credential: Option<String>,

    /// Local IP address for WebRTC (default: 127.0.0.1 when the signaling server is
    /// on this machine's loopback, else every interface).
    #[arg(long, value_name = "IP")]
    pub bind: Option<IpAddr>,

    /// Save a screenshot of the window here after two seconds of play, then exit
    /// (for the smoke test).
    #[arg(long, value_name = "PNG", hide = true)]
    pub screenshot: Option<std::path::PathBuf>,

    /// Benchmark (with --replay, headless): play the replay to its end, then
    /// seek to N frames spread over it and print each seek's time.
    #[arg(long, value_name = "N", hide = true, requires = "replay")]
    pub seek_bench: Option<u32>,

    /// Test hook: nudge player 2's position at frame F on this endpoint only
    /// (a deliberate desync, to see desync forensics at work).
    #[arg(long, value_name = "F", hide = true)]
    pub inject_desync: Option<u32>,

    /// Give up if the room is not complete after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait_timeout: u64,

    /// How the players' games are kept together: `rollback` (inputs are
    /// exchanged, every machine simulates everything and rolls back when a
    /// late input differs from its guess) or `state` (each player simulates
    /// its own avatar and shots and sends their state; the others show it
    /// interpolated, and a shot's owner decides what it hits). Try both under
    /// the same --netem preset to feel the difference.
    #[arg(long, value_enum, default_value_t = Netcode::Rollback,
          conflicts_with_all = ["synctest", "spectate", "rejoin", "start_with", "replay", "record"])]
    pub netcode: Netcode,
}

/// The two netcode models.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Netcode {
    /// Rollback: inputs travel, every peer simulates the whole match.
    Rollback,
    /// State sync: each peer owns and sends its own things.
    State,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if (0.5..=60.0).contains(&secs) => Ok(secs),
        Ok(_) => Err("must be between 0.5 and 60 seconds".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
}

impl Cli {
    /// The ICE servers from `--ice-server` with the TURN credentials applied.
    pub fn ice_servers(&self) -> Result<Vec<IceServerConfig>, String> {
        self.ice_servers
            .iter()
            .map(|url| {
                let scheme = url.split(':').next().unwrap_or_default();
                match scheme {
                    "stun" | "stuns" => Ok(IceServerConfig::stun(url.clone())),
                    "turn" | "turns" => match (&self.ice_username, &self.ice_credential) {
                        (Some(user), Some(secret)) => Ok(IceServerConfig::turn(
                            url.clone(),
                            user.clone(),
                            secret.clone(),
                        )),
                        _ => Err(format!(
                            "TURN server {url} needs --ice-username and --ice-credential"
                        )),
                    },
                    _ => Err(format!("--ice-server {url}: expected a stun: or turn: URL")),
                }
            })
            .collect()
    }
}
