//! A deterministic simulation harness: peers running a small integer-physics game
//! over the in-memory network with the link conditioner, on simulated time.

#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use rtcplay::netem::LinkConditions;
use rtcplay::session::{
    Checksum, Frame, InputStatus, P2PSession, PlayerType, Request, SessionBuilder, SessionError,
    SessionEvent,
};
use rtcplay::transport::{MemoryNetwork, PeerId};

/// The game's input: a bit set of buttons.
pub type Input = u8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Body {
    pub x: i32,
    pub y: i32,
    pub vx: i32,
    pub vy: i32,
    pub score: i32,
}

/// A tiny arena: bodies accelerate with inputs, bounce off walls, score on contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Game {
    pub frame: Frame,
    pub bodies: Vec<Body>,
}

impl Game {
    pub fn new(players: usize) -> Self {
        Game {
            frame: 0,
            bodies: (0..players)
                .map(|i| Body {
                    x: 100 * i as i32,
                    y: 50 * i as i32,
                    ..Body::default()
                })
                .collect(),
        }
    }

    pub fn step(&mut self, inputs: &[(Input, InputStatus)]) {
        for (b, (input, status)) in self.bodies.iter_mut().zip(inputs) {
            if *status == InputStatus::Disconnected {
                b.vx = 0;
                b.vy = 0;
                continue;
            }
            let dx = i32::from(input & 1) - i32::from((input >> 1) & 1);
            let dy = i32::from((input >> 2) & 1) - i32::from((input >> 3) & 1);
            b.vx = (b.vx + dx * 3).clamp(-40, 40);
            b.vy = (b.vy + dy * 3).clamp(-40, 40);
            if input & 16 != 0 {
                b.vx *= 2;
            }
            b.x += b.vx;
            b.y += b.vy;
            if !(-1000..=1000).contains(&b.x) {
                b.vx = -b.vx;
                b.x = b.x.clamp(-1000, 1000);
            }
            if !(-1000..=1000).contains(&b.y) {
                b.vy = -b.vy;
                b.y = b.y.clamp(-1000, 1000);
            }
        }
        let n = self.bodies.len();
        for i in 0..n {
            for j in 0..n {
                if i != j
                    && (self.bodies[i].x - self.bodies[j].x).abs() < 30
                    && (self.bodies[i].y - self.bodies[j].y).abs() < 30
                {
                    self.bodies[i].score += 1;
                }
            }
        }
        self.frame += 1;
    }

    /// The state as bytes (what a survivor exports for a rejoining player).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.frame.to_le_bytes().to_vec();
        for b in &self.bodies {
            for v in [b.x, b.y, b.vx, b.vy, b.score] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// The state from [`to_bytes`](Self::to_bytes); `None` if the length is off.
    pub fn from_bytes(bytes: &[u8], players: usize) -> Option<Game> {
        if bytes.len() != 4 + players * 20 {
            return None;
        }
        let word = |i: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&bytes[i..i + 4]);
            a
        };
        let bodies = (0..players)
            .map(|p| {
                let v = |k: usize| i32::from_le_bytes(word(4 + p * 20 + k * 4));
                Body {
                    x: v(0),
                    y: v(1),
                    vx: v(2),
                    vy: v(3),
                    score: v(4),
                }
            })
            .collect();
        Some(Game {
            frame: Frame::from_le_bytes(word(0)),
            bodies,
        })
    }

    /// FNV-1a over the state: deterministic across runs and machines.
    pub fn checksum(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |v: i64| {
            for b in v.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        };
        mix(i64::from(self.frame));
        for b in &self.bodies {
            for v in [b.x, b.y, b.vx, b.vy, b.score] {
                mix(i64::from(v));
            }
        }
        h
    }

    /// The checksum split per body, so desync reports can name the body.
    pub fn checksum_parts(&self) -> Checksum {
        let parts = self
            .bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let g = Game {
                    frame: 0,
                    bodies: vec![*b],
                };
                (format!("body{i}"), g.checksum())
            })
            .collect();
        Checksum {
            total: self.checksum(),
            parts,
        }
    }
}

/// A player's scripted input for a frame: changes every ~10 frames.
pub fn scripted_input(player: usize, frame: Frame) -> Input {
    let epoch = u64::from(frame / 10);
    let mut z = epoch
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((player as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z ^= z >> 31;
    z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
    (z >> 40) as u8 & 0x1F
}

/// The test game as one peer holds it: the live state, saved states and the
/// checksum of each saved frame. Carries out a session's requests.
pub struct Replica {
    pub game: Game,
    pub saved: BTreeMap<Frame, Game>,
    /// Latest checksum saved for each frame (the final one once confirmed).
    pub history: BTreeMap<Frame, u64>,
}

impl Replica {
    pub fn new(players: usize) -> Self {
        Replica {
            game: Game::new(players),
            saved: BTreeMap::new(),
            history: BTreeMap::new(),
        }
    }

    /// Save, load and advance as `requests` say, reporting checksums to `session`.
    pub fn carry_out(
        &mut self,
        session: &mut P2PSession<Input>,
        requests: Vec<Request<Input>>,
    ) -> Result<(), String> {
        for request in requests {
            match request {
                Request::Save { frame } => {
                    self.saved.insert(frame, self.game.clone());
                    let checksum = self.game.checksum_parts();
                    self.history.insert(frame, checksum.total);
                    session.report_checksum(frame, checksum);
                }
                Request::Load { frame } => {
                    let saved = self.saved.get(&frame);
                    self.game
                        .clone_from(saved.ok_or(format!("load of unsaved frame {frame}"))?);
                }
                Request::Advance { inputs, .. } => self.game.step(&inputs),
                Request::Export { frame } => {
                    let saved = self.saved.get(&frame);
                    let bytes = saved.ok_or(format!("export of unsaved frame {frame}"))?;
                    session
                        .export_state(frame, bytes.to_bytes())
                        .map_err(|e| e.to_string())?;
                }
                Request::Import { frame, state } => {
                    let players = self.game.bodies.len();
                    self.game = Game::from_bytes(&state, players)
                        .filter(|g| g.frame == frame)
                        .ok_or(format!("bad state for frame {frame}"))?;
                }
            }
        }
        Ok(())
    }
}

pub struct SimPeer {
    pub id: PeerId,
    pub session: P2PSession<Input>,
    pub game: Game,
    pub saved: BTreeMap<Frame, Game>,
    /// Latest checksum saved for each frame (the final one once confirmed).
    pub history: BTreeMap<Frame, u64>,
    pub events: Vec<(Duration, SessionEvent)>,
    pub next_tick: Duration,
    pub max_depth: u32,
    pub silenced: bool,
    pub skipped_ticks: u64,
    /// Frames before this one were not simulated by this peer's current session
    /// (it rejoined with a state of this frame): not compared.
    pub history_from: Frame,
}

pub struct SimOptions {
    pub players: usize,
    pub conditions: LinkConditions,
    pub seed: u64,
    pub input_delay: u32,
    pub max_prediction: u32,
    pub adaptive_delay: bool,
    /// Seats without a player at the start (drop-in); their peers stay silent
    /// until [`Sim::drop_in`].
    pub vacant: Vec<usize>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            players: 2,
            conditions: LinkConditions::lan(),
            seed: 1,
            input_delay: 2,
            max_prediction: 8,
            adaptive_delay: false,
            vacant: Vec::new(),
        }
    }
}

/// The session builder of player `me` (peer id `me`).
fn builder(options: &SimOptions, me: usize) -> SessionBuilder<Input> {
    let mut b = SessionBuilder::<Input>::new()
        .with_num_players(options.players)
        .with_input_delay(options.input_delay)
        .with_max_prediction(options.max_prediction)
        .with_adaptive_input_delay(options.adaptive_delay)
        .with_checksum_interval(10)
        .with_session_id(0x5151);
    for h in 0..options.players {
        let kind = if h == me {
            PlayerType::Local
        } else if options.vacant.contains(&h) {
            PlayerType::Vacant
        } else {
            PlayerType::Remote(PeerId(h as u32))
        };
        b = b.add_player(kind, h);
    }
    b
}

pub struct Sim {
    pub net: MemoryNetwork,
    pub peers: Vec<SimPeer>,
    pub now: Duration,
    pub options: SimOptions,
}

impl Sim {
    /// One peer per player, each starting a few ms apart.
    pub fn new(options: SimOptions) -> Sim {
        let ids: Vec<PeerId> = (0..options.players as u32).map(PeerId).collect();
        let mut net = MemoryNetwork::new(&ids, options.conditions, options.seed);
        for &seat in &options.vacant {
            net.silence(ids[seat]);
        }
        let peers = ids
            .iter()
            .enumerate()
            .map(|(me, id)| {
                let b = builder(&options, me);
                SimPeer {
                    id: *id,
                    session: b.start_p2p_session().expect("valid config"),
                    game: Game::new(options.players),
                    saved: BTreeMap::new(),
                    history: BTreeMap::new(),
                    events: Vec::new(),
                    next_tick: Duration::from_millis(3 * me as u64),
                    max_depth: 0,
                    silenced: options.vacant.contains(&me),
                    skipped_ticks: 0,
                    history_from: 0,
                }
            })
            .collect();
        Sim {
            net,
            peers,
            now: Duration::ZERO,
            options,
        }
    }

    /// Run until every live peer reached `frames` (or `limit` of simulated time).
    pub fn run_until_frame(&mut self, frames: Frame, limit: Duration) {
        while self.now < limit {
            let done = self
                .peers
                .iter()
                .filter(|p| !p.silenced)
                .all(|p| p.session.current_frame() >= frames);
            if done {
                return;
            }
            self.step_1ms();
        }
    }

    /// Run for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step_1ms();
        }
    }

    fn step_1ms(&mut self) {
        self.now += Duration::from_millis(1);
        self.net.set_now(self.now);
        let now = self.now;
        for i in 0..self.peers.len() {
            if self.peers[i].silenced || self.peers[i].next_tick > now {
                continue;
            }
            let p = &mut self.peers[i];
            let mut endpoint = self.net.endpoint(p.id);
            if !p.session.is_running() && !p.session.is_rejoining() {
                p.session.poll(now, &mut endpoint);
            } else {
                let handle = p.session.local_player_handles()[0];
                let target = p.session.current_frame() + p.session.input_delay();
                p.session
                    .add_local_input(handle, scripted_input(handle, target))
                    .expect("local input");
                match p.session.advance_frame(now, &mut endpoint) {
                    Ok(requests) => p.handle(requests),
                    Err(SessionError::PredictionThreshold) => p.skipped_ticks += 1,
                    Err(SessionError::NotSynchronized) if p.session.is_rejoining() => {}
                    Err(e) => panic!("advance failed: {e}"),
                }
            }
            for e in p.session.events() {
                p.events.push((now, e));
            }
            p.next_tick += p.session.recommended_frame_duration();
        }
    }

    /// Peer `i`'s process restarts: a fresh session (numbered `incarnation`)
    /// with a blank game rejoins the match in place of the silenced one.
    pub fn restart(&mut self, i: usize, incarnation: u32) {
        let options = &self.options;
        let session = builder(options, i)
            .rejoining(incarnation)
            .start_p2p_session()
            .expect("valid config");
        let p = &mut self.peers[i];
        p.session = session;
        p.game = Game::new(options.players);
        p.saved.clear();
        p.silenced = false;
        p.history_from = Frame::MAX;
        p.next_tick = self.now;
        self.net.restore(p.id);
    }

    /// A new player takes vacant seat `i`: every peer in the match seats it (as
    /// on the signaling server's announcement), then its fresh session (numbered
    /// `incarnation`) joins like a rejoining one.
    pub fn drop_in(&mut self, i: usize, incarnation: u32) {
        self.options.vacant.retain(|&seat| seat != i);
        let id = self.peers[i].id;
        for p in self.peers.iter_mut().filter(|p| !p.silenced) {
            p.session.seat_player(i, id).expect("a vacant seat");
        }
        self.restart(i, incarnation);
    }

    pub fn silence(&mut self, i: usize) {
        self.peers[i].silenced = true;
        let id = self.peers[i].id;
        self.net.silence(id);
    }

    /// Frames every live peer holds a final state for: `..=` the lowest confirmed
    /// frame among them.
    pub fn assert_in_sync(&self) -> usize {
        let live: Vec<&SimPeer> = self.peers.iter().filter(|p| !p.silenced).collect();
        let upto = live
            .iter()
            .map(|p| {
                p.session
                    .confirmed_frame()
                    .unwrap_or(0)
                    .min(p.session.current_frame().saturating_sub(1))
            })
            .min()
            .unwrap_or(0);
        let mut compared = 0;
        for f in 0..=upto {
            let holders: Vec<&&SimPeer> = live.iter().filter(|p| f >= p.history_from).collect();
            let Some(reference) = holders.first() else {
                continue;
            };
            let first = reference.history.get(&f);
            for p in &holders[1..] {
                assert_eq!(
                    p.history.get(&f),
                    first,
                    "frame {f}: peer {} and peer {} disagree",
                    reference.id,
                    p.id
                );
            }
            if first.is_some() && holders.len() == live.len() {
                compared += 1;
            }
        }
        for p in &live {
            for (_, e) in &p.events {
                assert!(
                    !matches!(e, SessionEvent::DesyncDetected { .. }),
                    "peer {} reported {e:?}",
                    p.id
                );
            }
        }
        compared
    }
}

impl SimPeer {
    fn handle(&mut self, requests: Vec<Request<Input>>) {
        let mut depth = 0;
        for r in requests {
            match r {
                Request::Save { frame } => {
                    assert_eq!(self.game.frame, frame, "save of the wrong frame");
                    self.saved.insert(frame, self.game.clone());
                    let checksum = self.game.checksum_parts();
                    self.history.insert(frame, checksum.total);
                    self.session.report_checksum(frame, checksum);
                }
                Request::Load { frame } => {
                    self.game = self
                        .saved
                        .get(&frame)
                        .unwrap_or_else(|| panic!("load of unsaved frame {frame}"))
                        .clone();
                    depth = self.session.current_frame() - 1 - frame;
                }
                Request::Advance { frame, inputs } => {
                    assert_eq!(self.game.frame, frame, "advance of the wrong frame");
                    self.game.step(&inputs);
                }
                Request::Export { frame } => {
                    let state = self
                        .saved
                        .get(&frame)
                        .unwrap_or_else(|| panic!("export of unsaved frame {frame}"))
                        .to_bytes();
                    self.session
                        .export_state(frame, state)
                        .expect("export was requested");
                }
                Request::Import { frame, state } => {
                    let players = self.game.bodies.len();
                    self.game = Game::from_bytes(&state, players).expect("a valid state");
                    assert_eq!(self.game.frame, frame, "import of the wrong frame");
                    self.history_from = frame;
                }
            }
        }
        self.max_depth = self.max_depth.max(depth);
        let keep = self
            .session
            .current_frame()
            .saturating_sub(self.session.config().max_rollback_frames() + 1);
        while self.saved.first_key_value().is_some_and(|(f, _)| *f < keep) {
            self.saved.pop_first();
        }
    }
}
