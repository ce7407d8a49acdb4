//! The TCP stream under each WebSocket connection, metered: it throttles how fast
//! a client's bytes are read, and it counts the bytes of messages that have not
//! been completed yet against a budget shared by the whole server.
//!
//! tungstenite keeps the frames of an unfinished (fragmented) message in memory
//! until its last frame arrives; the byte rate also bounds frames that carry no
//! message at all (empty continuation frames), which the message rate cannot see.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::signaling::rate_limit::TokenBucket;

/// Bytes of unfinished input any connection may hold even when the server-wide
/// budget is used up: ordinary signaling messages always get through.
pub(crate) const UNFINISHED_ALLOWANCE: usize = 4 * 1024;

/// Once out of byte tokens, wait until this many are back before reading again
/// (fewer, larger reads instead of one wake-up per byte).
const THROTTLE_CHUNK: u64 = 1024;

/// Bytes of a client's control frame (ping, pong) on the wire: a 2-byte header,
/// the 4-byte mask every client frame carries, and the payload (≤ 125 bytes).
pub(crate) fn control_frame_len(payload: usize) -> usize {
    payload + 6
}

/// The server-wide count of unfinished input, with its limit.
#[derive(Debug)]
pub(crate) struct UnfinishedBudget {
    held: AtomicUsize,
    limit: usize,
}

impl UnfinishedBudget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes held by all connections now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// A client's TCP stream with a byte-rate throttle and unfinished-input accounting.
#[derive(Debug)]
pub(crate) struct MeteredStream {
    tcp: TcpStream,
    bytes: TokenBucket,
    throttle: Option<Pin<Box<Sleep>>>,
    /// Bytes read since the last complete message (minus control frames).
    unfinished: usize,
    budget: Arc<UnfinishedBudget>,
    /// A read was refused because the server-wide budget was used up.
    over_budget: bool,
}

impl MeteredStream {
    pub(crate) fn new(tcp: TcpStream, bytes: TokenBucket, budget: Arc<UnfinishedBudget>) -> Self {
        Self {
            tcp,
            bytes,
            throttle: None,
            unfinished: 0,
            budget,
            over_budget: false,
        }
    }

    /// The plain stream (for the final drain after a close).
    pub(crate) fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// A complete data message arrived: nothing read so far is unfinished.
    pub(crate) fn message_complete(&mut self) {
        self.release(self.unfinished);
    }

    /// A complete control frame arrived: its bytes are not unfinished input.
    pub(crate) fn control_frame(&mut self, payload: usize) {
        self.release(control_frame_len(payload).min(self.unfinished));
    }

    /// Bytes of unfinished input this connection holds.
    pub(crate) fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// Whether the connection was refused input because the server-wide budget
    /// for unfinished input was used up.
    pub(crate) fn over_budget(&self) -> bool {
        self.over_budget
    }

    fn release(&mut self, n: usize) {
        self.unfinished -= n;
        self.budget.held.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        self.release(self.unfinished);
    }
}

impl AsyncRead for MeteredStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.over_budget {
            return Poll::Ready(Err(io::Error::other("unfinished-input budget used up")));
        }
        let allowed = loop {
            if let Some(sleep) = this.throttle.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.throttle = None;
            }
            let now = Instant::now();
            let allowed = this.bytes.available(now);
            if allowed > 0 {
                break allowed;
            }
            let wait = this.bytes.time_until(THROTTLE_CHUNK);
            this.throttle = Some(Box::pin(tokio::time::sleep_until(now + wait)));
        };
        let room = buf
            .remaining()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let window = buf.initialize_unfilled_to(room);
        let mut limited = ReadBuf::new(window);
        ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut limited))?;
        let got = limited.filled().len();
        buf.advance(got);
        this.bytes.take(got as u64);
        this.unfinished += got;
        let held = this.budget.held.fetch_add(got, Ordering::Relaxed) + got;
        if held > this.budget.limit && this.unfinished > UNFINISHED_ALLOWANCE {
            this.over_budget = true;
            return Poll::Ready(Err(io::Error::other("unfinished-input budget used up")));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MeteredStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
