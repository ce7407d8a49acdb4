//! The protocol of one link, sans-IO: what every backend does on a connection's two
//! data channels once WebRTC has opened them.
//!
//! - the hello/ack handshake: on each open channel say `hello` every few ms until
//!   it is acknowledged; answer every `hello` with a `hello_ack` on the same channel;
//!   the link is connected when our hellos are acknowledged on both channels, and
//!   fails if that does not happen before the handshake deadline;
//! - liveness: answer every `ping` with a `pong`; once connected, send a ping every
//!   `ping_interval` (RTT, loss, and a keepalive for the other side); a link from
//!   which nothing arrived for `silence_timeout` has stalled (the mesh plan
//!   restarts it or gives the peer up);
//! - goodbyes: `bye` on either channel ends the link.
//!
//! A driver (the native tokio tasks, the browser's callbacks) feeds in what happened
//! with the time ([`LinkProtocol::channel_open`], [`LinkProtocol::message`],
//! [`LinkProtocol::poll`]) and carries out the [`LinkAction`]s it gets back. No
//! clock, no sockets, no tasks: the rules are unit-tested on simulated time.

use std::collections::VecDeque;
use std::time::Duration;

use super::wire::WireFrame;
use super::{Channel, DisconnectReason, SocketConfig};

/// How often an unanswered hello is repeated.
pub const HELLO_RETRY: Duration = Duration::from_millis(5);

/// When the first repeat of a hello goes out. The first hello on a fresh channel is
/// often lost (it can arrive in the same burst as the SCTP handshake's last packet,
/// before the other side has opened its channel), and the other side is ready
/// about a millisecond later.
pub const FIRST_HELLO_RETRY: Duration = Duration::from_millis(1);

/// How many pings the loss estimate looks back over.
const PING_WINDOW: usize = 16;

/// The timers of a link (from [`SocketConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTimers {
    /// Repeat an unanswered hello this long after the first one...
    pub first_hello_retry: Duration,
    /// ...and then this often.
    pub hello_retry: Duration,
    /// Connected within this long after the attempt started, or failed.
    pub handshake_timeout: Duration,
    /// Ping (and keepalive) period once connected.
    pub ping_interval: Duration,
    /// Stalled after this long without hearing anything.
    pub silence_timeout: Duration,
}

impl LinkTimers {
    /// The socket's timers, with `handshake_timeout` for this attempt.
    pub fn from_config(config: &SocketConfig, handshake_timeout: Duration) -> Self {
        LinkTimers {
            first_hello_retry: FIRST_HELLO_RETRY,
            hello_retry: HELLO_RETRY,
            handshake_timeout,
            ping_interval: config.ping_interval,
            silence_timeout: config.restart_after,
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// Send this encoded frame on this channel (best effort; a full buffer may drop
    /// it: every control frame is repeated or answered again).
    Send(Channel, Vec<u8>),
    /// The peer's first game message arrived: it has finished its handshake, so
    /// messages to it can go now (before our own `Connected`).
    PeerReady,
    /// Our hellos are acknowledged on both channels: the link is connected.
    Connected,
    /// Both sides have proven both channels (our hellos acknowledged, the remote's
    /// seen): the connection setup is over (the native driver ends its setup boost).
    SetupDone,
    /// A connected link ended.
    Disconnected(DisconnectReason),
    /// The link never connected.
    Failed(LinkFailure),
}

/// Why a link never connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFailure {
    /// The handshake did not finish before the deadline.
    HandshakeTimeout,
    /// The remote said goodbye (or closed a channel) during setup.
    ClosedDuringSetup,
}

/// What an arriving message was, for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A game payload: hand it to the game.
    Data(&'a [u8]),
    /// A control frame, handled here.
    Control,
    /// Not a valid frame: dropped (count it).
    Malformed,
    /// The link has ended: ignored.
    Ignored,
}

/// Handshake progress on one channel.
#[derive(Debug, Default, Clone, Copy)]
struct ChannelHandshake {
    open: bool,
    acked: bool,
    remote_hello: bool,
    next_hello: Option<Duration>,
}

/// RTT and loss from pings on the unreliable channel.
#[derive(Debug, Default)]
struct Pings {
    next_seq: u32,
    /// Recent pings: (seq, sent at µs, answered).
    sent: VecDeque<(u32, u64, bool)>,
    /// Smoothed RTT (RFC 6298 style, alpha 1/8).
    srtt: Option<Duration>,
    last: Option<Duration>,
}

impl Pings {
    fn on_send(&mut self, sent_us: u64) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        if self.sent.len() == PING_WINDOW {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, sent_us, false));
        seq
    }

    /// Unknown or repeated pongs change nothing.
    fn on_pong(&mut self, seq: u32, sent_us: u64, now_us: u64) {
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
    fn loss(&self, now_us: u64, due_after: Duration) -> f32 {
        let due_us = micros(due_after);
        let (mut due, mut lost) = (0u32, 0u32);
        for &(_, sent_us, answered) in &self.sent {
            if now_us.saturating_sub(sent_us) >= due_us {
                due += 1;
                lost += u32::from(!answered);
            }
        }
        if due == 0 {
            0.0
        } else {
            lost as f32 / due as f32
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn index(channel: Channel) -> usize {
    match channel {
        Channel::Unreliable => 0,
        Channel::Reliable => 1,
    }
}

const CHANNELS: [Channel; 2] = [Channel::Unreliable, Channel::Reliable];

/// One link's protocol state. Times are any monotonic clock's, as `Duration`s since
/// one epoch (the driver's choice).
#[derive(Debug)]
pub struct LinkProtocol {
    timers: LinkTimers,
    started: Duration,
    channels: [ChannelHandshake; 2],
    connected: bool,
    peer_ready: bool,
    setup_done: bool,
    ended: bool,
    last_heard: Option<Duration>,
    next_ping: Option<Duration>,
    pings: Pings,
}

impl LinkProtocol {
    /// A link whose connection attempt starts at `now`.
    pub fn new(timers: LinkTimers, now: Duration) -> Self {
        LinkProtocol {
            timers,
            started: now,
            channels: [ChannelHandshake::default(); 2],
            connected: false,
            peer_ready: false,
            setup_done: false,
            ended: false,
            last_heard: None,
            next_ping: None,
            pings: Pings::default(),
        }
    }

    /// Whether our hellos are acknowledged on both channels.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether the link has ended (disconnected or failed); it then does nothing.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Both sides have proven both channels (our hellos acknowledged, the remote's
    /// seen): the connection setup is over.
    pub fn handshake_complete(&self) -> bool {
        self.channels.iter().all(|c| c.acked && c.remote_hello)
    }

    /// Smoothed RTT of the pings, and the latest sample.
    pub fn rtt(&self) -> (Option<Duration>, Option<Duration>) {
        (self.pings.srtt, self.pings.last)
    }

    /// Fraction (0..=1) of recent pings unanswered at `now` (a ping counts as lost
    /// once unanswered for 4× the RTT, at least 1 s).
    pub fn loss(&self, now: Duration) -> f32 {
        let grace = self.pings.srtt.map_or(Duration::from_secs(1), |srtt| {
            (srtt * 4).max(Duration::from_secs(1))
        });
        self.pings.loss(micros(now), grace)
    }

    /// How long nothing has arrived (since the attempt started, if nothing ever did).
    pub fn silence(&self, now: Duration) -> Duration {
        now.saturating_sub(self.last_heard.unwrap_or(self.started))
    }

    /// The earliest time [`poll`](Self::poll) has something to do.
    pub fn next_wakeup(&self) -> Option<Duration> {
        if self.ended {
            return None;
        }
        let hellos = self.channels.iter().filter_map(|c| c.next_hello);
        let deadline = if self.connected {
            None
        } else {
            Some(self.started.saturating_add(self.timers.handshake_timeout))
        };
        hellos.chain(deadline).chain(self.next_ping).min()
    }

    /// A channel opened: say hello on it now.
    pub fn channel_open(&mut self, now: Duration, channel: Channel, out: &mut Vec<LinkAction>) {
        if self.ended {
            return;
        }
        let state = &mut self.channels[index(channel)];
        state.open = true;
        if !state.acked {
            state.next_hello = Some(now + self.timers.first_hello_retry);
            out.push(LinkAction::Send(channel, WireFrame::Hello.encode()));
        }
    }

    /// A channel closed under us (not by our own choice).
    pub fn channel_closed(&mut self, out: &mut Vec<LinkAction>) {
        // Without a goodbye first: the connection went away underneath (the other
        // side may have replaced it while we could not hear), not a peer leaving.
        self.end_by_remote(DisconnectReason::ConnectionFailed, out);
    }

    /// A message arrived on `channel`.
    pub fn message<'a>(
        &mut self,
        now: Duration,
        channel: Channel,
        bytes: &'a [u8],
        out: &mut Vec<LinkAction>,
    ) -> Incoming<'a> {
        if self.ended {
            return Incoming::Ignored;
        }
        self.last_heard = Some(now);
        let Some(frame) = WireFrame::decode(bytes) else {
            return Incoming::Malformed;
        };
        match frame {
            WireFrame::Data(payload) => {
                if !self.peer_ready {
                    self.peer_ready = true;
                    out.push(LinkAction::PeerReady);
                }
                return Incoming::Data(payload);
            }
            WireFrame::Hello => {
                self.channels[index(channel)].remote_hello = true;
                out.push(LinkAction::Send(channel, WireFrame::HelloAck.encode()));
                self.check_setup_done(out);
            }
            WireFrame::HelloAck => {
                let state = &mut self.channels[index(channel)];
                state.acked = true;
                state.next_hello = None;
                if !self.connected && self.channels.iter().all(|c| c.acked) {
                    self.connected = true;
                    // The first ping (a keepalive too) one interval from now.
                    self.next_ping = Some(now.saturating_add(self.timers.ping_interval));
                    if !self.peer_ready {
                        self.peer_ready = true;
                        out.push(LinkAction::PeerReady);
                    }
                    out.push(LinkAction::Connected);
                }
                self.check_setup_done(out);
            }
            WireFrame::Ping { seq, sent_us } => {
                out.push(LinkAction::Send(
                    channel,
                    WireFrame::Pong { seq, sent_us }.encode(),
                ));
            }
            WireFrame::Pong { seq, sent_us } => self.pings.on_pong(seq, sent_us, micros(now)),
            WireFrame::Bye => self.end_by_remote(DisconnectReason::Closed, out),
        }
        Incoming::Control
    }

    /// Timers: repeat hellos, enforce the handshake deadline, ping, detect silence.
    pub fn poll(&mut self, now: Duration, out: &mut Vec<LinkAction>) {
        if self.ended {
            return;
        }
        if !self.connected && now >= self.started.saturating_add(self.timers.handshake_timeout) {
            self.ended = true;
            out.push(LinkAction::Failed(LinkFailure::HandshakeTimeout));
            return;
        }
        for channel in CHANNELS {
            let state = &mut self.channels[index(channel)];
            if state.open && !state.acked && state.next_hello.is_some_and(|t| now >= t) {
                state.next_hello = Some(now + self.timers.hello_retry);
                out.push(LinkAction::Send(channel, WireFrame::Hello.encode()));
            }
        }
        if self.next_ping.is_some_and(|t| now >= t) {
            if self.silence(now) > self.timers.silence_timeout {
                self.ended = true;
                out.push(LinkAction::Disconnected(DisconnectReason::Timeout));
                return;
            }
            self.next_ping = Some(now.saturating_add(self.timers.ping_interval));
            let sent_us = micros(now);
            let seq = self.pings.on_send(sent_us);
            out.push(LinkAction::Send(
                Channel::Unreliable,
                WireFrame::Ping { seq, sent_us }.encode(),
            ));
        }
    }

    /// We are leaving: the goodbye to send on both channels (if we were connected),
    /// after which the link has ended.
    pub fn leave(&mut self, out: &mut Vec<LinkAction>) {
        if !self.ended && self.connected {
            for channel in CHANNELS {
                out.push(LinkAction::Send(channel, WireFrame::Bye.encode()));
            }
        }
        self.ended = true;
    }

    fn check_setup_done(&mut self, out: &mut Vec<LinkAction>) {
        if !self.setup_done && self.handshake_complete() {
            self.setup_done = true;
            out.push(LinkAction::SetupDone);
        }
    }

    fn end_by_remote(&mut self, reason: DisconnectReason, out: &mut Vec<LinkAction>) {
        if self.ended {
            return;
        }
        self.ended = true;
        out.push(if self.connected {
            LinkAction::Disconnected(reason)
        } else {
            LinkAction::Failed(LinkFailure::ClosedDuringSetup)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timers() -> LinkTimers {
        LinkTimers {
            first_hello_retry: MS,
            hello_retry: 5 * MS,
            handshake_timeout: 1000 * MS,
            ping_interval: 250 * MS,
            silence_timeout: 3000 * MS,
        }
    }

    fn sends(out: &[LinkAction]) -> Vec<(Channel, Vec<u8>)> {
        out.iter()
            .filter_map(|a| match a {
                LinkAction::Send(c, b) => Some((*c, b.clone())),
                _ => None,
            })
            .collect()
    }

    /// Carry every `Send` in `out` (one side's actions) to `to`, whose own actions
    /// go to `back`; returns the other actions of `out` (the sender's events).
    fn deliver(
        now: Duration,
        out: &mut Vec<LinkAction>,
        to: &mut LinkProtocol,
        back: &mut Vec<LinkAction>,
    ) -> Vec<LinkAction> {
        let mut events = Vec::new();
        for action in std::mem::take(out) {
            match action {
                LinkAction::Send(channel, bytes) => {
                    to.message(now, channel, &bytes, back);
                }
                other => events.push(other),
            }
        }
        events
    }

    #[test]
    fn two_sides_connect_by_hello_and_ack_on_both_channels() {
        let mut a = LinkProtocol::new(timers(), Duration::ZERO);
        let mut b = LinkProtocol::new(timers(), Duration::ZERO);
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        for channel in CHANNELS {
            a.channel_open(MS, channel, &mut out_a);
            b.channel_open(MS, channel, &mut out_b);
        }
        assert_eq!(sends(&out_a).len(), 2, "a hello on each open channel");
        let (mut events_a, mut events_b) = (Vec::new(), Vec::new());
        while !out_a.is_empty() || !out_b.is_empty() {
            events_a.extend(deliver(2 * MS, &mut out_a, &mut b, &mut out_b));
            events_b.extend(deliver(2 * MS, &mut out_b, &mut a, &mut out_a));
        }
        for events in [&events_a, &events_b] {
            for once in [
                LinkAction::PeerReady,
                LinkAction::Connected,
                LinkAction::SetupDone,
            ] {
                assert_eq!(
                    events.iter().filter(|e| **e == once).count(),
                    1,
                    "{events:?}"
                );
            }
            assert_eq!(events.len(), 3, "{events:?}");
        }
        assert!(a.is_connected() && b.is_connected());
        assert!(a.handshake_complete() && b.handshake_complete());
        // Connected: the next thing to do is the first ping, one interval later.
        assert_eq!(a.next_wakeup(), Some(252 * MS));
    }

    #[test]
    fn unanswered_hellos_repeat_until_acked_and_the_deadline_fails_the_link() {
        let mut a = LinkProtocol::new(timers(), Duration::ZERO);
        let mut out = Vec::new();
        a.channel_open(Duration::ZERO, Channel::Reliable, &mut out);
        a.poll(MS / 2, &mut out);
        assert_eq!(sends(&out).len(), 1, "not yet due");
        // Repeated after 1 ms, then every 5 ms.
        a.poll(MS, &mut out);
        a.poll(5 * MS, &mut out);
        assert_eq!(sends(&out).len(), 2, "not yet due");
        a.poll(6 * MS, &mut out);
        a.poll(11 * MS, &mut out);
        assert_eq!(sends(&out).len(), 4);
        assert!(sends(&out)
            .iter()
            .all(|(c, b)| *c == Channel::Reliable && b == &WireFrame::Hello.encode()));
        // Acknowledged: no more hellos on that channel.
        out.clear();
        a.message(
            11 * MS,
            Channel::Reliable,
            &WireFrame::HelloAck.encode(),
            &mut out,
        );
        a.poll(20 * MS, &mut out);
        assert!(sends(&out).is_empty(), "{out:?}");
        // The unreliable channel never opened: no connection, and at the deadline
        // the link fails, once.
        a.poll(999 * MS, &mut out);
        assert!(out.is_empty());
        a.poll(1000 * MS, &mut out);
        assert_eq!(out, vec![LinkAction::Failed(LinkFailure::HandshakeTimeout)]);
        out.clear();
        a.poll(2000 * MS, &mut out);
        assert!(out.is_empty() && a.has_ended() && a.next_wakeup().is_none());
    }

    fn connected() -> LinkProtocol {
        let mut a = LinkProtocol::new(timers(), Duration::ZERO);
        let mut out = Vec::new();
        for channel in CHANNELS {
            a.channel_open(Duration::ZERO, channel, &mut out);
            a.message(1 * MS, channel, &WireFrame::HelloAck.encode(), &mut out);
        }
        assert!(out.contains(&LinkAction::Connected));
        assert_eq!(
            out.iter().filter(|a| **a == LinkAction::PeerReady).count(),
            1,
            "ready once, with Connected"
        );
        a
    }

    #[test]
    fn every_hello_and_ping_is_answered_on_its_channel() {
        let mut a = connected();
        let mut out = Vec::new();
        for _ in 0..2 {
            a.message(
                5 * MS,
                Channel::Reliable,
                &WireFrame::Hello.encode(),
                &mut out,
            );
        }
        let ping = WireFrame::Ping {
            seq: 7,
            sent_us: 99,
        }
        .encode();
        a.message(6 * MS, Channel::Unreliable, &ping, &mut out);
        assert_eq!(
            sends(&out),
            vec![
                (Channel::Reliable, WireFrame::HelloAck.encode()),
                (Channel::Reliable, WireFrame::HelloAck.encode()),
                (
                    Channel::Unreliable,
                    WireFrame::Pong {
                        seq: 7,
                        sent_us: 99
                    }
                    .encode()
                ),
            ]
        );
    }

    #[test]
    fn pings_measure_rtt_and_silence_disconnects() {
        let mut a = connected();
        let mut out = Vec::new();
        // First ping one interval after connecting.
        a.poll(250 * MS, &mut out);
        assert!(out.is_empty());
        a.poll(251 * MS, &mut out);
        let [(Channel::Unreliable, ping)] = &sends(&out)[..] else {
            panic!("{out:?}")
        };
        let Some(WireFrame::Ping { seq, sent_us }) = WireFrame::decode(ping) else {
            panic!()
        };
        out.clear();
        a.message(
            261 * MS,
            Channel::Unreliable,
            &WireFrame::Pong { seq, sent_us }.encode(),
            &mut out,
        );
        assert_eq!(a.rtt(), (Some(10 * MS), Some(10 * MS)));
        // An unknown or repeated pong changes nothing.
        a.message(
            300 * MS,
            Channel::Unreliable,
            &WireFrame::Pong { seq, sent_us }.encode(),
            &mut out,
        );
        assert_eq!(a.rtt().1, Some(10 * MS));
        // Silence: pings go on every interval; past the timeout the link is gone.
        let mut t = 261 * MS;
        while !a.has_ended() {
            t += 50 * MS;
            a.poll(t, &mut out);
        }
        assert_eq!(
            out.last(),
            Some(&LinkAction::Disconnected(DisconnectReason::Timeout))
        );
        // Detected within one ping interval of the bound.
        assert!(t - 261 * MS <= 3000 * MS + 250 * MS + 50 * MS, "{t:?}");
        // Every ping but the first is unanswered.
        assert!(a.loss(t) > 0.8);
    }

    #[test]
    fn a_game_message_makes_the_peer_ready_before_connected() {
        let mut a = LinkProtocol::new(timers(), Duration::ZERO);
        let mut out = Vec::new();
        a.channel_open(Duration::ZERO, Channel::Reliable, &mut out);
        out.clear();
        let data = [0u8, 42, 43];
        assert_eq!(
            a.message(1 * MS, Channel::Reliable, &data, &mut out),
            Incoming::Data(&[42, 43])
        );
        a.message(2 * MS, Channel::Reliable, &data, &mut out);
        assert_eq!(out, vec![LinkAction::PeerReady], "once");
        assert!(!a.is_connected());
    }

    #[test]
    fn goodbyes_and_garbage() {
        let mut a = connected();
        let mut out = Vec::new();
        assert_eq!(
            a.message(5 * MS, Channel::Reliable, &[], &mut out),
            Incoming::Malformed
        );
        assert_eq!(
            a.message(5 * MS, Channel::Reliable, &[99, 1], &mut out),
            Incoming::Malformed
        );
        assert!(out.is_empty() && !a.has_ended());
        a.message(
            6 * MS,
            Channel::Unreliable,
            &WireFrame::Bye.encode(),
            &mut out,
        );
        assert_eq!(
            out,
            vec![LinkAction::Disconnected(DisconnectReason::Closed)]
        );
        // Ended: a second bye, data or timers do nothing.
        out.clear();
        assert_eq!(
            a.message(
                7 * MS,
                Channel::Reliable,
                &WireFrame::Bye.encode(),
                &mut out
            ),
            Incoming::Ignored
        );
        a.poll(10_000 * MS, &mut out);
        assert!(out.is_empty());

        // During setup a bye is a failure; leaving sends bye only when connected.
        let mut b = LinkProtocol::new(timers(), Duration::ZERO);
        b.channel_closed(&mut out);
        assert_eq!(
            out,
            vec![LinkAction::Failed(LinkFailure::ClosedDuringSetup)]
        );
        out.clear();
        let mut c = connected();
        c.leave(&mut out);
        assert_eq!(
            sends(&out),
            vec![
                (Channel::Unreliable, WireFrame::Bye.encode()),
                (Channel::Reliable, WireFrame::Bye.encode()),
            ]
        );
        assert!(c.has_ended());
    }
}
