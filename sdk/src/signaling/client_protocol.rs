//! A signaling client's side of the protocol, sans-IO: what a client sends and
//! expects on its WebSocket, for any backend (tokio-tungstenite natively, the
//! browser's `WebSocket` in a browser).
//!
//! - the first message is the `join`; the answer must be `welcome` (`pong`s before
//!   it are skipped); an `error` is a refusal; anything else is a protocol
//!   violation; a client that asked to spectate and is welcomed as a player fails
//!   (the server does not know spectators) rather than take a player's seat;
//! - once joined, every server message but `pong` is an event for the caller;
//!   undecodable ones are dropped;
//! - a `ping` every `keepalive_interval`; at each, a server silent for longer than
//!   `dead_after` counts as dead;
//! - a probe ([`ClientProtocol::probe`], when the caller has reason to doubt the
//!   connection, e.g. its peer links stalled): a `ping` at once, and a server
//!   that sends nothing within `probe_timeout` counts as dead.
//!
//! The driver hands over every text frame it reads ([`ClientProtocol::on_text`]),
//! notes other frames ([`ClientProtocol::on_other_frame`]), calls
//! [`ClientProtocol::poll`] at [`ClientProtocol::next_wakeup`], and sends what it
//! is told to.

use std::time::Duration;

use super::error::SignalingError;
use super::protocol::{ClientMessage, ServerMessage, Welcome};

/// The client's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimers {
    /// How often to send `ping` once joined.
    pub keepalive_interval: Duration,
    /// The server counts as dead when nothing arrived for this long.
    pub dead_after: Duration,
    /// After a [`probe`](ClientProtocol::probe), the server counts as dead when
    /// nothing arrived for this long (it answers a `ping` at once).
    pub probe_timeout: Duration,
}

/// What a frame from the server means for the driver.
#[derive(Debug)]
pub enum ClientStep {
    /// Nothing to do (a `pong`, a dropped message).
    Nothing,
    /// Joined: the server's `welcome`.
    Welcome(Welcome),
    /// A server event for the caller (`room_full`, `signal`, `peer_left`, ...).
    Event(ServerMessage),
    /// The join failed: close the connection and report this.
    Failed(SignalingError),
}

/// What the timers call for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTick {
    /// Nothing due.
    Nothing,
    /// Send this text frame (a `ping`).
    Send(String),
    /// The server has been silent for `dead_after`: close the connection.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `join` sent, waiting for `welcome`.
    Joining { asked_to_spectate: bool },
    /// Welcomed.
    Joined,
    /// Failed or dead: nothing more.
    Over,
}

/// One client connection's protocol state. Times are any monotonic clock's, as
/// `Duration`s since one epoch (the driver's choice).
#[derive(Debug)]
pub struct ClientProtocol {
    timers: ClientTimers,
    phase: Phase,
    last_heard: Duration,
    next_ping: Option<Duration>,
    /// A probe is out: the server must have sent something by then.
    answer_by: Option<Duration>,
}

impl ClientProtocol {
    /// A connection that has just opened at `now`; returns the state and the first
    /// text frame to send (the `join`).
    pub fn new(join: &ClientMessage, timers: ClientTimers, now: Duration) -> (Self, String) {
        let asked_to_spectate = matches!(
            join,
            ClientMessage::Join {
                spectator: true,
                ..
            }
        );
        let protocol = ClientProtocol {
            timers,
            phase: Phase::Joining { asked_to_spectate },
            last_heard: now,
            next_ping: None,
            answer_by: None,
        };
        (protocol, join.to_json())
    }

    /// Whether `welcome` has arrived.
    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// When [`poll`](Self::poll) next has something to do (`None` before joining
    /// and after the end: the driver's join timeout covers the first).
    pub fn next_wakeup(&self) -> Option<Duration> {
        match (self.next_ping, self.answer_by) {
            (Some(ping), Some(answer)) => Some(ping.min(answer)),
            (ping, answer) => ping.or(answer),
        }
    }

    /// Check now that the server is still there: returns the `ping` to send
    /// (`None` before joining, after the end, or while a probe is already out).
    /// If nothing at all arrives within `probe_timeout`, [`poll`](Self::poll)
    /// reports [`ClientTick::Dead`].
    pub fn probe(&mut self, now: Duration) -> Option<String> {
        if self.phase != Phase::Joined || self.answer_by.is_some() {
            return None;
        }
        self.answer_by = Some(now + self.timers.probe_timeout);
        Some(ClientMessage::Ping.to_json())
    }

    /// A text frame from the server.
    pub fn on_text(&mut self, now: Duration, text: &str) -> ClientStep {
        self.last_heard = now;
        self.answer_by = None;
        let decoded = ServerMessage::from_json(text);
        match self.phase {
            Phase::Over => ClientStep::Nothing,
            Phase::Joined => match decoded {
                Ok(ServerMessage::Pong) => ClientStep::Nothing,
                Ok(event) => ClientStep::Event(event),
                Err(e) => {
                    tracing::warn!("signaling: dropped undecodable server message: {e}");
                    ClientStep::Nothing
                }
            },
            Phase::Joining { asked_to_spectate } => {
                let step = match decoded {
                    Ok(ServerMessage::Pong) => return ClientStep::Nothing,
                    Ok(ServerMessage::Welcome(welcome)) => {
                        if asked_to_spectate && !welcome.spectator {
                            ClientStep::Failed(SignalingError::Protocol(
                                "the signaling server does not support spectators".into(),
                            ))
                        } else {
                            self.phase = Phase::Joined;
                            self.next_ping = Some(now + self.keepalive_interval());
                            return ClientStep::Welcome(welcome);
                        }
                    }
                    Ok(ServerMessage::Error { code, message }) => {
                        ClientStep::Failed(SignalingError::Refused { code, message })
                    }
                    Ok(other) => ClientStep::Failed(SignalingError::Protocol(format!(
                        "expected welcome, got {other:?}"
                    ))),
                    Err(e) => ClientStep::Failed(SignalingError::Protocol(e.to_string())),
                };
                self.phase = Phase::Over;
                step
            }
        }
    }

    /// Any other frame from the server (binary, ping, pong): the server is alive.
    pub fn on_other_frame(&mut self, now: Duration) {
        self.last_heard = now;
        self.answer_by = None;
    }

    /// Keepalive and liveness, once joined.
    pub fn poll(&mut self, now: Duration) -> ClientTick {
        if self.phase == Phase::Joined && self.answer_by.is_some_and(|t| now >= t) {
            tracing::warn!(
                "signaling: no answer to a probe within {:?}, closing",
                self.timers.probe_timeout
            );
            self.phase = Phase::Over;
            self.next_ping = None;
            self.answer_by = None;
            return ClientTick::Dead;
        }
        if self.phase != Phase::Joined || self.next_ping.is_none_or(|t| now < t) {
            return ClientTick::Nothing;
        }
        if now.saturating_sub(self.last_heard) > self.timers.dead_after {
            tracing::warn!(
                "signaling: server silent for {:?}, closing",
                self.timers.dead_after
            );
            self.phase = Phase::Over;
            self.next_ping = None;
            return ClientTick::Dead;
        }
        self.next_ping = Some(now + self.keepalive_interval());
        ClientTick::Send(ClientMessage::Ping.to_json())
    }

    fn keepalive_interval(&self) -> Duration {
        self.timers
            .keepalive_interval
            .max(Duration::from_millis(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::protocol::{ErrorCode, PeerId};

    const S: Duration = Duration::from_secs(1);

    fn timers() -> ClientTimers {
        ClientTimers {
            keepalive_interval: 10 * S,
            dead_after: 30 * S,
            probe_timeout: 3 * S,
        }
    }

    fn welcome_json(spectator: bool) -> String {
        ServerMessage::Welcome(Welcome {
            version: crate::signaling::PROTOCOL_VERSION,
            peer_id: PeerId(3),
            room: "duel".into(),
            players: 2,
            ice_servers: Vec::new(),
            spectator,
            rejoin_token: None,
        })
        .to_json()
    }

    #[test]
    fn joins_skipping_pongs_then_forwards_events_and_pings() {
        let join = ClientMessage::join("duel", 2);
        let (mut client, first) = ClientProtocol::new(&join, timers(), Duration::ZERO);
        assert_eq!(first, join.to_json());
        assert!(matches!(
            client.on_text(S, &ServerMessage::Pong.to_json()),
            ClientStep::Nothing
        ));
        assert_eq!(
            client.poll(20 * S),
            ClientTick::Nothing,
            "no pings before welcome"
        );
        let ClientStep::Welcome(welcome) = client.on_text(S, &welcome_json(false)) else {
            panic!("welcome")
        };
        assert_eq!(welcome.peer_id, PeerId(3));
        assert!(client.is_joined());
        let left = ServerMessage::PeerLeft { peer_id: PeerId(1) };
        assert!(
            matches!(client.on_text(2 * S, &left.to_json()), ClientStep::Event(e) if e == left)
        );
        assert!(matches!(
            client.on_text(2 * S, "{garbage"),
            ClientStep::Nothing
        ));
        // A ping every keepalive interval after the welcome.
        assert_eq!(client.next_wakeup(), Some(11 * S));
        assert_eq!(client.poll(10 * S), ClientTick::Nothing);
        assert_eq!(
            client.poll(11 * S),
            ClientTick::Send(ClientMessage::Ping.to_json())
        );
        assert_eq!(client.next_wakeup(), Some(21 * S));
    }

    #[test]
    fn a_silent_server_is_dead_at_a_keepalive_tick() {
        let (mut client, _) =
            ClientProtocol::new(&ClientMessage::join("duel", 2), timers(), Duration::ZERO);
        client.on_text(Duration::ZERO, &welcome_json(false));
        let mut t = Duration::ZERO;
        loop {
            t += S;
            match client.poll(t) {
                ClientTick::Dead => break,
                ClientTick::Send(_) | ClientTick::Nothing => assert!(t < 60 * S),
            }
        }
        // Dead at the first tick past 30 s of silence (ticks every 10 s).
        assert_eq!(t, 40 * S);
        assert_eq!(client.poll(100 * S), ClientTick::Nothing);
        // Other frames keep it alive.
        let (mut client, _) =
            ClientProtocol::new(&ClientMessage::join("duel", 2), timers(), Duration::ZERO);
        client.on_text(Duration::ZERO, &welcome_json(false));
        for t in 1..100 {
            client.on_other_frame(t * S);
            assert_ne!(client.poll(t * S), ClientTick::Dead);
        }
    }

    #[test]
    fn a_probe_wants_an_answer_within_its_timeout() {
        let (mut client, _) =
            ClientProtocol::new(&ClientMessage::join("duel", 2), timers(), Duration::ZERO);
        assert_eq!(client.probe(S), None, "no probe before the welcome");
        client.on_text(Duration::ZERO, &welcome_json(false));
        // Answered: alive, and a later probe may go out again.
        assert_eq!(client.probe(S), Some(ClientMessage::Ping.to_json()));
        assert_eq!(client.probe(S), None, "one probe at a time");
        assert_eq!(client.next_wakeup(), Some(4 * S));
        client.on_text(2 * S, &ServerMessage::Pong.to_json());
        assert_eq!(client.poll(5 * S), ClientTick::Nothing);
        assert_eq!(client.next_wakeup(), Some(10 * S), "back to the keepalive");
        // Unanswered: dead at the probe's deadline, long before `dead_after`.
        assert!(client.probe(6 * S).is_some());
        assert_eq!(client.poll(8 * S), ClientTick::Nothing);
        assert_eq!(client.poll(9 * S), ClientTick::Dead);
        assert_eq!(client.poll(10 * S), ClientTick::Nothing);
        assert_eq!(client.probe(10 * S), None, "nothing after the end");
    }

    #[test]
    fn refusals_violations_and_a_server_without_spectators_fail_the_join() {
        let join = ClientMessage::join("duel", 2);
        let refused = ServerMessage::Error {
            code: ErrorCode::RoomFull,
            message: "full".into(),
        };
        let cases: [(&ClientMessage, String); 3] = [
            (&join, refused.to_json()),
            (
                &join,
                ServerMessage::PeerLeft { peer_id: PeerId(1) }.to_json(),
            ),
            (&join, "not json".into()),
        ];
        for (join, text) in cases {
            let (mut client, _) = ClientProtocol::new(join, timers(), Duration::ZERO);
            assert!(
                matches!(client.on_text(S, &text), ClientStep::Failed(_)),
                "{text}"
            );
            assert!(!client.is_joined());
            // Over: later frames do nothing.
            assert!(matches!(
                client.on_text(S, &welcome_json(false)),
                ClientStep::Nothing
            ));
        }
        let (mut client, _) =
            ClientProtocol::new(&ClientMessage::join("duel", 2), timers(), Duration::ZERO);
        let ClientStep::Failed(SignalingError::Refused { code, .. }) =
            client.on_text(S, &refused.to_json())
        else {
            panic!("refused")
        };
        assert_eq!(code, ErrorCode::RoomFull);
        // Asked to spectate, welcomed as a player: fail rather than take a seat.
        let mut spectate = ClientMessage::join("duel", 2);
        if let ClientMessage::Join { spectator, .. } = &mut spectate {
            *spectator = true;
        }
        let (mut client, _) = ClientProtocol::new(&spectate, timers(), Duration::ZERO);
        assert!(matches!(
            client.on_text(S, &welcome_json(false)),
            ClientStep::Failed(SignalingError::Protocol(_))
        ));
        let (mut client, _) = ClientProtocol::new(&spectate, timers(), Duration::ZERO);
        assert!(matches!(
            client.on_text(S, &welcome_json(true)),
            ClientStep::Welcome(_)
        ));
    }
}
