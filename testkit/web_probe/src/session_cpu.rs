//! The session's CPU cost per tick, one workload for both targets: the web bench
//! runs it in the page (wasm32, `bench_session`), the native bench calls it
//! directly, so the two figures compare the same code.
//!
//! A full mesh of `players` P2P sessions over a perfect in-memory link; one tick
//! gives every peer an input and advances it (requests carried out trivially).

use std::time::Duration;

use rtcplay::netem::LinkConditions;
use rtcplay::session::{P2PSession, PlayerType, SessionBuilder};
use rtcplay::transport::{MemoryNetwork, PeerId};

/// A small input that changes now and then, as a player's pad does.
type Pad = u16;

struct Mesh {
    net: MemoryNetwork,
    sessions: Vec<P2PSession<Pad>>,
    now: Duration,
    frame: u64,
}

impl Mesh {
    fn new(players: usize) -> Option<Mesh> {
        let ids: Vec<PeerId> = (0..players as u32).map(PeerId).collect();
        let mut sessions = Vec::new();
        for me in 0..players {
            let mut builder = SessionBuilder::<Pad>::new().with_num_players(players);
            for (handle, id) in ids.iter().enumerate() {
                let kind = if handle == me {
                    PlayerType::Local
                } else {
                    PlayerType::Remote(*id)
                };
                builder = builder.add_player(kind, handle);
            }
            sessions.push(builder.start_p2p_session().ok()?);
        }
        let mut mesh = Mesh {
            net: MemoryNetwork::new(&ids, LinkConditions::perfect(), 1),
            sessions,
            now: Duration::ZERO,
            frame: 0,
        };
        for _ in 0..10_000 {
            if mesh.sessions.iter().all(P2PSession::is_running) {
                break;
            }
            mesh.tick();
        }
        Some(mesh)
    }

    fn tick(&mut self) {
        self.now += Duration::from_micros(16_667);
        self.frame += 1;
        self.net.set_now(self.now);
        for (me, session) in self.sessions.iter_mut().enumerate() {
            let mut endpoint = self.net.endpoint(PeerId(me as u32));
            if !session.is_running() {
                session.poll(self.now, &mut endpoint);
                continue;
            }
            // A new input every 8 frames, different per player.
            let pad = ((self.frame / 8) as u16)
                .wrapping_mul(31)
                .wrapping_add(me as u16);
            let _ = session.add_local_input(me, pad);
            let _ = session.advance_frame(self.now, &mut endpoint);
        }
    }
}

/// Microseconds of CPU per tick of the whole mesh (every peer once), over `ticks`
/// ticks after a 120-tick warm-up; `now_ms` is the platform's clock in ms.
pub fn micros_per_tick(players: usize, ticks: u32, mut now_ms: impl FnMut() -> f64) -> f64 {
    let Some(mut mesh) = Mesh::new(players) else {
        return f64::NAN;
    };
    for _ in 0..120 {
        mesh.tick();
    }
    let start = now_ms();
    for _ in 0..ticks {
        mesh.tick();
    }
    (now_ms() - start) * 1000.0 / f64::from(ticks.max(1))
}
