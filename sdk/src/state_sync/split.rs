//! One transport shared by a rollback session and state streams.

use std::collections::VecDeque;

use super::wire::is_state_datagram;
use crate::datagram::{PeerId, Transport};

/// Wraps a transport so a rollback session and a [`StateSync`](super::StateSync)
/// can use it side by side: each `receive` hands out only its own datagrams
/// (state datagrams are told by their first byte), the other kind waits for its
/// reader. Waiting datagrams are bounded per kind (the oldest dropped).
#[derive(Debug)]
pub struct SplitTransport<T> {
    inner: T,
    session_in: VecDeque<(PeerId, Vec<u8>)>,
    state_in: VecDeque<(PeerId, Vec<u8>)>,
    scratch: Vec<(PeerId, Vec<u8>)>,
}

/// Datagrams of one kind held for their reader.
const HELD: usize = 4096;

impl<T: Transport> SplitTransport<T> {
    /// Share `inner`.
    pub fn new(inner: T) -> Self {
        SplitTransport {
            inner,
            session_in: VecDeque::new(),
            state_in: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// The wrapped transport.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The session's view.
    pub fn session(&mut self) -> SplitView<'_, T> {
        SplitView {
            split: self,
            state: false,
        }
    }

    /// The state streams' view.
    pub fn state(&mut self) -> SplitView<'_, T> {
        SplitView {
            split: self,
            state: true,
        }
    }

    fn pull(&mut self) {
        self.scratch.clear();
        self.inner.receive(&mut self.scratch);
        for (from, bytes) in self.scratch.drain(..) {
            let queue = if is_state_datagram(&bytes) {
                &mut self.state_in
            } else {
                &mut self.session_in
            };
            if queue.len() >= HELD {
                queue.pop_front();
            }
            queue.push_back((from, bytes));
        }
    }
}

/// One side of a [`SplitTransport`].
#[derive(Debug)]
pub struct SplitView<'a, T> {
    split: &'a mut SplitTransport<T>,
    state: bool,
}

impl<T: Transport> Transport for SplitView<'_, T> {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        self.split.inner.send_to(peer, datagram);
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        self.split.pull();
        let queue = if self.state {
            &mut self.split.state_in
        } else {
            &mut self.split.session_in
        };
        out.extend(queue.drain(..));
    }
}
