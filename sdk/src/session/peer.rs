//! What a session knows about one remote peer: acks, timing, sync progress,
//! traffic counters.

use std::time::Duration;

use std::collections::VecDeque;

use super::protocol::{ChecksumReport, Datagram, Pong};
use super::rejoin::PeerRejoin;
use super::rtt::RttEstimator;
use super::SessionEvent;
use super::{Frame, PlayerHandle};
use crate::datagram::PeerId;

/// What the peer is to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// Plays these handles (ascending).
    Player(Vec<PlayerHandle>),
    /// Watches; receives every player's confirmed inputs.
    Spectator,
}

/// Traffic counters with a once-a-second rate snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Traffic {
    pub datagrams_out: u64,
    pub bytes_out: u64,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    window_start: Option<Duration>,
    at_window_start: [u64; 4],
    pub per_sec: [u32; 4],
}

impl Traffic {
    pub(crate) fn roll(&mut self, now: Duration) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_sub(start);
        if elapsed >= Duration::from_secs(1) {
            let current = [
                self.datagrams_out,
                self.bytes_out,
                self.datagrams_in,
                self.bytes_in,
            ];
            for ((rate, now), then) in self
                .per_sec
                .iter_mut()
                .zip(current)
                .zip(self.at_window_start)
            {
                *rate = ((now - then) as f64 / elapsed.as_secs_f64()).round() as u32;
            }
            self.at_window_start = current;
            self.window_start = Some(now);
        }
    }
}

/// One remote peer.
#[derive(Debug)]
pub(crate) struct RemotePeer {
    pub id: PeerId,
    pub role: Role,
    /// Highest frame of the inputs we send that the peer holds.
    pub ack: Option<Frame>,
    pub last_recv: Option<Duration>,
    pub last_send: Option<Duration>,
    pub last_ping: Option<Duration>,
    /// A ping to answer: (echo, when it arrived).
    pub pending_pong: Option<(u16, Duration)>,
    /// A datagram arrived while one of us is still synchronizing: answer in this
    /// poll instead of at the next retry, so sync round trips run at network speed.
    pub answer_now: bool,
    pub rtt: RttEstimator,
    /// Sync round trips completed.
    pub sync_round_trips: u32,
    pub synchronized: bool,
    pub interrupted: bool,
    pub disconnected: bool,
    /// The peer's latest frame and its own frame advantage.
    pub remote_frame: Option<Frame>,
    pub remote_advantage: i8,
    pub traffic: Traffic,
    pub rollbacks_caused: u64,
    /// Checksum reports still to send, with copies left (sent redundantly).
    pub outgoing_checksums: Vec<(ChecksumReport, u8)>,
    pub datagrams_since_advantage: u32,
    /// The peer is rejoining the match (a fresh session of its players).
    pub rejoin: Option<PeerRejoin>,
    /// The number of the last rejoin of this peer that completed (a datagram
    /// still carrying it is old news).
    pub last_rejoin: Option<u32>,
}

impl RemotePeer {
    pub(crate) fn new(id: PeerId, role: Role) -> Self {
        RemotePeer {
            id,
            role,
            ack: None,
            last_recv: None,
            last_send: None,
            last_ping: None,
            pending_pong: None,
            answer_now: false,
            rtt: RttEstimator::default(),
            sync_round_trips: 0,
            synchronized: false,
            interrupted: false,
            disconnected: false,
            remote_frame: None,
            remote_advantage: 0,
            traffic: Traffic::default(),
            rollbacks_caused: 0,
            outgoing_checksums: Vec::new(),
            datagrams_since_advantage: 0,
            rejoin: None,
            last_rejoin: None,
        }
    }

    pub(crate) fn handles(&self) -> &[PlayerHandle] {
        match &self.role {
            Role::Player(h) => h,
            Role::Spectator => &[],
        }
    }

    /// Whether a ping is due.
    pub(crate) fn ping_due(&self, now: Duration, interval: Duration, syncing: bool) -> bool {
        syncing
            || self
                .last_ping
                .is_none_or(|t| now.saturating_sub(t) >= interval)
    }

    /// Take the pending pong, with how long the ping was held.
    pub(crate) fn take_pong(&mut self, now: Duration) -> Option<Pong> {
        self.pending_pong.take().map(|(echo, at)| Pong {
            echo,
            held_ms: now.saturating_sub(at).as_millis().min(u128::from(u16::MAX)) as u16,
        })
    }

    /// Handle an answer to one of our pings sent at `echo` (ms, wrapping).
    pub(crate) fn on_pong(&mut self, now: Duration, pong: Pong) {
        let now_ms = ms16(now);
        let rtt_ms = now_ms.wrapping_sub(pong.echo).saturating_sub(pong.held_ms);
        // A wrapped or absurd value (reordered pong from long ago) is discarded.
        if rtt_ms < 10_000 {
            self.rtt.sample(Duration::from_millis(u64::from(rtt_ms)));
        }
    }

    /// Account for a datagram of `len` bytes received at `now`: traffic, silence,
    /// ping to answer, RTT sample, sync progress (events into `events`). Returns
    /// true when this datagram completed synchronization.
    pub(crate) fn on_datagram(
        &mut self,
        now: Duration,
        d: &Datagram,
        len: usize,
        sync_total: u32,
        events: &mut VecDeque<SessionEvent>,
    ) -> bool {
        self.traffic.datagrams_in += 1;
        self.traffic.bytes_in += len as u64;
        self.last_recv = Some(now);
        self.remote_frame = Some(d.frame);
        if self.interrupted {
            self.interrupted = false;
            events.push_back(SessionEvent::NetworkResumed { peer: self.id });
        }
        if let Some(ping) = d.ping {
            self.pending_pong = Some((ping, now));
        }
        if d.sync || !self.synchronized {
            self.answer_now = true;
        }
        let Some(pong) = d.pong else { return false };
        self.on_pong(now, pong);
        if self.synchronized {
            return false;
        }
        self.sync_round_trips += 1;
        events.push_back(SessionEvent::Synchronizing {
            peer: self.id,
            count: self.sync_round_trips.min(sync_total),
            total: sync_total,
        });
        if self.sync_round_trips < sync_total {
            return false;
        }
        self.synchronized = true;
        events.push_back(SessionEvent::Synchronized { peer: self.id });
        true
    }

    /// Channel-silence since the last datagram (or since `start` if none yet).
    pub(crate) fn silence(&self, now: Duration, start: Duration) -> Duration {
        now.saturating_sub(self.last_recv.unwrap_or(start))
    }
}

/// A time in ms, wrapping at 16 bits (enough for RTTs up to a minute).
pub(crate) fn ms16(t: Duration) -> u16 {
    (t.as_millis() & 0xFFFF) as u16
}
