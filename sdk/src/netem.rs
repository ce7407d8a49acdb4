//! A seeded, sans-IO link conditioner: latency, jitter, random and burst loss,
//! duplication and reordering.
//!
//! [`Netem`] never reads a clock: every call takes `now`, the caller's monotonic time
//! (any fixed epoch). The same seed and the same calls give the same deliveries, so a
//! simulation over it is reproducible. [`ConditionedTransport`] wraps any
//! [`Transport`](crate::datagram::Transport) (the in-memory network or the real
//! WebRTC socket) so games can be played under simulated conditions; the Linux
//! kernel here has no `tc netem`.
//!
//! ```
//! use rtcplay::netem::{LinkConditions, Netem};
//! use std::time::Duration;
//!
//! let mut link = Netem::new(LinkConditions::good(), 7);
//! link.send(Duration::ZERO, b"hello".to_vec());
//! assert!(link.poll(Duration::from_millis(1)).is_none()); // still in flight
//! let later = Duration::from_secs(1);
//! assert_eq!(link.poll(later).as_deref(), Some(&b"hello"[..]));
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::datagram::{PeerId, Transport};

/// Two-state (Gilbert–Elliott) burst-loss model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstLoss {
    /// Probability, per packet, of moving from the good to the bad state.
    pub enter_bad: f64,
    /// Probability, per packet, of moving from the bad back to the good state.
    pub leave_bad: f64,
    /// Loss probability while in the bad state (the good state uses `LinkConditions::loss`).
    pub loss_in_bad: f64,
}

/// The conditions of one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConditions {
    /// One-way base latency.
    pub latency: Duration,
    /// Maximum deviation from the base latency (triangular distribution, ±jitter).
    pub jitter: Duration,
    /// Independent random loss probability (0.0–1.0).
    pub loss: f64,
    /// Optional burst loss on top of `loss`.
    pub burst: Option<BurstLoss>,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet ignores FIFO order (and may overtake or fall behind).
    /// Without it, jitter never reorders packets.
    pub reorder: f64,
}

/// Named presets (the names users pass to `--netem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// No added delay or loss.
    Perfect,
    /// LAN: 2 ms ± 1 ms, no loss.
    Lan,
    /// Good broadband: 40 ms ± 10 ms, 0.2 % loss.
    Good,
    /// Average: 100 ms ± 25 ms, 2 % loss.
    Average,
    /// Poor: 200 ms ± 50 ms, 4 % loss.
    Poor,
    /// Lossy: 30 ms ± 10 ms, 20 % loss with bursts and 5 % reordering.
    Lossy,
}

impl Preset {
    /// Every preset, in order from best to worst.
    pub const ALL: [Preset; 6] = [
        Preset::Perfect,
        Preset::Lan,
        Preset::Good,
        Preset::Average,
        Preset::Poor,
        Preset::Lossy,
    ];

    /// The preset's lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Perfect => "perfect",
            Preset::Lan => "lan",
            Preset::Good => "good",
            Preset::Average => "average",
            Preset::Poor => "poor",
            Preset::Lossy => "lossy",
        }
    }

    /// The link conditions of this preset.
    pub fn conditions(self) -> LinkConditions {
        match self {
            Preset::Perfect => LinkConditions::perfect(),
            Preset::Lan => LinkConditions::lan(),
            Preset::Good => LinkConditions::good(),
            Preset::Average => LinkConditions::average(),
            Preset::Poor => LinkConditions::poor(),
            Preset::Lossy => LinkConditions::lossy(),
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown netem preset `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

impl LinkConditions {
    /// No delay, no loss.
    pub fn perfect() -> Self {
        Self::with(0, 0, 0.0)
    }
    /// 2 ms ± 1 ms, no loss.
    pub fn lan() -> Self {
        Self::with(2, 1, 0.0)
    }
    /// 40 ms ± 10 ms, 0.2 % loss.
    pub fn good() -> Self {
        Self::with(40, 10, 0.002)
    }
    /// 100 ms ± 25 ms, 2 % loss.
    pub fn average() -> Self {
        Self::with(100, 25, 0.02)
    }
    /// 200 ms ± 50 ms, 4 % loss.
    pub fn poor() -> Self {
        Self::with(200, 50, 0.04)
    }
    /// About 20 % loss (10 % random plus bursts), 5 % reordering, 30 ms ± 10 ms.
    pub fn lossy() -> Self {
        LinkConditions {
            burst: Some(BurstLoss {
                enter_bad: 0.05,
                leave_bad: 0.3,
                loss_in_bad: 0.75,
            }),
            reorder: 0.05,
            ..Self::with(30, 10, 0.1)
        }
    }

    /// Latency and jitter in milliseconds and a random loss probability.
    pub fn with(latency_ms: u64, jitter_ms: u64, loss: f64) -> Self {
        LinkConditions {
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(jitter_ms),
            loss,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

/// Counters of what a [`Netem`] did to the packets it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetemStats {
    /// Packets handed to `send`.
    pub sent: u64,
    /// Packets dropped by random or burst loss.
    pub dropped: u64,
    /// Extra copies created by duplication.
    pub duplicated: u64,
    /// Packets handed out by `poll`.
    pub delivered: u64,
}

/// A small deterministic PRNG (SplitMix64): seeded, portable, no dependencies.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }
}

/// One direction of a conditioned link carrying packets of type `T`.
#[derive(Debug, Clone)]
pub struct Netem<T> {
    conditions: LinkConditions,
    rng: SplitMix64,
    in_bad_state: bool,
    /// Packets in flight, ordered by delivery time, then by send order.
    in_flight: BinaryHeap<Reverse<(Duration, u64, Slot<T>)>>,
    next_seq: u64,
    /// Latest delivery time handed out to an in-order packet (keeps FIFO order).
    last_in_order: Duration,
    stats: NetemStats,
}

/// Wrapper so the heap only compares (time, seq), never the payload.
#[derive(Debug, Clone)]
struct Slot<T>(T);

impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T: Clone> Netem<T> {
    /// A link with the given conditions and PRNG seed.
    pub fn new(conditions: LinkConditions, seed: u64) -> Self {
        Netem {
            conditions,
            rng: SplitMix64::new(seed),
            in_bad_state: false,
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            last_in_order: Duration::ZERO,
            stats: NetemStats::default(),
        }
    }

    /// The current conditions.
    pub fn conditions(&self) -> &LinkConditions {
        &self.conditions
    }

    /// Change the conditions; packets already in flight keep their delivery times.
    pub fn set_conditions(&mut self, conditions: LinkConditions) {
        self.conditions = conditions;
    }

    /// What happened so far.
    pub fn stats(&self) -> NetemStats {
        self.stats
    }

    /// Packets currently in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Hand a packet to the link at time `now`.
    pub fn send(&mut self, now: Duration, packet: T) {
        self.stats.sent += 1;
        if self.lost() {
            self.stats.dropped += 1;
            return;
        }
        if self.rng.chance(self.conditions.duplicate) {
            self.stats.duplicated += 1;
            let at = self.delivery_time(now);
            self.push(at, packet.clone());
        }
        let at = self.delivery_time(now);
        self.push(at, packet);
    }

    /// The next packet due at or before `now`, if any.
    pub fn poll(&mut self, now: Duration) -> Option<T> {
        match self.in_flight.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.stats.delivered += 1;
                self.in_flight.pop().map(|Reverse((_, _, Slot(p)))| p)
            }
            _ => None,
        }
    }

    /// When the next packet becomes due (for event-driven simulations).
    pub fn next_delivery(&self) -> Option<Duration> {
        self.in_flight.peek().map(|Reverse((at, _, _))| *at)
    }

    fn lost(&mut self) -> bool {
        if let Some(burst) = self.conditions.burst {
            let flip = if self.in_bad_state {
                burst.leave_bad
            } else {
                burst.enter_bad
            };
            if self.rng.chance(flip) {
                self.in_bad_state = !self.in_bad_state;
            }
            if self.in_bad_state {
                return self.rng.chance(burst.loss_in_bad);
            }
        }
        self.rng.chance(self.conditions.loss)
    }

    fn delivery_time(&mut self, now: Duration) -> Duration {
        let c = self.conditions;
        // Triangular distribution on [-jitter, +jitter]: the mean of two uniforms.
        let spread = (self.rng.next_f64() + self.rng.next_f64()) - 1.0;
        let jitter_ns = spread * c.jitter.as_nanos() as f64;
        let base_ns = c.latency.as_nanos() as f64 + jitter_ns;
        let at = now + Duration::from_nanos(base_ns.max(0.0) as u64);
        if self.rng.chance(c.reorder) {
            // Out of order: may overtake packets in flight or fall behind later ones.
            at
        } else {
            let at = at.max(self.last_in_order);
            self.last_in_order = at;
            at
        }
    }

    fn push(&mut self, at: Duration, packet: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push(Reverse((at, seq, Slot(packet))));
    }
}

/// Any [`Transport`] with a [`Netem`] on its outgoing and incoming directions.
///
/// Set the time with [`ConditionedTransport::set_now`] before each use (the session
/// loop knows the time; this type never reads a clock).
pub struct ConditionedTransport<T> {
    inner: T,
    now: Duration,
    outgoing: Netem<(PeerId, Vec<u8>)>,
    incoming: Netem<(PeerId, Vec<u8>)>,
    scratch: Vec<(PeerId, Vec<u8>)>,
}

impl<T: Transport> ConditionedTransport<T> {
    /// Wrap `inner`; each direction gets `conditions` (so the round trip doubles them).
    pub fn new(inner: T, conditions: LinkConditions, seed: u64) -> Self {
        ConditionedTransport {
            inner,
            now: Duration::ZERO,
            outgoing: Netem::new(conditions, seed),
            incoming: Netem::new(conditions, seed ^ 0x005E_ED0F_1DE5),
            scratch: Vec::new(),
        }
    }

    /// Set the current time; packets due by then move on.
    pub fn set_now(&mut self, now: Duration) {
        self.now = now;
        while let Some((peer, bytes)) = self.outgoing.poll(now) {
            self.inner.send_to(peer, &bytes);
        }
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Statistics of the outgoing and incoming conditioners.
    pub fn stats(&self) -> (NetemStats, NetemStats) {
        (self.outgoing.stats(), self.incoming.stats())
    }
}

impl<T: Transport> Transport for ConditionedTransport<T> {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        self.outgoing.send(self.now, (peer, datagram.to_vec()));
        while let Some((peer, bytes)) = self.outgoing.poll(self.now) {
            self.inner.send_to(peer, &bytes);
        }
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        self.scratch.clear();
        self.inner.receive(&mut self.scratch);
        for packet in self.scratch.drain(..) {
            self.incoming.send(self.now, packet);
        }
        while let Some(packet) = self.incoming.poll(self.now) {
            out.push(packet);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn run(conditions: LinkConditions, seed: u64, n: u32) -> (Vec<(u32, Duration)>, NetemStats) {
        let mut link = Netem::new(conditions, seed);
        let mut out = Vec::new();
        for i in 0..n {
            let now = ms(u64::from(i) * 16);
            link.send(now, i);
            while let Some(p) = link.poll(now) {
                out.push((p, now));
            }
        }
        let end = ms(u64::from(n) * 16 + 10_000);
        while let Some(p) = link.poll(end) {
            out.push((p, end));
        }
        (out, link.stats())
    }

    #[test]
    fn same_seed_same_result_other_seed_differs() {
        let a = run(LinkConditions::average(), 1, 2000);
        let b = run(LinkConditions::average(), 1, 2000);
        let c = run(LinkConditions::average(), 2, 2000);
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, c.0);
    }

    #[test]
    fn loss_rate_is_close_to_configured() {
        let (_, stats) = run(LinkConditions::with(10, 0, 0.2), 3, 20_000);
        let rate = stats.dropped as f64 / stats.sent as f64;
        assert!((0.18..0.22).contains(&rate), "loss rate {rate}");
        assert_eq!(stats.delivered + stats.dropped, stats.sent);
    }

    #[test]
    fn lossy_preset_loses_about_a_fifth_in_bursts() {
        let (delivered, stats) = run(LinkConditions::lossy(), 4, 20_000);
        let rate = stats.dropped as f64 / stats.sent as f64;
        assert!((0.15..0.25).contains(&rate), "loss rate {rate}");
        // Bursts: some runs of >= 3 consecutive losses exist.
        let ids: Vec<u32> = {
            let mut v: Vec<u32> = delivered.iter().map(|(p, _)| *p).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let long_gaps = ids.windows(2).filter(|w| w[1] - w[0] > 3).count();
        assert!(long_gaps > 50, "only {long_gaps} bursts");
    }

    #[test]
    fn latency_is_respected_and_fifo_without_reorder() {
        let (delivered, _) = run(LinkConditions::with(100, 25, 0.0), 5, 1000);
        assert_eq!(delivered.len(), 1000);
        for w in delivered.windows(2) {
            assert!(w[0].0 < w[1].0, "reordered without reorder probability");
        }
        for (id, at) in &delivered {
            let sent = ms(u64::from(*id) * 16);
            // Polled at 16 ms granularity: delivered no earlier than latency - jitter.
            assert!(*at >= sent + ms(75), "packet {id} too early");
        }
    }

    #[test]
    fn reordering_and_duplication_happen_when_asked() {
        let conditions = LinkConditions {
            reorder: 0.2,
            duplicate: 0.1,
            ..LinkConditions::with(50, 40, 0.0)
        };
        let (delivered, stats) = run(conditions, 6, 5000);
        assert!(stats.duplicated > 300);
        assert_eq!(delivered.len() as u64, 5000 + stats.duplicated);
        let inversions = delivered.windows(2).filter(|w| w[0].0 > w[1].0).count();
        assert!(inversions > 100, "{inversions} inversions");
    }

    #[test]
    fn presets_parse_by_name() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
        }
        assert!("nope".parse::<Preset>().is_err());
        assert_eq!(Preset::Good.conditions().latency, ms(40));
    }
}
