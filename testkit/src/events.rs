//! Waiting for a socket's events in tests (with generous deadlines, never sleeps).

use std::time::{Duration, Instant};

use rtcplay::transport::native::Socket;
use rtcplay::transport::SocketEvent;

/// Events until one matches `want`, within `within`. An `Error` event on the way
/// fails the wait (unless `want` matches it); the error text says what was awaited.
pub fn try_expect_event(
    socket: &mut Socket,
    within: Duration,
    what: &str,
    mut want: impl FnMut(&SocketEvent) -> bool,
) -> Result<SocketEvent, String> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match socket.wait_event(left) {
            Some(event) if want(&event) => return Ok(event),
            Some(SocketEvent::Error(error)) => {
                return Err(format!("error while waiting for {what}: {error}"))
            }
            Some(_) => {}
            None => return Err(format!("no {what} within {within:?}")),
        }
    }
}

/// [`try_expect_event`], panicking when it fails.
pub fn expect_event(
    socket: &mut Socket,
    within: Duration,
    what: &str,
    want: impl FnMut(&SocketEvent) -> bool,
) -> SocketEvent {
    try_expect_event(socket, within, what, want).unwrap_or_else(|e| panic!("{e}"))
}
