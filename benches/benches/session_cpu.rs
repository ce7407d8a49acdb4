//! CPU cost of one frame of session bookkeeping (2 and 8 players), rtcplay vs ggrs:
//! one iteration ticks every peer of the mesh once over a perfect in-memory link.
//!
//! `cargo bench -p rtcplay_benches --bench session_cpu`

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rtcplay::netem::LinkConditions;
use rtcplay::session::{P2PSession, PlayerType, Request, SessionBuilder};
use rtcplay::transport::{MemoryNetwork, PeerId};
use rtcplay_benches::input_script::{InputScript, PadInput};
use rtcplay_benches::session_traffic::GgrsConfig;

struct Mesh {
    net: MemoryNetwork,
    sessions: Vec<P2PSession<PadInput>>,
    scripts: Vec<InputScript>,
    now: Duration,
}

impl Mesh {
    fn new(players: usize) -> Mesh {
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
                b.start_p2p_session().expect("valid")
            })
            .collect();
        let mut mesh = Mesh {
            net,
            sessions,
            scripts: (0..players as u64).map(InputScript::new).collect(),
            now: Duration::ZERO,
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
    fn tick(&mut self) -> usize {
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
        }
        work
    }
}

/// The same mesh on ggrs 0.13 with instantaneous in-memory sockets.
struct GgrsMesh {
    sessions: Vec<ggrs::P2PSession<GgrsConfig>>,
    scripts: Vec<InputScript>,
}

type Mailboxes = Arc<Mutex<Vec<Vec<(usize, ggrs::Message)>>>>;

struct MemSocket {
    boxes: Mailboxes,
    me: usize,
}

impl ggrs::NonBlockingSocket<usize> for MemSocket {
    fn send_to(&mut self, msg: &ggrs::Message, addr: &usize) {
        if let Some(b) = self.boxes.lock().expect("mailbox lock").get_mut(*addr) {
            b.push((self.me, msg.clone()));
        }
    }
    fn receive_all_messages(&mut self) -> Vec<(usize, ggrs::Message)> {
        std::mem::take(&mut self.boxes.lock().expect("mailbox lock")[self.me])
    }
}

impl GgrsMesh {
    fn new(players: usize) -> GgrsMesh {
        let boxes: Mailboxes = Arc::new(Mutex::new(vec![Vec::new(); players]));
        let sessions = (0..players)
            .map(|me| {
                let mut b = ggrs::SessionBuilder::<GgrsConfig>::new()
                    .with_num_players(players)
                    .expect("players");
                for h in 0..players {
                    let kind = if h == me {
                        ggrs::PlayerType::Local
                    } else {
                        ggrs::PlayerType::Remote(h)
                    };
                    b = b.add_player(kind, h).expect("player");
                }
                b.start_p2p_session(MemSocket {
                    boxes: boxes.clone(),
                    me,
                })
                .expect("session")
            })
            .collect();
        let mut mesh = GgrsMesh {
            sessions,
            scripts: (0..players as u64).map(InputScript::new).collect(),
        };
        for _ in 0..2000 {
            if mesh
                .sessions
                .iter()
                .all(|s| s.current_state() == ggrs::SessionState::Running)
            {
                break;
            }
            for s in &mut mesh.sessions {
                s.poll_remote_clients();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..120 {
            mesh.tick();
        }
        mesh
    }

    fn tick(&mut self) -> usize {
        let mut work = 0;
        for (me, s) in self.sessions.iter_mut().enumerate() {
            s.poll_remote_clients();
            s.add_local_input(me, self.scripts[me].next_input())
                .expect("input");
            if let Ok(reqs) = s.advance_frame() {
                for r in reqs {
                    match r {
                        ggrs::GgrsRequest::SaveGameState { cell, frame } => {
                            cell.save(frame, Some(0), None)
                        }
                        ggrs::GgrsRequest::AdvanceFrame { inputs } => work += inputs.len(),
                        ggrs::GgrsRequest::LoadGameState { .. } => {}
                    }
                }
            }
        }
        work
    }
}

fn session_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_frame_all_peers");
    for players in [2usize, 8] {
        let mut mesh = Mesh::new(players);
        group.bench_with_input(BenchmarkId::new("rtcplay", players), &players, |b, _| {
            b.iter(|| mesh.tick())
        });
        let mut ggrs_mesh = GgrsMesh::new(players);
        group.bench_with_input(BenchmarkId::new("ggrs", players), &players, |b, _| {
            b.iter(|| ggrs_mesh.tick())
        });
    }
    group.finish();
}

criterion_group!(benches, session_frame);
criterion_main!(benches);
