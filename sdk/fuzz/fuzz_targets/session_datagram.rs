//! Arbitrary datagrams injected into a running 2-player P2P session, between the
//! real datagrams of its real remote session: the whole receive path (decoder,
//! input queues, acks, time sync, checksums, absences, rejoins and the state
//! transfer a forged rejoin starts) must drop or absorb garbage without
//! panicking, and keep playing.
//!
//! Each `0xFF`-separated chunk of the input is one injected datagram; its first
//! byte picks how: raw bytes, bytes behind a valid header (magic, version, session
//! id) so the fuzzer starts past the first checks, a real datagram of the remote
//! with bytes overwritten, or raw bytes from a peer that is not in the session.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rtcplay::session::{P2PSession, PlayerType, SessionBuilder, PROTOCOL_VERSION};
use rtcplay::transport::{PeerId, Transport};

const SESSION_ID: u16 = 0x5eed;
const A: PeerId = PeerId(1);
const B: PeerId = PeerId(2);

/// One side's view of a perfect two-peer link.
#[derive(Default)]
struct Queue {
    inbox: Vec<(PeerId, Vec<u8>)>,
    outbox: Vec<Vec<u8>>,
}

impl Transport for Queue {
    fn send_to(&mut self, _peer: PeerId, datagram: &[u8]) {
        self.outbox.push(datagram.to_vec());
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        out.append(&mut self.inbox);
    }
}

fn session(me: PeerId, other: PeerId) -> P2PSession<u8> {
    let (local, remote) = if me < other { (0, 1) } else { (1, 0) };
    SessionBuilder::<u8>::new()
        .with_num_players(2)
        .with_session_id(SESSION_ID)
        .with_checksum_interval(4)
        .add_player(PlayerType::Local, local)
        .add_player(PlayerType::Remote(other), remote)
        .start_p2p_session()
        .expect("valid session")
}

fn step(session: &mut P2PSession<u8>, net: &mut Queue, now: Duration, input: u8) {
    if session.is_running() {
        let handle = session.local_player_handles()[0];
        let _ = session.add_local_input(handle, input);
        if let Ok(requests) = session.advance_frame(now, net) {
            for request in requests {
                match request {
                    rtcplay::session::Request::Save { frame } => session
                        .report_checksum(frame, rtcplay::session::Checksum::new(u64::from(frame))),
                    // A forged rejoin makes us a donor: the state goes out in chunks.
                    rtcplay::session::Request::Export { frame } => {
                        let _ = session.export_state(frame, vec![frame as u8; 3000]);
                    }
                    _ => {}
                }
            }
        }
    } else {
        session.poll(now, net);
    }
    let _ = session.events().count();
}

fuzz_target!(|data: &[u8]| {
    let mut a = session(A, B);
    let mut b = session(B, A);
    let (mut net_a, mut net_b) = (Queue::default(), Queue::default());
    let mut now = Duration::ZERO;
    let mut last_from_b: Vec<u8> = Vec::new();
    let exchange = |net_a: &mut Queue, net_b: &mut Queue, last_from_b: &mut Vec<u8>| {
        for d in net_a.outbox.drain(..) {
            net_b.inbox.push((A, d));
        }
        for d in net_b.outbox.drain(..) {
            *last_from_b = d.clone();
            net_a.inbox.push((B, d));
        }
    };
    // Synchronize and play a few frames for real.
    for _ in 0..40 {
        now += Duration::from_millis(17);
        step(&mut a, &mut net_a, now, 1);
        step(&mut b, &mut net_b, now, 2);
        exchange(&mut net_a, &mut net_b, &mut last_from_b);
    }
    for (i, chunk) in data.split(|&x| x == 0xFF).enumerate() {
        let (mode, body) = match chunk.split_first() {
            Some((&mode, body)) => (mode % 4, body),
            None => (0, chunk),
        };
        let injected = match mode {
            0 => (B, body.to_vec()),
            1 => {
                let mut d = vec![0xC0 | PROTOCOL_VERSION];
                d.extend_from_slice(&SESSION_ID.to_le_bytes());
                d.extend_from_slice(body);
                (B, d)
            }
            2 => {
                let mut d = last_from_b.clone();
                for pair in body.chunks(2) {
                    if let [at, value] = pair {
                        if !d.is_empty() {
                            let at = usize::from(*at) % d.len();
                            d[at] = *value;
                        }
                    }
                }
                (B, d)
            }
            _ => (
                PeerId(u32::from(body.first().copied().unwrap_or(9))),
                body.to_vec(),
            ),
        };
        net_a.inbox.push(injected);
        now += Duration::from_millis(17);
        step(&mut a, &mut net_a, now, i as u8);
        step(&mut b, &mut net_b, now, 2);
        exchange(&mut net_a, &mut net_b, &mut last_from_b);
    }
});
