//! The queue of frames the server holds for one connection, with the rule that a
//! full queue costs whoever sends into it, never the connection it belongs to.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Server messages (`peer_joined`, `peer_left`, `room_full`) a queue takes beyond
/// its relay limit: room events are never dropped while a reader keeps up.
const CONTROL_RESERVE_FRAMES: usize = 256;
/// Bytes of server messages a queue takes beyond its relay byte limit.
const CONTROL_RESERVE_BYTES: usize = 32 * 1024;

/// How much one connection's queue holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    /// Relayed signals queued at most (further ones are refused to their sender).
    pub frames: usize,
    /// Bytes of relayed signals queued at most.
    pub bytes: usize,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// At the relay limit: the sender's signal is dropped.
    Full,
    /// Even the reserve for server messages is used up: the connection has not
    /// read for a long time and must go.
    Overflow,
}

/// Frames waiting to be written to one connection.
#[derive(Debug)]
pub(crate) struct OutgoingQueue {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
    /// When the queue last refused a relay without having been emptied since.
    full_since: Option<Instant>,
    /// Wakes the connection's task when something was queued (or it must close).
    wake: Arc<Notify>,
    /// The connection must prove it is alive (answer a ping).
    probe: bool,
}

impl OutgoingQueue {
    pub(crate) fn new(wake: Arc<Notify>) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            full_since: None,
            wake,
            probe: false,
        }
    }

    /// Queue a signal relayed from another client, unless the queue is at its
    /// relay limit.
    pub(crate) fn push_relay(
        &mut self,
        frame: Utf8Bytes,
        limits: QueueLimits,
        now: Instant,
    ) -> Result<(), Refused> {
        if self.frames.len() >= limits.frames || self.bytes + frame.len() > limits.bytes {
            self.full_since.get_or_insert(now);
            return Err(Refused::Full);
        }
        self.push(frame);
        Ok(())
    }

    /// Queue a message of the server's own (room events), which may use the
    /// reserve beyond the relay limit.
    pub(crate) fn push_control(
        &mut self,
        frame: Utf8Bytes,
        limits: QueueLimits,
        now: Instant,
    ) -> Result<(), Refused> {
        if self.frames.len() >= limits.frames + CONTROL_RESERVE_FRAMES
            || self.bytes + frame.len() > limits.bytes + CONTROL_RESERVE_BYTES
        {
            self.full_since.get_or_insert(now);
            return Err(Refused::Overflow);
        }
        self.push(frame);
        Ok(())
    }

    fn push(&mut self, frame: Utf8Bytes) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
        self.wake.notify_one();
    }

    /// How long the queue has refused relays without being emptied.
    pub(crate) fn stuck_for(&self, now: Instant) -> Duration {
        self.full_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// Move up to `max_frames` frames (and about `max_bytes`, at least one frame)
    /// into `into`. Once the queue is empty it counts as read again.
    pub(crate) fn take(&mut self, into: &mut Vec<Utf8Bytes>, max_frames: usize, max_bytes: usize) {
        let mut taken = 0;
        while let Some(frame) = self.frames.front() {
            if into.len() >= max_frames || (taken > 0 && taken + frame.len() > max_bytes) {
                break;
            }
            taken += frame.len();
            self.bytes -= frame.len();
            if let Some(frame) = self.frames.pop_front() {
                into.push(frame);
            }
        }
        if self.frames.is_empty() {
            self.full_since = None;
        } else {
            // More to write: come back without waiting for a new frame.
            self.wake.notify_one();
        }
    }

    /// Ask the connection's task to check that its client is alive.
    pub(crate) fn request_probe(&mut self) {
        self.probe = true;
        self.wake.notify_one();
    }

    /// Whether a probe was asked for since the last call.
    pub(crate) fn take_probe(&mut self) -> bool {
        std::mem::take(&mut self.probe)
    }

    /// Wake the connection's task (it finds its queue gone and closes).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: QueueLimits = QueueLimits {
        frames: 2,
        bytes: 10,
    };

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text.to_owned())
    }

    #[test]
    fn relays_stop_at_the_limit_room_events_use_the_reserve() {
        let t0 = Instant::now();
        let mut q = OutgoingQueue::new(Arc::new(Notify::new()));
        assert_eq!(q.push_relay(frame("aaaa"), LIMITS, t0), Ok(()));
        assert_eq!(
            q.push_relay(frame("bbbbbbb"), LIMITS, t0),
            Err(Refused::Full)
        );
        assert_eq!(q.push_relay(frame("bbbb"), LIMITS, t0), Ok(()));
        assert_eq!(q.push_relay(frame("c"), LIMITS, t0), Err(Refused::Full));
        let later = t0 + Duration::from_secs(3);
        assert_eq!(q.stuck_for(later), Duration::from_secs(3));
        for _ in 0..CONTROL_RESERVE_FRAMES {
            assert_eq!(q.push_control(frame("e"), LIMITS, later), Ok(()));
        }
        assert_eq!(
            q.push_control(frame("e"), LIMITS, later),
            Err(Refused::Overflow)
        );
        // Reading it all makes it a healthy queue again.
        let mut out = Vec::new();
        while q.bytes > 0 {
            q.take(&mut out, 64, 1024);
            out.clear();
        }
        assert_eq!(q.stuck_for(later), Duration::ZERO);
        assert_eq!(q.push_relay(frame("aaaa"), LIMITS, later), Ok(()));
    }

    #[test]
    fn take_is_bounded_by_frames_and_bytes() {
        let t0 = Instant::now();
        let limits = QueueLimits {
            frames: 10,
            bytes: 100,
        };
        let mut q = OutgoingQueue::new(Arc::new(Notify::new()));
        for _ in 0..5 {
            q.push_relay(frame("0123456789"), limits, t0)
                .expect("room for it");
        }
        let mut out = Vec::new();
        q.take(&mut out, 3, 1000);
        assert_eq!(out.len(), 3);
        out.clear();
        q.take(&mut out, 10, 15);
        assert_eq!(out.len(), 1);
        out.clear();
        q.take(&mut out, 10, 5);
        assert_eq!(out.len(), 1, "at least one frame, however large");
    }
}
