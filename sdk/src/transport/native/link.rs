//! State shared between the game thread and the tasks serving one peer connection.
//!
//! Everything here is lock-free or held for a few instructions, so the game thread
//! never waits on the network.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::Notify;

use super::socket::Control;
use crate::transport::{Channel, LinkStats, PeerId, Received};

/// Counters and clocks of one link, shared by its tasks and the game thread.
#[derive(Debug)]
pub(crate) struct LinkShared {
    /// Time base for pings and "last heard".
    pub(crate) epoch: Instant,
    /// Microseconds since `epoch` at which anything last arrived from the peer.
    pub(crate) last_rx_us: AtomicU64,
    /// Payload bytes received.
    pub(crate) bytes_in: AtomicU64,
    /// Payload bytes handed to webrtc.
    pub(crate) bytes_out: AtomicU64,
    /// Unreliable datagrams dropped before sending.
    pub(crate) dropped_unreliable: AtomicU64,
    /// Received messages dropped because the game's inbox was full.
    pub(crate) dropped_incoming: AtomicU64,
    /// Messages over the remote's advertised size limit, dropped.
    pub(crate) dropped_oversize: AtomicU64,
    /// Frames that did not decode.
    pub(crate) malformed: AtomicU64,
    /// Set when the link is torn down: game-side sends become errors.
    pub(crate) closed: AtomicBool,
    /// Ping bookkeeping.
    pub(crate) pings: Mutex<PingState>,
    /// Latest periodic statistics, written by the peer task every ping interval and
    /// read by the game thread with `try_lock` (never waiting).
    pub(crate) latest: Mutex<Option<LinkStats>>,
}

impl LinkShared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            last_rx_us: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            dropped_unreliable: AtomicU64::new(0),
            dropped_incoming: AtomicU64::new(0),
            dropped_oversize: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            pings: Mutex::new(PingState::default()),
            latest: Mutex::new(None),
        })
    }

    /// Microseconds since this link's epoch.
    pub(crate) fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Note that something arrived from the peer.
    pub(crate) fn heard(&self) {
        self.last_rx_us.store(self.now_us(), Ordering::Relaxed);
    }

    /// Copy the live counters into `stats`.
    pub(crate) fn fill_counters(&self, stats: &mut LinkStats) {
        stats.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        stats.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        stats.dropped_unreliable = self.dropped_unreliable.load(Ordering::Relaxed);
        stats.dropped_incoming = self.dropped_incoming.load(Ordering::Relaxed);
        stats.dropped_oversize = self.dropped_oversize.load(Ordering::Relaxed);
    }

    /// Time since anything arrived from the peer.
    pub(crate) fn silence(&self) -> Duration {
        let last = self.last_rx_us.load(Ordering::Relaxed);
        Duration::from_micros(self.now_us().saturating_sub(last))
    }
}

/// How many pings the loss estimate looks back over.
const PING_WINDOW: usize = 16;

/// RTT and loss from pings on the unreliable channel.
#[derive(Debug, Default)]
pub(crate) struct PingState {
    /// Next sequence number.
    next_seq: u32,
    /// Recent pings: (seq, sent_us, answered).
    sent: VecDeque<(u32, u64, bool)>,
    /// Smoothed RTT (RFC 6298 style, alpha 1/8).
    pub(crate) srtt: Option<Duration>,
    /// Latest sample.
    pub(crate) last: Option<Duration>,
}

impl PingState {
    /// Register a ping about to be sent; returns its sequence number.
    pub(crate) fn on_send(&mut self, sent_us: u64) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        if self.sent.len() == PING_WINDOW {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, sent_us, false));
        seq
    }

    /// Register a pong; ignores unknown or repeated sequence numbers.
    pub(crate) fn on_pong(&mut self, seq: u32, sent_us: u64, now_us: u64) {
        let Some(entry) = self
            .sent
            .iter_mut()
            .find(|(s, t, answered)| *s == seq && *t == sent_us && !answered)
        else {
            return;
        };
        entry.2 = true;
        let sample = Duration::from_micros(now_us.saturating_sub(sent_us));
        self.last = Some(sample);
        self.srtt = Some(match self.srtt {
            None => sample,
            Some(srtt) => (srtt * 7 + sample) / 8,
        });
    }

    /// Fraction of pings older than `due_after` that were never answered.
    pub(crate) fn loss(&self, now_us: u64, due_after: Duration) -> f32 {
        let due_us = u64::try_from(due_after.as_micros()).unwrap_or(u64::MAX);
        let (mut due, mut lost) = (0u32, 0u32);
        for &(_, sent_us, answered) in &self.sent {
            if now_us.saturating_sub(sent_us) >= due_us {
                due += 1;
                if !answered {
                    lost += 1;
                }
            }
        }
        if due == 0 {
            0.0
        } else {
            lost as f32 / due as f32
        }
    }
}

/// Hands a link's handle to the game thread, once: when the peer's first game
/// message arrives (the peer has finished its handshake, so a reply can go at once,
/// even before our own hellos are acknowledged), or at the latest when our handshake
/// completes. Sent on the control channel before that message reaches the inbox, so
/// the game never sees a message from a peer it cannot answer.
#[derive(Debug, Clone)]
pub(crate) struct LinkPublisher {
    remote: PeerId,
    handle: LinkHandle,
    control: Sender<Control>,
    published: Arc<AtomicBool>,
}

impl LinkPublisher {
    pub(crate) fn new(remote: PeerId, handle: LinkHandle, control: Sender<Control>) -> Self {
        Self {
            remote,
            handle,
            control,
            published: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Make the link usable for sends (no-op after the first call).
    pub(crate) fn publish(&self) {
        if !self.published.swap(true, Ordering::Relaxed) {
            let _ = self
                .control
                .send(Control::Link(self.remote, self.handle.clone()));
        }
    }
}

/// The game thread's handle to one peer's link.
#[derive(Debug, Clone)]
pub(crate) struct LinkHandle {
    /// Framed unreliable datagrams waiting for the writer task.
    pub(crate) unreliable_tx: Sender<BytesMut>,
    /// Same queue, used to drop the oldest entry when it is full.
    pub(crate) unreliable_rx: Receiver<BytesMut>,
    /// Wakes the unreliable writer.
    pub(crate) unreliable_wake: Arc<Notify>,
    /// Framed reliable messages waiting for the writer task.
    pub(crate) reliable_tx: Sender<BytesMut>,
    /// Wakes the reliable writer.
    pub(crate) reliable_wake: Arc<Notify>,
    /// Counters.
    pub(crate) shared: Arc<LinkShared>,
}

impl LinkHandle {
    /// Queue an unreliable frame; drops the oldest queued one when the queue is full.
    pub(crate) fn push_unreliable(&self, mut frame: BytesMut) {
        loop {
            match self.unreliable_tx.try_send(frame) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    frame = back;
                    if self.unreliable_rx.try_recv().is_ok() {
                        self.shared
                            .dropped_unreliable
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        self.unreliable_wake.notify_one();
    }

    /// Queue a reliable frame; `false` when the queue is full.
    pub(crate) fn push_reliable(&self, frame: BytesMut) -> bool {
        match self.reliable_tx.try_send(frame) {
            Ok(()) => {
                self.reliable_wake.notify_one();
                true
            }
            Err(_) => false,
        }
    }
}

/// Where received messages go: the game thread's inbox, one queue per channel.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    /// Unreliable arrivals.
    pub(crate) unreliable: Sender<Received>,
    /// Reliable arrivals.
    pub(crate) reliable: Sender<Received>,
}

impl Inbox {
    /// Hand a payload to the game; counts it as dropped when the inbox is full.
    pub(crate) fn deliver(&self, from: PeerId, channel: Channel, data: &[u8], link: &LinkShared) {
        let queue = match channel {
            Channel::Unreliable => &self.unreliable,
            Channel::Reliable => &self.reliable,
        };
        link.bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let message = Received {
            from,
            channel,
            data: data.to_vec(),
        };
        if queue.try_send(message).is_err() {
            link.dropped_incoming.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_and_loss_from_pings() {
        let mut pings = PingState::default();
        let a = pings.on_send(0);
        let _b = pings.on_send(1_000);
        let c = pings.on_send(2_000);
        pings.on_pong(a, 0, 500);
        pings.on_pong(c, 2_000, 2_300);
        // An unknown pong and a repeated one change nothing.
        pings.on_pong(77, 0, 9_000);
        pings.on_pong(a, 0, 9_000);
        assert_eq!(pings.last, Some(Duration::from_micros(300)));
        let srtt = pings.srtt.expect("two samples");
        assert!(srtt > Duration::from_micros(300) && srtt < Duration::from_micros(500));
        // All three are due at t = 10 ms with a 5 ms grace: one of three unanswered.
        let loss = pings.loss(10_000, Duration::from_millis(5));
        assert!((loss - 1.0 / 3.0).abs() < 1e-6, "{loss}");
        // None is due yet right after sending.
        assert_eq!(pings.loss(2_000, Duration::from_millis(5)), 0.0);
    }

    #[test]
    fn full_unreliable_queue_drops_the_oldest() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let (rtx, _rrx) = crossbeam_channel::bounded(2);
        let link = LinkHandle {
            unreliable_tx: tx,
            unreliable_rx: rx.clone(),
            unreliable_wake: Arc::new(Notify::new()),
            reliable_tx: rtx,
            reliable_wake: Arc::new(Notify::new()),
            shared: LinkShared::new(),
        };
        for i in 0..5u8 {
            link.push_unreliable(BytesMut::from(&[i][..]));
        }
        let left: Vec<u8> = rx.try_iter().map(|b| b[0]).collect();
        assert_eq!(left, vec![3, 4]);
        assert_eq!(link.shared.dropped_unreliable.load(Ordering::Relaxed), 3);
    }
}
