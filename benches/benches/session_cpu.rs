//! CPU cost of one frame of session bookkeeping (2 and 8 players), rtcplay vs ggrs:
//! one iteration ticks every peer of the mesh once over a perfect in-memory link.
//! `rtcplay_recording` is the same mesh with every session writing a replay (the
//! bytes taken every tick, as a game appends them to its file).
//!
//! `cargo bench -p rtcplay_benches --bench session_cpu`

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rtcplay_benches::input_script::InputScript;
use rtcplay_benches::session_mesh::Mesh;
use rtcplay_benches::session_traffic::GgrsConfig;

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
        let mut mesh = Mesh::new(players, false);
        group.bench_with_input(BenchmarkId::new("rtcplay", players), &players, |b, _| {
            b.iter(|| mesh.tick())
        });
        let mut recording = Mesh::new(players, true);
        group.bench_with_input(
            BenchmarkId::new("rtcplay_recording", players),
            &players,
            |b, _| b.iter(|| recording.tick()),
        );
        assert!(recording.recorded_bytes > 0, "nothing was recorded");
        let mut ggrs_mesh = GgrsMesh::new(players);
        group.bench_with_input(BenchmarkId::new("ggrs", players), &players, |b, _| {
            b.iter(|| ggrs_mesh.tick())
        });
    }
    group.finish();
}

criterion_group!(benches, session_frame);
criterion_main!(benches);
