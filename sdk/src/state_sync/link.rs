//! What one endpoint tracks about one peer: datagram numbers and
//! acknowledgements both ways, which versions of our values the peer has, and
//! the reliable events in flight and arriving.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::StreamKey;

/// Datagrams whose contents are remembered until acknowledged (older ones
/// count as lost).
pub(crate) const IN_FLIGHT: usize = 64;
/// Events from a peer held while an earlier one is missing.
pub(crate) const EVENTS_AHEAD: u32 = 64;

/// One sent datagram: the versions and events it carried.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    pub values: Vec<(StreamKey, u32)>,
    pub events: Vec<u32>,
}

/// Our side of the link to one peer.
#[derive(Debug)]
pub(crate) struct PeerLink {
    /// Number of the next datagram we send (from 1).
    pub next_seq: u32,
    /// What recent datagrams carried, by number.
    pub in_flight: VecDeque<(u32, Sent)>,
    /// The newest version of each of our keys the peer acknowledged.
    pub acked: HashMap<StreamKey, u32>,
    /// Per key: (version, tick) last sent, not to resend it every tick.
    pub last_sent: HashMap<StreamKey, (u32, u64)>,
    /// Newest datagram number received from the peer, and bit i: number
    /// newest - 1 - i received.
    pub received: Option<(u32, u32)>,
    /// Events for the peer not yet acknowledged: (number, bytes).
    pub events_out: VecDeque<(u32, Vec<u8>)>,
    pub next_event: u32,
    /// The next event number we deliver from the peer, and ones that came early.
    pub next_event_in: u32,
    pub events_early: BTreeMap<u32, Vec<u8>>,
}

impl Default for PeerLink {
    /// A fresh link: datagrams and events are numbered from 1.
    fn default() -> Self {
        PeerLink {
            next_seq: 1,
            in_flight: VecDeque::new(),
            acked: HashMap::new(),
            last_sent: HashMap::new(),
            received: None,
            events_out: VecDeque::new(),
            next_event: 1,
            next_event_in: 1,
            events_early: BTreeMap::new(),
        }
    }
}

impl PeerLink {
    /// Note datagram `seq` from the peer; false if it is a duplicate or too old
    /// to tell.
    pub(crate) fn note_received(&mut self, seq: u32) -> bool {
        match self.received {
            None => {
                self.received = Some((seq, 0));
                true
            }
            Some((newest, bits)) if seq > newest => {
                let shift = seq - newest;
                let bits = if shift >= 32 {
                    0
                } else {
                    (bits << shift) | (1 << (shift - 1))
                };
                self.received = Some((seq, bits));
                true
            }
            Some((newest, bits)) => {
                let back = newest - seq;
                if back == 0 || back > 32 || bits & (1 << (back - 1)) != 0 {
                    return false;
                }
                self.received = Some((newest, bits | (1 << (back - 1))));
                true
            }
        }
    }

    /// The peer acknowledged datagram `newest` and those in `bits`: what they
    /// carried has arrived.
    pub(crate) fn on_ack(&mut self, newest: u32, bits: u32) {
        let acked = |seq: u32| {
            seq == newest
                || (seq < newest && newest - seq <= 32 && bits & (1 << (newest - seq - 1)) != 0)
        };
        let mut events = Vec::new();
        self.in_flight.retain(|(seq, sent)| {
            if !acked(*seq) {
                return true;
            }
            for (key, version) in &sent.values {
                let entry = self.acked.entry(*key).or_insert(0);
                *entry = (*entry).max(*version);
            }
            events.extend_from_slice(&sent.events);
            false
        });
        self.events_out.retain(|(n, _)| !events.contains(n));
    }

    /// Remember what datagram `seq` carried.
    pub(crate) fn sent(&mut self, seq: u32, sent: Sent) {
        self.in_flight.push_back((seq, sent));
        while self.in_flight.len() > IN_FLIGHT {
            self.in_flight.pop_front();
        }
    }

    /// Take event `n` from the peer; returns the events now deliverable in order.
    pub(crate) fn receive_event(&mut self, n: u32, bytes: &[u8]) -> Vec<Vec<u8>> {
        if n < self.next_event_in || n >= self.next_event_in.saturating_add(EVENTS_AHEAD) {
            return Vec::new();
        }
        self.events_early.entry(n).or_insert_with(|| bytes.to_vec());
        let mut ready = Vec::new();
        while let Some(bytes) = self.events_early.remove(&self.next_event_in) {
            ready.push(bytes);
            self.next_event_in += 1;
        }
        ready
    }
}
