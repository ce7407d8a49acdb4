//! A mesh of rtcplay P2P sessions over a perfect in-memory link, ticked as a
//! game would tick them (input, advance, requests carried out trivially); with
//! `recording`, every session writes a replay and its bytes are taken each tick.
//! Shared by the `session_cpu` criterion bench and the `replay_cost` binary.

use std::time::Duration;

use rtcplay::netem::LinkConditions;
use rtcplay::session::{P2PSession, PlayerType, Request, SessionBuilder};
use rtcplay::transport::{MemoryNetwork, PeerId};

use crate::input_script::{InputScript, PadInput};

/// Every peer's session of one match.
pub struct Mesh {
    net: MemoryNetwork,
    sessions: Vec<P2PSession<PadInput>>,
    scripts: Vec<InputScript>,
    now: Duration,
    recording: bool,
    /// Replay bytes taken so far.
    pub recorded_bytes: usize,
}

impl Mesh {
    /// A running mesh of `players` sessions (synchronized, 120 frames in).
    pub fn new(players: usize, recording: bool) -> Mesh {
        let ids: Vec<PeerId> = (0..players as u32).map(PeerId).collect();
        let net = MemoryNetwork::new(&ids, LinkConditions::perfect(), 1);
        let sessions = (0..players)
            .map(|me| {
                let mut b = SessionBuilder::<PadInput>::new().with_num_players(players);
                for (h, id) in ids.iter().enumerate() {
                    let kind = if h == me {
                        PlayerType::Local
                    } else {
                        PlayerType::Remote(*id)
                    };
                    b = b.add_player(kind, h);
                }
                let mut session = b.start_p2p_session().expect("valid");
                if recording {
                    session.start_recording("bench").expect("before frame 0");
                }
                session
            })
            .collect();
        let mut mesh = Mesh {
            net,
            sessions,
            scripts: (0..players as u64).map(InputScript::new).collect(),
            now: Duration::ZERO,
            recording,
            recorded_bytes: 0,
        };
        while !mesh.sessions.iter().all(P2PSession::is_running) {
            mesh.tick();
        }
        for _ in 0..120 {
            mesh.tick();
        }
        mesh
    }

    /// One tick of every peer: input, advance, carry out the requests (trivially).
    pub fn tick(&mut self) -> usize {
        self.now += Duration::from_micros(16_667);
        self.net.set_now(self.now);
        let mut work = 0;
        for (me, s) in self.sessions.iter_mut().enumerate() {
            let mut ep = self.net.endpoint(PeerId(me as u32));
            if !s.is_running() {
                s.poll(self.now, &mut ep);
                continue;
            }
            s.add_local_input(me, self.scripts[me].next_input())
                .expect("fits");
            if let Ok(reqs) = s.advance_frame(self.now, &mut ep) {
                for r in reqs {
                    if let Request::Advance { inputs, .. } = r {
                        work += inputs.len();
                    }
                }
            }
            if self.recording {
                self.recorded_bytes += s.take_replay_bytes().len();
            }
        }
        work
    }
}
