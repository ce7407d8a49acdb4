//! The wire-economy scenario: 2–8 players in a full mesh at 60 Hz, 8-byte inputs
//! changing every ~10 frames, every directed link through its own conditioner
//! (latency, jitter, loss); rtcplay and ggrs 0.13 over the same conditions, in real
//! time (ggrs reads the wall clock, so both run on it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtcplay::netem::{LinkConditions, Netem};
use rtcplay::session::{Checksum, PlayerType, Request, SessionBuilder, SessionError};
use rtcplay::transport::{PeerId, Transport};

use crate::input_script::{InputScript, PadInput};

/// What one peer (player 0) sent and simulated.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrafficReport {
    /// Seconds measured (after synchronization).
    pub seconds: f64,
    /// Datagrams sent per second by one peer, to all the others together.
    pub datagrams_per_sec: f64,
    /// Payload bytes sent per second by one peer, to all the others together.
    pub bytes_per_sec: f64,
    /// Mean payload size.
    pub bytes_per_datagram: f64,
    /// Rollbacks (loads) per second.
    pub rollbacks_per_sec: f64,
    /// Frames advanced.
    pub frames: u64,
}

/// A full mesh of directed netem links between `n` peers, on wall-clock time.
struct Mesh {
    start: Instant,
    /// `links[from][to]` (the diagonal is unused).
    links: Vec<Vec<Netem<Vec<u8>>>>,
    /// Datagrams and payload bytes each peer has sent, to all others.
    sent: Vec<(u64, u64)>,
}

impl Mesh {
    fn new(n: usize, conditions: LinkConditions) -> Self {
        let links = (0..n)
            .map(|from| {
                (0..n)
                    .map(|to| Netem::new(conditions, (from * 16 + to + 1) as u64))
                    .collect()
            })
            .collect();
        Mesh {
            start: Instant::now(),
            links,
            sent: vec![(0, 0); n],
        }
    }
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if from == to || to >= self.links.len() {
            return;
        }
        self.sent[from].0 += 1;
        self.sent[from].1 += bytes.len() as u64;
        let now = self.now();
        self.links[from][to].send(now, bytes);
    }
    fn receive(&mut self, me: usize) -> Vec<(usize, Vec<u8>)> {
        let now = self.now();
        let mut out = Vec::new();
        for from in 0..self.links.len() {
            while let Some(b) = self.links[from][me].poll(now) {
                out.push((from, b));
            }
        }
        out
    }
}

struct RtcEndpoint<'a> {
    mesh: &'a mut Mesh,
    me: usize,
}

impl Transport for RtcEndpoint<'_> {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        self.mesh.send(self.me, peer.0 as usize, datagram.to_vec());
    }
    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        let got = self.mesh.receive(self.me);
        out.extend(got.into_iter().map(|(from, b)| (PeerId(from as u32), b)));
    }
}

fn tick_interval() -> Duration {
    Duration::from_secs(1) / 60
}

/// Toy state: a running hash of inputs (cheap; the bench is about the wire).
fn mix(state: u64, inputs: &[PadInput]) -> u64 {
    inputs.iter().flatten().fold(state, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Run rtcplay with `players` peers for `seconds` after synchronization.
pub fn run_rtcplay(players: usize, conditions: LinkConditions, seconds: f64) -> TrafficReport {
    let mut link = Mesh::new(players, conditions);
    let mut sessions: Vec<_> = (0..players)
        .map(|me| {
            let mut builder = SessionBuilder::<PadInput>::new()
                .with_num_players(players)
                .with_input_delay(2);
            for handle in 0..players {
                let kind = if handle == me {
                    PlayerType::Local
                } else {
                    PlayerType::Remote(PeerId(handle as u32))
                };
                builder = builder.add_player(kind, handle);
            }
            builder.start_p2p_session().expect("valid session")
        })
        .collect();
    let mut scripts: Vec<InputScript> = (0..players)
        .map(|me| InputScript::new(me as u64 + 1))
        .collect();
    let mut state = vec![0u64; players];
    let mut saved: Vec<BTreeMap<u32, u64>> = vec![BTreeMap::new(); players];
    let mut rollbacks = 0u64;
    let mut frames = 0u64;
    let mut measure_from: Option<(Instant, (u64, u64))> = None;
    let mut next = Instant::now();
    loop {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += tick_interval();
        let now = link.now();
        for me in 0..players {
            let s = &mut sessions[me];
            let mut ep = RtcEndpoint {
                mesh: &mut link,
                me,
            };
            if !s.is_running() {
                s.poll(now, &mut ep);
                continue;
            }
            s.add_local_input(me, scripts[me].next_input())
                .expect("input fits");
            match s.advance_frame(now, &mut ep) {
                Ok(requests) => {
                    for r in requests {
                        match r {
                            Request::Save { frame } => {
                                saved[me].insert(frame, state[me]);
                                s.report_checksum(frame, Checksum::new(state[me]));
                            }
                            Request::Load { frame } => {
                                state[me] = saved[me][&frame];
                                if me == 0 {
                                    rollbacks += 1;
                                }
                            }
                            Request::Advance { inputs, .. } => {
                                let inputs: Vec<PadInput> =
                                    inputs.into_iter().map(|(i, _)| i).collect();
                                state[me] = mix(state[me], &inputs);
                            }
                            // Nobody rejoins in this benchmark.
                            Request::Export { .. } | Request::Import { .. } => {}
                        }
                    }
                    if saved[me].len() > 64 {
                        saved[me].pop_first();
                    }
                }
                Err(SessionError::PredictionThreshold) => {}
                Err(e) => panic!("rtcplay advance failed: {e}"),
            }
        }
        if measure_from.is_none() && sessions.iter().all(|s| s.is_running()) {
            measure_from = Some((Instant::now(), link.sent[0]));
            frames = u64::from(sessions[0].current_frame());
            rollbacks = 0;
        }
        if let Some((t0, sent0)) = measure_from {
            let elapsed = t0.elapsed().as_secs_f64();
            if elapsed >= seconds {
                let frames = u64::from(sessions[0].current_frame()) - frames;
                return report(elapsed, sent0, link.sent[0], rollbacks, frames);
            }
        }
    }
}

fn report(
    seconds: f64,
    sent0: (u64, u64),
    sent1: (u64, u64),
    rollbacks: u64,
    frames: u64,
) -> TrafficReport {
    let datagrams = (sent1.0 - sent0.0) as f64;
    let bytes = (sent1.1 - sent0.1) as f64;
    TrafficReport {
        seconds,
        datagrams_per_sec: datagrams / seconds,
        bytes_per_sec: bytes / seconds,
        bytes_per_datagram: bytes / datagrams.max(1.0),
        rollbacks_per_sec: rollbacks as f64 / seconds,
        frames,
    }
}

/// ggrs configuration for the benches: 8-byte pad input, a u64 state.
pub struct GgrsConfig;

impl ggrs::Config for GgrsConfig {
    type Input = PadInput;
    type InputPredictor = ggrs::PredictRepeatLast;
    type State = u64;
    type Address = usize;
}

/// ggrs's socket over the same mesh, messages encoded with bincode 2 (standard).
struct GgrsSocket {
    mesh: Arc<Mutex<Mesh>>,
    me: usize,
}

impl ggrs::NonBlockingSocket<usize> for GgrsSocket {
    fn send_to(&mut self, msg: &ggrs::Message, addr: &usize) {
        let bytes = bincode::serde::encode_to_vec(msg, bincode::config::standard())
            .expect("ggrs message encodes");
        self.mesh
            .lock()
            .expect("mesh lock")
            .send(self.me, *addr, bytes);
    }
    fn receive_all_messages(&mut self) -> Vec<(usize, ggrs::Message)> {
        self.mesh
            .lock()
            .expect("mesh lock")
            .receive(self.me)
            .into_iter()
            .filter_map(|(from, b)| {
                bincode::serde::decode_from_slice(&b, bincode::config::standard())
                    .ok()
                    .map(|(m, _)| (from, m))
            })
            .collect()
    }
}

/// Run ggrs 0.13 (defaults, input delay 2) with `players` peers for `seconds` after
/// synchronization.
pub fn run_ggrs(players: usize, conditions: LinkConditions, seconds: f64) -> TrafficReport {
    let link = Arc::new(Mutex::new(Mesh::new(players, conditions)));
    let mut sessions: Vec<ggrs::P2PSession<GgrsConfig>> = (0..players)
        .map(|me| {
            let mut builder = ggrs::SessionBuilder::<GgrsConfig>::new()
                .with_num_players(players)
                .expect("player count")
                .with_input_delay(2);
            for handle in 0..players {
                let kind = if handle == me {
                    ggrs::PlayerType::Local
                } else {
                    ggrs::PlayerType::Remote(handle)
                };
                builder = builder.add_player(kind, handle).expect("player");
            }
            builder
                .start_p2p_session(GgrsSocket {
                    mesh: link.clone(),
                    me,
                })
                .expect("ggrs session")
        })
        .collect();
    let mut scripts: Vec<InputScript> = (0..players)
        .map(|me| InputScript::new(me as u64 + 1))
        .collect();
    let mut state = vec![0u64; players];
    let mut rollbacks = 0u64;
    let mut frames = 0u64;
    let mut measure_from: Option<(Instant, (u64, u64))> = None;
    let mut next = Instant::now();
    loop {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += tick_interval();
        for me in 0..players {
            let s = &mut sessions[me];
            s.poll_remote_clients();
            if s.current_state() != ggrs::SessionState::Running {
                continue;
            }
            s.add_local_input(me, scripts[me].next_input())
                .expect("local input");
            match s.advance_frame() {
                Ok(requests) => {
                    for r in requests {
                        match r {
                            ggrs::GgrsRequest::SaveGameState { cell, frame } => {
                                cell.save(frame, Some(state[me]), None)
                            }
                            ggrs::GgrsRequest::LoadGameState { cell, .. } => {
                                state[me] = cell.load().unwrap_or_default();
                                if me == 0 {
                                    rollbacks += 1;
                                }
                            }
                            ggrs::GgrsRequest::AdvanceFrame { inputs } => {
                                let inputs: Vec<PadInput> =
                                    inputs.into_iter().map(|(i, _)| i).collect();
                                state[me] = mix(state[me], &inputs);
                            }
                        }
                    }
                }
                Err(ggrs::GgrsError::PredictionThreshold) => {}
                Err(e) => panic!("ggrs advance failed: {e}"),
            }
        }
        let sent = link.lock().expect("mesh lock").sent[0];
        if measure_from.is_none()
            && sessions
                .iter()
                .all(|s| s.current_state() == ggrs::SessionState::Running)
        {
            measure_from = Some((Instant::now(), sent));
            frames = sessions[0].current_frame() as u64;
            rollbacks = 0;
        }
        if let Some((t0, sent0)) = measure_from {
            let elapsed = t0.elapsed().as_secs_f64();
            if elapsed >= seconds {
                let frames = sessions[0].current_frame() as u64 - frames;
                return report(elapsed, sent0, sent, rollbacks, frames);
            }
        }
    }
}
