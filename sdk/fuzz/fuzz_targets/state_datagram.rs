//! Arbitrary state datagrams from a peer, between the real ones of another
//! endpoint: decoding, acknowledgements, events and values must drop garbage
//! without panicking, and the keys held stay within the limit.
//!
//! Each `0xFF`-separated piece is one datagram; its first byte says whether it
//! gets a valid header (marker, version, id) so the fuzzer starts past it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rtcplay::datagram::{PeerId, Transport};
use rtcplay::state_sync::{StateSync, StateSyncConfig, Stream, STATE_VERSION};

/// Datagrams in, datagrams out.
#[derive(Default)]
struct Wire {
    inbox: Vec<(PeerId, Vec<u8>)>,
    sent: Vec<(PeerId, Vec<u8>)>,
}

impl Transport for Wire {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        self.sent.push((peer, datagram.to_vec()));
    }
    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        out.append(&mut self.inbox);
    }
}

const VALUES: Stream<(u32, u32)> = Stream::new(1);

fuzz_target!(|data: &[u8]| {
    let config = StateSyncConfig {
        max_keys_per_peer: 64,
        ..StateSyncConfig::default()
    };
    let id = config.id;
    let (me, peer) = (PeerId(1), PeerId(2));
    let mut a = StateSync::new(config.clone());
    let mut b = StateSync::new(config);
    for s in [&mut a, &mut b] {
        s.accept(VALUES);
    }
    a.add_peer(peer);
    b.add_peer(me);
    let (mut wire_a, mut wire_b) = (Wire::default(), Wire::default());
    for (i, piece) in data.split(|b| *b == 0xFF).enumerate() {
        let Some((&how, rest)) = piece.split_first() else {
            continue;
        };
        let mut bytes = Vec::new();
        if how & 1 == 1 {
            bytes.push(0xE0 | STATE_VERSION);
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        bytes.extend_from_slice(rest);
        wire_a.inbox.push((peer, bytes));
        // Real traffic both ways in between.
        b.set(VALUES, i as u64 % 8, &(i as u32, 7)).unwrap();
        b.tick(&mut wire_b);
        wire_a.inbox.extend(wire_b.sent.drain(..).map(|(_, d)| (peer, d)));
        a.tick(&mut wire_a);
        wire_b.inbox.extend(wire_a.sent.drain(..).filter(|(to, _)| *to == peer).map(|(_, d)| (me, d)));
        let _ = a.events().count();
        assert!(a.keys(peer, VALUES).len() <= 64);
        // Timing from hostile ticks: estimates and samples, never a panic.
        let _ = a.clock(peer);
        if let (Some(render), Some((value, tick))) =
            (a.render_tick(peer, 0.5), a.get_with_tick(peer, VALUES, 1))
        {
            let mut shown = rtcplay::state_sync::Snapshots::new();
            shown.push(tick, value);
            shown.push(tick.saturating_add(1), value);
            let _ = shown.sample(render, 30.0, |x, _, _| *x);
        }
    }
});
