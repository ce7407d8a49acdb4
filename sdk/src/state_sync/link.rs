//! What one endpoint tracks about one peer: datagram numbers and
//! acknowledgements both ways, which versions of our values the peer has, and
//! the reliable events in flight and arriving.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::StreamKey;

/// Datagrams whose contents are remembered until acknowledged (older ones
/// count as lost).
pub(crate) const IN_FLIGHT: usize = 256;
/// Events from a peer held while an earlier one is missing.
pub(crate) const EVENTS_AHEAD: u32 = 64;
/// Datagrams whose timing the peer's clock estimate is made of.
const CLOCK_SAMPLES: usize = 128;
/// How fast the render delay follows its target, in ticks per tick (a change
/// of delay is a change of playback speed: 5 % is not seen).
const DELAY_SLEW: f64 = 0.05;
/// Ticks of render delay beyond latency and jitter: room for the sample after
/// the one shown, also when dead reckoning sends a turn a tick late.
const INTERPOLATION_TICKS: f64 = 2.0;

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
    /// Our tick minus the peer's, at each recent datagram's arrival.
    pub clock: VecDeque<i64>,
    /// Ticks behind our clock the peer's values are shown (see [`PeerClock`]),
    /// once a datagram arrived.
    pub delay: Option<f64>,
}

/// How a peer's ticks map to ours, measured from its datagrams' arrival.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerClock {
    /// Our tick minus the peer's at the quickest recent arrival: the peer's
    /// tick `t` is our tick `t + offset` at the earliest (latency included).
    pub offset: i64,
    /// How much later than the quickest most arrivals are: the 95th
    /// percentile over the last 128 datagrams, ticks.
    pub jitter: u64,
    /// The render delay in use: the peer's values are shown as of our tick
    /// minus this (it follows `offset + jitter + 2` by at most 0.05 tick per
    /// tick, so playback never jumps).
    pub delay: f64,
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
            clock: VecDeque::new(),
            delay: None,
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

    /// A datagram the peer sent at its tick `theirs` arrived at our tick `ours`.
    pub(crate) fn note_timing(&mut self, ours: u64, theirs: u64) {
        let sample = i128::from(ours) - i128::from(theirs);
        let sample = i64::try_from(sample).unwrap_or(if sample < 0 { i64::MIN } else { i64::MAX });
        self.clock.push_back(sample);
        while self.clock.len() > CLOCK_SAMPLES {
            self.clock.pop_front();
        }
    }

    /// The offset and jitter measured so far (no delay yet: see [`Self::pace`]).
    pub(crate) fn measure(&self) -> Option<(i64, u64)> {
        let offset = *self.clock.iter().min()?;
        let mut late: Vec<u64> = self
            .clock
            .iter()
            .map(|s| s.saturating_sub(offset).unsigned_abs())
            .collect();
        late.sort_unstable();
        let jitter = late[(late.len() * 95 / 100).min(late.len() - 1)];
        Some((offset, jitter))
    }

    /// Once a tick: move the render delay toward its target.
    pub(crate) fn pace(&mut self) {
        let Some((offset, jitter)) = self.measure() else {
            return;
        };
        let target = offset as f64 + jitter as f64 + INTERPOLATION_TICKS;
        self.delay = Some(match self.delay {
            None => target,
            Some(d) => d + (target - d).clamp(-DELAY_SLEW, DELAY_SLEW),
        });
    }

    /// The clock estimate, once a datagram arrived.
    pub(crate) fn clock(&self) -> Option<PeerClock> {
        let (offset, jitter) = self.measure()?;
        Some(PeerClock {
            offset,
            jitter,
            delay: self.delay?,
        })
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
