//! The spectator session: follows a host's confirmed inputs, never predicts, and
//! catches up when it falls behind.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Duration;

use super::absence::Absences;
use super::builder::{PlayerType, SessionConfig};
use super::input_queue::InputQueue;
use super::p2p::count_decode_error;
use super::peer::{ms16, RemotePeer, Role};
use super::protocol::Datagram;
use super::replay::{Recording, ReplayHeader};
use super::{
    decode_input, encode_input, DropCounters, Frame, Input, InputStatus, PeerStats, Request,
    SessionError, SessionEvent, SessionStats,
};
use crate::datagram::{PeerId, Transport};

/// Watches a match through its host: receives every player's confirmed inputs and
/// asks the game only to advance (no saves, no rollbacks).
pub struct SpectatorSession<I> {
    config: SessionConfig,
    host: RemotePeer,
    queues: Vec<InputQueue>,
    absences: Vec<Absences>,
    default_input: Vec<u8>,
    current_frame: Frame,
    running: bool,
    running_since: Duration,
    events: VecDeque<SessionEvent>,
    drops: DropCounters,
    recv: Vec<(PeerId, Vec<u8>)>,
    out: Vec<u8>,
    recording: Option<Recording>,
    _input: PhantomData<fn() -> I>,
}

impl<I: Input> SpectatorSession<I> {
    pub(crate) fn new(config: SessionConfig, host: PeerId) -> Self {
        let n = config.num_players;
        SpectatorSession {
            host: RemotePeer::new(host, Role::Player((0..n).collect())),
            queues: vec![InputQueue::default(); n],
            absences: vec![Absences::default(); n],
            default_input: encode_input(&I::default()).unwrap_or_default(),
            current_frame: 0,
            running: false,
            running_since: Duration::ZERO,
            events: VecDeque::new(),
            drops: DropCounters::default(),
            recv: Vec::new(),
            out: Vec::new(),
            recording: None,
            config,
            _input: PhantomData,
        }
    }

    /// The frame the next advance simulates.
    pub fn current_frame(&self) -> Frame {
        self.current_frame
    }

    /// Whether synchronization with the host is done.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The session's configuration (tick rate, players, ...).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The host this spectator follows.
    pub fn host(&self) -> PeerId {
        self.host.id
    }

    /// How many frames the host is ahead of this spectator (by its last report).
    pub fn frames_behind_host(&self) -> u32 {
        self.host
            .remote_frame
            .map_or(0, |f| f.saturating_sub(self.current_frame))
    }

    /// Network statistics of the host link.
    pub fn host_stats(&self) -> PeerStats {
        let [dout, bout, din, bin] = self.host.traffic.per_sec;
        PeerStats {
            rtt: self.host.rtt.rtt(),
            jitter: self.host.rtt.jitter(),
            datagrams_out_per_sec: dout,
            bytes_out_per_sec: bout,
            datagrams_in_per_sec: din,
            bytes_in_per_sec: bin,
            ..PeerStats::default()
        }
    }

    /// Totals: frames advanced and the traffic with the host (a spectator never
    /// rolls back or compares checksums).
    pub fn stats(&self) -> SessionStats {
        let traffic = &self.host.traffic;
        SessionStats {
            frames_advanced: u64::from(self.current_frame),
            datagrams_sent: traffic.datagrams_out,
            bytes_sent: traffic.bytes_out,
            datagrams_received: traffic.datagrams_in,
            ..SessionStats::default()
        }
    }

    /// Datagrams dropped on receipt, by reason.
    pub fn drop_counters(&self) -> DropCounters {
        self.drops
    }

    /// Drain pending events.
    pub fn events(&mut self) -> impl Iterator<Item = SessionEvent> + '_ {
        self.events.drain(..)
    }

    /// Receive from the host, detect its silence, and keep the link alive.
    pub fn poll(&mut self, now: Duration, net: &mut (impl Transport + ?Sized)) {
        self.recv.clear();
        net.receive(&mut self.recv);
        let received = std::mem::take(&mut self.recv);
        for (from, bytes) in &received {
            self.handle_datagram(now, *from, bytes);
        }
        self.recv = received;
        if self.running && !self.host.disconnected {
            let silence = self.host.silence(now, self.running_since);
            if silence >= self.config.disconnect_timeout {
                self.host.disconnected = true;
                self.events.push_back(SessionEvent::Disconnected {
                    peer: self.host.id,
                    frame: self.current_frame,
                });
            } else if silence >= self.config.disconnect_notify_start && !self.host.interrupted {
                self.host.interrupted = true;
                self.events.push_back(SessionEvent::NetworkInterrupted {
                    peer: self.host.id,
                    disconnect_in: self.config.disconnect_timeout - silence,
                });
            }
        }
        let interval = if self.running {
            self.config.keepalive_interval
        } else {
            self.config.sync_retry_interval
        };
        if !self.host.disconnected
            && (self.host.answer_now
                || self
                    .host
                    .last_send
                    .is_none_or(|t| now.saturating_sub(t) >= interval))
        {
            self.send(now, net);
        }
    }

    /// Advance one frame — or several while catching up. Errors with
    /// [`SessionError::WaitingForInputs`] when the host's inputs for the next frame
    /// have not arrived.
    pub fn advance_frame(
        &mut self,
        now: Duration,
        net: &mut (impl Transport + ?Sized),
    ) -> Result<Vec<Request<I>>, SessionError> {
        self.poll(now, net);
        if !self.running {
            return Err(SessionError::NotSynchronized);
        }
        let confirmed = self
            .queues
            .iter()
            .map(InputQueue::next_frame)
            .min()
            .unwrap_or(0);
        let available = confirmed.saturating_sub(self.current_frame);
        let result = if available == 0 {
            Err(SessionError::WaitingForInputs)
        } else {
            let steps = if available > self.config.spectator_catchup_threshold {
                self.config.spectator_catchup_speed.max(1).min(available)
            } else {
                1
            };
            let mut requests = Vec::with_capacity(steps as usize);
            for _ in 0..steps {
                let frame = self.current_frame;
                let inputs = (0..self.queues.len())
                    .map(|h| {
                        if self.absences[h].contains(frame) {
                            return (I::default(), InputStatus::Disconnected);
                        }
                        let bytes = self.queues[h].get(frame).unwrap_or(&self.default_input);
                        (
                            decode_input(bytes).unwrap_or_default(),
                            InputStatus::Confirmed,
                        )
                    })
                    .collect();
                if let Some(recorder) = self.recording.as_mut().and_then(Recording::recorder) {
                    let default = self.default_input.as_slice();
                    recorder
                        .record_frame(self.queues.iter().map(|q| q.get(frame).unwrap_or(default)));
                }
                requests.push(Request::Advance { frame, inputs });
                self.current_frame += 1;
            }
            if let Some(recorder) = self.recording.as_mut().and_then(Recording::recorder) {
                for (h, away) in self.absences.iter().enumerate() {
                    recorder.record_absences(h, away.as_slice());
                }
            }
            let keep = self.current_frame.saturating_sub(2);
            for q in &mut self.queues {
                q.discard_before(keep);
            }
            Ok(requests)
        };
        self.send(now, net);
        result
    }

    /// Record the match as a replay (see [`replay`](super::replay)); call
    /// before the first frame (a spectator replays the match from frame 0).
    /// `build` is the game's version string. Spectators receive no checksums, so
    /// the replay has none to verify.
    pub fn start_recording(&mut self, build: &str) -> Result<(), SessionError> {
        if self.current_frame != 0 {
            return Err(SessionError::RecordingTooLate(self.current_frame));
        }
        let players = vec![PlayerType::Remote(self.host.id); self.config.num_players];
        let header = ReplayHeader::starting::<I>(build, self.config.fps, players);
        self.recording = Some(Recording::started(&header));
        Ok(())
    }

    /// The replay bytes written since the last call: append them to the file.
    pub fn take_replay_bytes(&mut self) -> Vec<u8> {
        Recording::take_from(&mut self.recording)
    }

    /// End the replay (an end mark says it ended cleanly).
    pub fn finish_recording(&mut self) {
        Recording::finish_in(&mut self.recording);
    }

    fn handle_datagram(&mut self, now: Duration, from: PeerId, bytes: &[u8]) {
        if from != self.host.id || self.host.disconnected {
            self.drops.unknown_peer += 1;
            return;
        }
        let d = match Datagram::decode(bytes, self.config.session_id, self.config.max_input_size) {
            Ok(d) => d,
            Err(e) => return count_decode_error(&mut self.drops, e),
        };
        let total = self.config.sync_round_trips;
        if self
            .host
            .on_datagram(now, &d, bytes.len(), total, &mut self.events)
        {
            self.running = true;
            self.running_since = now;
            self.events.push_back(SessionEvent::Running);
        }
        let Some(block) = d.inputs else { return };
        if block.players.len() != self.queues.len() {
            self.drops.bad_inputs += 1;
            return;
        }
        let max_size = self.config.max_input_size;
        for (h, runs) in block.players.iter().enumerate() {
            let absences = std::cell::RefCell::new(&mut self.absences[h]);
            let outcome = self.queues[h].receive_runs(
                block.start,
                runs,
                &self.default_input,
                &mut |v| v.len() <= max_size && decode_input::<I>(v).is_some(),
                // A real input after an absence: the player is back from there.
                &mut |f, _, _| {
                    let mut absences = absences.borrow_mut();
                    if absences.open_from().is_some_and(|from| f > from) {
                        absences.close(f);
                    }
                },
                &mut |from| {
                    absences.borrow_mut().open(from);
                },
            );
            if outcome.is_err() {
                self.drops.bad_inputs += 1;
            }
        }
    }

    fn send(&mut self, now: Duration, net: &mut (impl Transport + ?Sized)) {
        let host = &mut self.host;
        let syncing = !host.synchronized;
        let mut d = Datagram {
            sync: syncing,
            frame: self.current_frame,
            ack: self
                .queues
                .iter()
                .map(InputQueue::last_frame)
                .min()
                .flatten(),
            pong: host.take_pong(now),
            ..Datagram::default()
        };
        if host.ping_due(now, self.config.ping_interval, syncing) {
            d.ping = Some(ms16(now));
            host.last_ping = Some(now);
        }
        self.out.clear();
        d.encode(self.config.session_id, &mut self.out);
        net.send_to(host.id, &self.out);
        host.last_send = Some(now);
        host.answer_now = false;
        host.traffic.datagrams_out += 1;
        host.traffic.bytes_out += self.out.len() as u64;
        host.traffic.roll(now);
    }
}
