//! State shared between the game thread and the tasks serving one peer connection.
//!
//! Everything here is lock-free or held for a few instructions, so the game thread
//! never waits on the network.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::Notify;

use super::socket::Control;
use crate::transport::link_protocol::{LinkProtocol, LinkTimers};
use crate::transport::{Channel, LinkStats, PeerId, Received};

/// Counters and clocks of one link, shared by its tasks and the game thread.
#[derive(Debug)]
pub(crate) struct LinkShared {
    /// Time base of the link's protocol (`now` is the time since).
    pub(crate) epoch: Instant,
    /// The link's protocol (handshake, pings, silence), sans-IO: fed by the reader
    /// tasks and the peer task, each holding the lock for one call.
    pub(crate) protocol: Mutex<LinkProtocol>,
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
    /// Latest periodic statistics, written by the peer task every ping interval and
    /// read by the game thread with `try_lock` (never waiting).
    pub(crate) latest: Mutex<Option<LinkStats>>,
}

impl LinkShared {
    /// A link whose connection attempt starts now.
    pub(crate) fn new(timers: LinkTimers) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            protocol: Mutex::new(LinkProtocol::new(timers, Duration::ZERO)),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            dropped_unreliable: AtomicU64::new(0),
            dropped_incoming: AtomicU64::new(0),
            dropped_oversize: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            latest: Mutex::new(None),
        })
    }

    /// Time since this link's epoch: the protocol's clock.
    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Copy the live counters into `stats`.
    pub(crate) fn fill_counters(&self, stats: &mut LinkStats) {
        stats.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        stats.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        stats.dropped_unreliable = self.dropped_unreliable.load(Ordering::Relaxed);
        stats.dropped_incoming = self.dropped_incoming.load(Ordering::Relaxed);
        stats.dropped_oversize = self.dropped_oversize.load(Ordering::Relaxed);
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
    fn full_unreliable_queue_drops_the_oldest() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let (rtx, _rrx) = crossbeam_channel::bounded(2);
        let link = LinkHandle {
            unreliable_tx: tx,
            unreliable_rx: rx.clone(),
            unreliable_wake: Arc::new(Notify::new()),
            reliable_tx: rtx,
            reliable_wake: Arc::new(Notify::new()),
            shared: LinkShared::new(LinkTimers::from_config(
                &crate::transport::SocketConfig::new("ws://unused", "test", 2),
                Duration::from_secs(10),
            )),
        };
        for i in 0..5u8 {
            link.push_unreliable(BytesMut::from(&[i][..]));
        }
        let left: Vec<u8> = rx.try_iter().map(|b| b[0]).collect();
        assert_eq!(left, vec![3, 4]);
        assert_eq!(link.shared.dropped_unreliable.load(Ordering::Relaxed), 3);
    }
}
