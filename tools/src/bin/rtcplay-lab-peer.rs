//! `rtcplay-lab-peer`: one player of the test game (`rtcplay_testkit::sim`) over the
//! real WebRTC socket, as its own process. Handy to check a network end to end,
//! and what the network lab runs.
//!
//! The network lab (`tools/tests/nat_lab.rs`) starts one of these per player inside
//! a network namespace behind a NAT, kills them with SIGKILL, and reads what they
//! print. Every line on stdout is one event, so the lab can time it on arrival:
//!
//! ```text
//! joined <my id>
//! rejoin-token <token>                   (give it to --rejoin-token after a restart)
//! connected <peer> <local candidate type> <remote candidate type> <setup ms> <ms since room full>
//! running
//! reconnecting <peer>                    (its link stalled; being restarted)
//! reconnected <peer>                     (its link is back)
//! disconnected <peer> <reason>          (the socket gave it up)
//! session-disconnected <peer> <frame>   (the session stopped waiting for it)
//! session-rejoined <peer> <frame>       (its inputs count again from frame)
//! rejoined <frame> <state frame> <ms> <bytes> <µs>
//!                                        (we are back: ms since this process started,
//!                                        the handover's size and transfer time)
//! caught-up <frame> <ms>                (plays one frame per tick again)
//! signaling-lost                         (our signaling connection is gone: we take
//!                                        our seat back on a new socket)
//! seat-retry <error>                     (that try failed; another follows)
//! seat-back <ms>                         (every peer connected again, ms after
//!                                        signaling-lost; a rejoining session starts)
//! seat-given-up <reason>                 (no seat to take back: play on as we are)
//! desync <frame> <peer>
//! checksum <frame> <hex>                 (the confirmed state of the last frame)
//! finished <ms>                          (wall time from the first frame)
//! link <peer> rtt <ms> loss <fraction>   (the socket's view of each link)
//! error <text>
//! ```
//!
//! ```text
//! cargo run -p rtcplay_tools --bin rtcplay-lab-peer -- --url ws://10.99.0.1:3536 --room r --players 2
//! ```

#![allow(clippy::unwrap_used)]

use rtcplay_testkit::sim;

use std::time::{Duration, Instant};

use clap::Parser;
use rtcplay::session::P2PSession;
use rtcplay::session::{PlayerType, SessionBuilder, SessionError, SessionEvent};
use rtcplay::signaling::ErrorCode;
use rtcplay::transport::native::Socket;
use rtcplay::transport::{
    Channel, PeerId, SocketConfig, SocketEvent, Target, Transport, TransportError,
};
use sim::{scripted_input, Replica};

/// Play the test game in a room and print what happens, one event per line.
#[derive(Debug, Parser)]
struct Args {
    /// Signaling server WebSocket URL.
    #[arg(long)]
    url: String,
    /// Room name.
    #[arg(long)]
    room: String,
    /// Room size.
    #[arg(long, default_value_t = 2)]
    players: u8,
    /// Frames to play (60 per second).
    #[arg(long, default_value_t = 300)]
    frames: u32,
    /// Seconds to wait for every peer to connect.
    #[arg(long, default_value_t = 30)]
    connect_secs: u64,
    /// Silence after which the socket restarts a link, milliseconds.
    #[arg(long, default_value_t = 2000)]
    restart_ms: u64,
    /// Time a stalled link may take to come back before the socket gives the peer
    /// up, milliseconds.
    #[arg(long, default_value_t = 2000)]
    disconnect_ms: u64,
    /// Session disconnect timeout (silence before a peer's inputs count as
    /// disconnected), milliseconds.
    #[arg(long, default_value_t = 2000)]
    session_disconnect_ms: u64,
    /// Bytes webrtc may hold unsent per data channel (socket `send_buffer_limit`).
    #[arg(long)]
    send_buffer: Option<usize>,
    /// Seconds the whole match may take before giving up.
    #[arg(long, default_value_t = 60)]
    match_secs: u64,
    /// Take our seat back in a running match (the token an earlier process of
    /// this player printed) and rejoin it with the game state of a survivor.
    #[arg(long)]
    rejoin_token: Option<String>,
}

fn main() {
    // Logs go to stderr; the lab passes RTCPLAY_LAB_LOG through as the filter.
    let filter = std::env::var("RTCPLAY_LAB_LOG").unwrap_or_else(|_| "off".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Err(error) = run(&args) {
        println!("error {error}");
        std::process::exit(1);
    }
}

/// The socket's settings, with the seat's rejoin token if we take it back.
fn socket_config(args: &Args, rejoin_token: Option<String>) -> SocketConfig {
    let mut config = SocketConfig::new(args.url.clone(), args.room.clone(), args.players);
    config.handshake_timeout = Duration::from_secs(args.connect_secs);
    config.restart_after = Duration::from_millis(args.restart_ms);
    config.disconnect_timeout = Duration::from_millis(args.disconnect_ms);
    if let Some(bytes) = args.send_buffer {
        config.send_buffer_limit = bytes;
    }
    config.rejoin_token = rejoin_token;
    config
}

/// The session, player handles following peer ids (so every peer numbers the
/// players alike); a rejoining one takes a survivor's state.
fn start_session(
    args: &Args,
    ids: &[PeerId],
    me: PeerId,
    rejoining: bool,
) -> Result<P2PSession<u8>, String> {
    let mut builder = SessionBuilder::<u8>::new()
        .with_num_players(usize::from(args.players))
        .with_session_id(0x1ab)
        .with_disconnect_timeouts(
            Duration::from_millis(args.session_disconnect_ms / 4),
            Duration::from_millis(args.session_disconnect_ms),
        );
    for (handle, &id) in ids.iter().enumerate() {
        let kind = if id == me {
            PlayerType::Local
        } else {
            PlayerType::Remote(id)
        };
        builder = builder.add_player(kind, handle);
    }
    if rejoining {
        builder = builder.rejoining(rtcplay::session::new_incarnation());
    }
    builder.start_p2p_session().map_err(|e| e.to_string())
}

/// Taking our seat back after our signaling connection was lost mid-match: tries
/// with the rejoin token until every peer is connected on a new socket.
struct SeatRecovery {
    token: String,
    lost_at: Instant,
    next_try: Instant,
    socket: Option<Socket>,
}

impl SeatRecovery {
    /// Poll the current try (starting one when due); the new socket once every
    /// peer is connected on it.
    fn poll(&mut self, args: &Args) -> Result<Option<Socket>, String> {
        if self.socket.is_none() {
            if Instant::now() < self.next_try {
                return Ok(None);
            }
            if self.lost_at.elapsed() > Duration::from_secs(60) {
                return Err("seat not back within 60 s".into());
            }
            let config = socket_config(args, Some(self.token.clone()));
            self.socket = Some(Socket::new(config).map_err(|e| e.to_string())?);
        }
        let Some(socket) = self.socket.as_mut() else {
            return Ok(None);
        };
        let mut retry_after = None;
        for event in socket.events() {
            match event {
                SocketEvent::AllConnected => return Ok(self.socket.take()),
                // The server still sees our old connection and checks it (3 s).
                SocketEvent::Error(TransportError::JoinRefused {
                    code: ErrorCode::SeatTaken,
                    ..
                }) => retry_after = Some(Duration::from_millis(3500)),
                SocketEvent::Error(TransportError::JoinRefused { code, message }) => {
                    return Err(format!("seat refused: {code}: {message}"));
                }
                SocketEvent::Error(error) => {
                    println!("seat-retry {error}");
                    retry_after = Some(Duration::from_secs(1));
                }
                SocketEvent::PeerDisconnected { peer, reason } => {
                    println!("seat-retry {} {reason:?}", peer.0);
                    retry_after = Some(Duration::from_secs(1));
                }
                _ => {}
            }
        }
        if let Some(after) = retry_after {
            self.socket = None;
            self.next_try = Instant::now() + after;
        }
        Ok(None)
    }
}

fn run(args: &Args) -> Result<(), String> {
    let process_start = Instant::now();
    let players = usize::from(args.players);
    let mut socket =
        Socket::new(socket_config(args, args.rejoin_token.clone())).map_err(|e| e.to_string())?;
    let mut token = None;

    // Connect everyone. `setup ms` counts from the start of the attempt that
    // connected (a relay attempt starts after the direct one gave up); the last
    // field counts from room full.
    let deadline = Instant::now() + Duration::from_secs(args.connect_secs);
    let mut room_full_at = None;
    let mut since_full = std::collections::HashMap::new();
    // Every seat's player, when the server says (a rejoin: also players away).
    let mut seats: Option<Vec<PeerId>> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match socket.wait_event(left) {
            Some(SocketEvent::Joined { me }) => {
                println!("joined {}", me.0);
                token = socket.rejoin_token();
                if let Some(token) = &token {
                    println!("rejoin-token {token}");
                }
            }
            Some(SocketEvent::RoomFull { .. }) => room_full_at = Some(Instant::now()),
            Some(SocketEvent::Seats { seats: all, .. }) => {
                seats = Some(all.into_iter().flatten().collect());
            }
            Some(SocketEvent::PeerConnected(peer)) => {
                let ms = room_full_at.map_or(0, |t: Instant| t.elapsed().as_millis());
                since_full.insert(peer, ms);
            }
            Some(SocketEvent::AllConnected) => break,
            Some(SocketEvent::Error(error)) => println!("error {error}"),
            Some(_) => {}
            None => return Err("timeout: not every peer connected".into()),
        }
    }
    let me = socket.id().ok_or("no id")?;
    let mut ids: Vec<PeerId> = socket.connected_peers();
    for &peer in &ids {
        let stats = socket.stats(peer).unwrap_or_default();
        let setup = stats.setup.hello_acked.unwrap_or_default();
        println!(
            "connected {} {} {} {} {}",
            peer.0,
            type_name(stats.candidate_type),
            type_name(stats.remote_candidate_type),
            setup.as_millis(),
            since_full.get(&peer).copied().unwrap_or_default()
        );
    }
    // Whom we wait for at the end: the players connected now.
    let others = ids.clone();
    ids.push(me);
    ids.sort();
    if let Some(all) = seats {
        ids = all;
    }

    let mut session = start_session(args, &ids, me, args.rejoin_token.is_some())?;
    let mut recovery: Option<SeatRecovery> = None;
    let mut replica = Replica::new(players);
    let last = args.frames;
    // Play a little past the last frame so the others get our inputs for it.
    let stop = last + 60;
    let mut reported = false;
    let start = Instant::now();
    let tick = Duration::from_secs(1) / 60;
    let mut next_tick = start;

    // Everyone still in the match must have confirmed the last frame before we
    // leave (our leaving disconnects us from their session): each peer says `done`
    // on the reliable channel once it printed its checksum.
    let mut net = Split {
        socket,
        datagrams: Vec::new(),
        done: Default::default(),
        gone: Default::default(),
    };
    let all_done = |net: &Split| {
        others
            .iter()
            .all(|p| net.done.contains(p) || net.gone.contains(p))
    };
    while !(reported && session.current_frame() >= stop && all_done(&net)) {
        if start.elapsed() > Duration::from_secs(args.match_secs) {
            return Err(format!(
                "match stalled at frame {} (confirmed {:?})",
                session.current_frame(),
                session.confirmed_frame()
            ));
        }
        net.pump();
        for event in net.socket.events() {
            match event {
                SocketEvent::PeerDisconnected { peer, reason } => {
                    println!("disconnected {} {reason:?}", peer.0);
                    net.gone.insert(peer);
                    // A peer that said `done` left after the match; its last
                    // inputs are all here already.
                    if !net.done.contains(&peer) {
                        session.disconnect_peer(peer);
                    }
                }
                SocketEvent::PeerReconnecting(peer) => println!("reconnecting {}", peer.0),
                SocketEvent::PeerReconnected(peer) => {
                    println!("reconnected {}", peer.0);
                    // A player that took its seat back plays again.
                    net.gone.remove(&peer);
                }
                SocketEvent::Error(error) => println!("error {error}"),
                SocketEvent::SignalingLost => {
                    println!("signaling-lost");
                    if let (Some(token), None) = (&token, &recovery) {
                        recovery = Some(SeatRecovery {
                            token: token.clone(),
                            lost_at: Instant::now(),
                            next_try: Instant::now(),
                            socket: None,
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(seat) = &mut recovery {
            match seat.poll(args) {
                Ok(None) => {}
                Ok(Some(socket)) => {
                    println!("seat-back {}", seat.lost_at.elapsed().as_millis());
                    // The old socket and session go; a rejoining session takes a
                    // survivor's state on the new socket.
                    net.socket = socket;
                    net.gone.clear();
                    session = start_session(args, &ids, me, true)?;
                    recovery = None;
                }
                // No seat to take back (e.g. a restarted server knows none): the
                // old session plays on over the links that are up.
                Err(why) => {
                    println!("seat-given-up {why}");
                    recovery = None;
                }
            }
        }
        let now = start.elapsed();
        let was_rejoining = session.is_rejoining();
        if session.is_running() && session.current_frame() < stop {
            let handle = session.local_player_handles()[0];
            let target = session.current_frame() + session.input_delay();
            session
                .add_local_input(handle, scripted_input(handle, target))
                .map_err(|e| e.to_string())?;
            match session.advance_frame(now, &mut net) {
                Ok(requests) => replica.carry_out(&mut session, requests)?,
                Err(SessionError::PredictionThreshold) => {}
                Err(SessionError::NotSynchronized) if session.is_rejoining() => {}
                Err(error) => return Err(error.to_string()),
            }
        } else {
            session.poll(now, &mut net);
        }
        for event in session.events() {
            match event {
                SessionEvent::Running => println!("running"),
                SessionEvent::Disconnected { peer, frame } => {
                    println!("session-disconnected {} {frame}", peer.0)
                }
                SessionEvent::DesyncDetected { frame, peer, .. } => {
                    println!("desync {frame} {}", peer.0)
                }
                SessionEvent::PeerRejoined { peer, frame } => {
                    println!("session-rejoined {} {frame}", peer.0)
                }
                SessionEvent::Rejoined {
                    frame,
                    state_frame,
                    state_bytes,
                    transfer,
                } => println!(
                    "rejoined {frame} {state_frame} {} {state_bytes} {}",
                    process_start.elapsed().as_millis(),
                    transfer.as_micros()
                ),
                _ => {}
            }
        }
        if was_rejoining && !session.is_rejoining() {
            println!(
                "caught-up {} {}",
                session.current_frame(),
                process_start.elapsed().as_millis()
            );
        }
        // The state of frame `last` is saved when frame `last` is advanced; once its
        // inputs are confirmed, a rollback can no longer change it.
        if !reported
            && session.current_frame() > last
            && session.confirmed_frame().is_some_and(|c| c >= last)
        {
            let checksum = replica
                .history
                .get(&last)
                .ok_or("no checksum for the last frame")?;
            println!("checksum {last} {checksum:016x}");
            reported = true;
            let _ = net.socket.send_reliable(Target::All, DONE);
            // Wall time of the match so far, and what the transport measured.
            println!("finished {} ms", start.elapsed().as_millis());
            for &peer in &others {
                if let Some(stats) = net.socket.stats(peer) {
                    println!(
                        "link {} rtt {} ms loss {:.2}",
                        peer.0,
                        stats.rtt.unwrap_or_default().as_millis(),
                        stats.loss
                    );
                }
            }
        }
        next_tick += tick;
        let now = Instant::now();
        if next_tick > now {
            std::thread::sleep(next_tick - now);
        } else {
            next_tick = now;
        }
    }
    Ok(())
}

/// What a peer sends on the reliable channel once it confirmed the last frame.
const DONE: &[u8] = b"done";

/// The socket split by channel: unreliable datagrams go to the session, reliable
/// messages are `done` notes between the lab peers.
struct Split {
    socket: Socket,
    datagrams: Vec<(PeerId, Vec<u8>)>,
    done: std::collections::HashSet<PeerId>,
    gone: std::collections::HashSet<PeerId>,
}

impl Split {
    fn pump(&mut self) {
        for message in self.socket.receive() {
            match message.channel {
                Channel::Unreliable => self.datagrams.push((message.from, message.data)),
                Channel::Reliable if message.data == DONE => {
                    self.done.insert(message.from);
                }
                Channel::Reliable => {}
            }
        }
    }
}

impl Transport for Split {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        self.socket.send_to(peer, datagram);
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        self.pump();
        out.append(&mut self.datagrams);
    }
}

fn type_name(kind: Option<rtcplay::transport::CandidateType>) -> &'static str {
    use rtcplay::transport::CandidateType;
    match kind {
        Some(CandidateType::Host) => "host",
        Some(CandidateType::ServerReflexive) => "srflx",
        Some(CandidateType::PeerReflexive) => "prflx",
        Some(CandidateType::Relay) => "relay",
        None => "unknown",
    }
}
