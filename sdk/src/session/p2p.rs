//! The peer-to-peer rollback session.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;

use super::absence::{Absence, Absences};
use super::builder::{PlayerType, SessionConfig};
use super::checksum::{Checksum, ChecksumTracker, Mismatch};
use super::input_queue::InputQueue;
use super::peer::{ms16, RemotePeer, Role};
use super::protocol::{self, ChecksumReport, Datagram, DatagramError, InputBlock, Run};
use super::rejoin::{self, Handover, PeerRejoin, Rejoining};
use super::replay::{Recording, ReplayHeader};
use super::state_transfer::{self, StateSender, TransferMessage};
use super::time_sync::{TickRateAdvice, TimeSync};
use super::{
    decode_input, encode_input, DropCounters, Frame, Input, InputStatus, PeerStats, PlayerHandle,
    Request, SessionError, SessionEvent, SessionStats,
};
use crate::datagram::{PeerId, Transport};

/// Frames of input history kept behind the current frame.
const RETAIN_FRAMES: Frame = 256;
/// Confirmed frames handed to the replay recorder at once.
const RECORD_BATCH: Frame = 16;
/// Most frames of one player's input sent in one datagram.
const MAX_SEND_FRAMES: Frame = 64;
/// Copies of each checksum report (they ride in consecutive datagrams).
const CHECKSUM_COPIES: u8 = 3;
/// Frame-advantage reports go out in one datagram of this many.
const ADVANTAGE_EVERY: u32 = 10;
/// Window (frames) of the time-sync average.
const TIME_SYNC_WINDOW: usize = 40;
/// Adaptive input delay is re-evaluated this often (frames).
const ADAPT_EVERY: Frame = 60;

/// A record of a Save request: could the state still change by a rollback?
#[derive(Debug, Clone, Copy)]
struct SaveRecord {
    frame: Frame,
    is_final: bool,
    epoch: u8,
}

/// A GGPO-style rollback session between 2–16 players on several peers.
///
/// Drive it every tick: [`add_local_input`](Self::add_local_input) for each local
/// player, then [`advance_frame`](Self::advance_frame), and carry out the returned
/// [`Request`]s in order. Between ticks (and while synchronizing) call
/// [`poll`](Self::poll). See the [module docs](super) for an example.
///
/// The game must be able to load any state saved in the last
/// [`SessionConfig::max_rollback_frames`] frames.
pub struct P2PSession<I> {
    config: SessionConfig,
    kinds: Vec<PlayerType>,
    queues: Vec<InputQueue>,
    /// When each player was away (input `Disconnected`), as agreed with the peers.
    absences: Vec<Absences>,
    peers: Vec<RemotePeer>,
    local_handles: Vec<PlayerHandle>,
    pending_local: Vec<Option<Vec<u8>>>,
    default_input: Vec<u8>,
    current_frame: Frame,
    first_incorrect: Option<Frame>,
    input_delay: u32,
    running: bool,
    running_since: Duration,
    events: VecDeque<SessionEvent>,
    checksums: ChecksumTracker,
    /// Checksums of states saved while still predicted; final once confirmed
    /// without a rollback touching them.
    pending_checksums: BTreeMap<Frame, (u8, Checksum)>,
    saves: VecDeque<SaveRecord>,
    stats: SessionStats,
    drops: DropCounters,
    time_sync: TimeSync,
    recv: Vec<(PeerId, Vec<u8>)>,
    out: Vec<u8>,
    /// This session rejoins a running match.
    rejoining: Option<Rejoining>,
    /// The earliest frame this session has a state for (0, or the imported one).
    first_state: Frame,
    /// The state the game must import at the next `advance_frame`.
    pending_import: Option<(Frame, Vec<u8>)>,
    /// The frame of the `Export` request the game has not answered yet.
    export_requested: Option<Frame>,
    transfer_out: Vec<Vec<u8>>,
    /// The replay being written, if the game asked for one.
    recording: Option<Recording>,
    _input: PhantomData<fn() -> I>,
}

impl SessionConfig {
    /// How many frames back a `Load` may reach: keep at least this many saved states.
    /// (Twice the prediction window plus the input delay: a disconnect agreed on late
    /// can roll back past one window.)
    pub fn max_rollback_frames(&self) -> u32 {
        2 * self.max_prediction + self.input_delay.max(self.max_input_delay) + 2
    }
}

impl<I: Input> P2PSession<I> {
    pub(crate) fn new(
        config: SessionConfig,
        kinds: Vec<PlayerType>,
        spectators: Vec<PeerId>,
        rejoin: Option<u32>,
    ) -> Self {
        let n = kinds.len();
        let mut peers: Vec<RemotePeer> = Vec::new();
        for (handle, kind) in kinds.iter().enumerate() {
            if let PlayerType::Remote(id) = kind {
                match peers.iter_mut().find(|p| p.id == *id) {
                    Some(peer) => {
                        if let Role::Player(handles) = &mut peer.role {
                            handles.push(handle);
                        }
                    }
                    None => peers.push(RemotePeer::new(*id, Role::Player(vec![handle]))),
                }
            }
        }
        for id in spectators {
            if !peers.iter().any(|p| p.id == id) {
                peers.push(RemotePeer::new(id, Role::Spectator));
            }
        }
        let local_handles = (0..n).filter(|h| kinds[*h] == PlayerType::Local).collect();
        // Encoding `I::default()` cannot fail for a type that round-trips through serde.
        let default_input = encode_input(&I::default()).unwrap_or_default();
        let input_delay = config.input_delay;
        // A vacant seat is away from the start, as every peer agrees.
        let absences = kinds
            .iter()
            .map(|kind| {
                let mut away = Absences::default();
                if *kind == PlayerType::Vacant {
                    away.open(0);
                }
                away
            })
            .collect();
        P2PSession {
            queues: vec![InputQueue::default(); n],
            absences,
            pending_local: vec![None; n],
            kinds,
            peers,
            local_handles,
            default_input,
            current_frame: 0,
            first_incorrect: None,
            input_delay,
            running: false,
            running_since: Duration::ZERO,
            events: VecDeque::new(),
            checksums: ChecksumTracker::default(),
            pending_checksums: BTreeMap::new(),
            saves: VecDeque::new(),
            stats: SessionStats::default(),
            drops: DropCounters::default(),
            time_sync: TimeSync::new(TIME_SYNC_WINDOW),
            recv: Vec::new(),
            out: Vec::with_capacity(protocol::MAX_DATAGRAM_SIZE),
            rejoining: rejoin.map(|nonce| Rejoining::new(nonce, config.max_state_size)),
            first_state: 0,
            pending_import: None,
            export_requested: None,
            transfer_out: Vec::new(),
            recording: None,
            config,
            _input: PhantomData,
        }
    }

    /// Handles of the players on this endpoint.
    pub fn local_player_handles(&self) -> Vec<PlayerHandle> {
        self.local_handles.clone()
    }

    /// Number of players.
    pub fn num_players(&self) -> usize {
        self.kinds.len()
    }

    /// The frame the next `advance_frame` simulates.
    pub fn current_frame(&self) -> Frame {
        self.current_frame
    }

    /// The newest frame for which every player's input is known, if any.
    pub fn confirmed_frame(&self) -> Option<Frame> {
        let c = self.confirmed();
        (c >= 0).then(|| c.min(i64::from(Frame::MAX)) as Frame)
    }

    /// Whether synchronization is done and frames can be advanced.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The current input delay in frames.
    pub fn input_delay(&self) -> u32 {
        self.input_delay
    }

    /// Change the input delay; takes effect with the next local input.
    pub fn set_input_delay(&mut self, frames: u32) {
        self.input_delay = frames.min(64);
    }

    /// Latest tick-rate advice from time synchronization.
    pub fn tick_rate_advice(&self) -> TickRateAdvice {
        self.time_sync.advice()
    }

    /// The frame duration time sync recommends (nominal duration ÷ advised speed).
    pub fn recommended_frame_duration(&self) -> Duration {
        self.config
            .frame_duration()
            .div_f32(self.time_sync.advice().speed)
    }

    /// Session-wide statistics.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Datagrams dropped on receipt, by reason.
    pub fn drop_counters(&self) -> DropCounters {
        self.drops
    }

    /// Network statistics of a remote peer.
    pub fn peer_stats(&self, peer: PeerId) -> Option<PeerStats> {
        let p = self.peers.iter().find(|p| p.id == peer)?;
        let [dout, bout, din, bin] = p.traffic.per_sec;
        let last_local = self.last_local_frame();
        Some(PeerStats {
            rtt: p.rtt.rtt(),
            jitter: p.rtt.jitter(),
            local_frame_advantage: self.local_advantage(p) as i32,
            remote_frame_advantage: i32::from(p.remote_advantage),
            datagrams_out_per_sec: dout,
            datagrams_in_per_sec: din,
            bytes_out_per_sec: bout,
            bytes_in_per_sec: bin,
            rollbacks: p.rollbacks_caused,
            unacked_frames: match (last_local, p.ack) {
                (Some(l), Some(a)) => l.saturating_sub(a),
                (Some(l), None) => l + 1,
                _ => 0,
            },
        })
    }

    /// The remote peers (players and spectators) still connected: a peer that
    /// left or timed out is not among them.
    pub fn remote_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|p| !p.disconnected)
            .map(|p| p.id)
            .collect()
    }

    /// Drain pending events.
    pub fn events(&mut self) -> impl Iterator<Item = SessionEvent> + '_ {
        self.events.drain(..)
    }

    /// Give a local player's input for the current frame.
    pub fn add_local_input(&mut self, handle: PlayerHandle, input: I) -> Result<(), SessionError> {
        if self.kinds.get(handle) != Some(&PlayerType::Local) {
            return Err(SessionError::NotLocalPlayer(handle));
        }
        let bytes = encode_input(&input)?;
        if bytes.len() > self.config.max_input_size {
            return Err(SessionError::InvalidInput(format!(
                "encoded input is {} bytes; max_input_size is {}",
                bytes.len(),
                self.config.max_input_size
            )));
        }
        self.pending_local[handle] = Some(bytes);
        Ok(())
    }

    /// Start sending this match's confirmed inputs to the spectator `peer`, which
    /// joined now (e.g. on `SocketEvent::SpectatorConnected`). It replays the match
    /// from frame 0 and catches up (see
    /// [`SessionConfig::spectator_catchup_speed`]), so frame 0 must still be held:
    /// true in the first few seconds, and always with
    /// [`SessionConfig::keep_input_history`]. A spectator that left may join again.
    pub fn add_spectator(&mut self, peer: PeerId, now: Duration) -> Result<(), SessionError> {
        let slot = self.peers.iter().position(|p| p.id == peer);
        if let Some(i) = slot {
            if !self.peers[i].disconnected || !self.peers[i].handles().is_empty() {
                return Err(SessionError::PeerExists(peer));
            }
        }
        let oldest = self
            .queues
            .iter()
            .map(InputQueue::first_frame)
            .max()
            .unwrap_or(0);
        if oldest > 0 {
            return Err(SessionError::HistoryDiscarded {
                current: self.current_frame,
                oldest,
            });
        }
        let mut spectator = RemotePeer::new(peer, Role::Spectator);
        // Its silence counts from now.
        spectator.last_recv = Some(now);
        match slot {
            Some(i) => self.peers[i] = spectator,
            None => self.peers.push(spectator),
        }
        Ok(())
    }

    /// A player (on `peer`) takes the vacant seat `handle` (drop-in). Call it on
    /// every peer of the match as soon as the newcomer is known (the socket's
    /// `PlayerDroppedIn`), before its datagrams arrive. The newcomer's own session
    /// is a rejoining one ([`SessionBuilder::rejoining`](super::SessionBuilder::rejoining))
    /// with the seat as its local player: a survivor hands it the state, and its
    /// inputs count from a frame the peers agree on, as for a player who rejoins
    /// (`PeerRejoining`, then `PeerRejoined { peer, frame }`).
    pub fn seat_player(&mut self, handle: PlayerHandle, peer: PeerId) -> Result<(), SessionError> {
        if self.kinds.get(handle) != Some(&PlayerType::Vacant) {
            return Err(SessionError::NotVacant(handle));
        }
        if self.peers.iter().any(|p| p.id == peer) {
            return Err(SessionError::PeerExists(peer));
        }
        self.kinds[handle] = PlayerType::Remote(peer);
        // Away until it has the state, like a player who dropped out.
        let mut newcomer = RemotePeer::new(peer, Role::Player(vec![handle]));
        newcomer.disconnected = true;
        self.peers.push(newcomer);
        Ok(())
    }

    /// Disconnect a remote player's peer on purpose (e.g. it was kicked).
    pub fn disconnect_peer(&mut self, peer: PeerId) {
        if let Some(i) = self.peers.iter().position(|p| p.id == peer) {
            self.timeout_peer(i);
        }
    }

    /// Report the checksum of a state the game saved for `frame`. Checksums of
    /// confirmed frames are compared with the peers' every `checksum_interval` frames.
    pub fn report_checksum(&mut self, frame: Frame, checksum: Checksum) {
        let interval = self.config.checksum_interval;
        if interval == 0 || !frame.is_multiple_of(interval) {
            return;
        }
        let Some(record) = self.saves.iter().rev().find(|s| s.frame == frame).copied() else {
            return;
        };
        if record.is_final {
            self.finalize_checksum(frame, record.epoch, checksum);
        } else {
            self.pending_checksums
                .insert(frame, (record.epoch, checksum));
        }
    }

    /// Answer a [`Request::Export`]: `state` is the game's serialized state saved
    /// for `frame`. The session sends it, with what it needs to resume, to the
    /// rejoining peers that asked for it.
    pub fn export_state(&mut self, frame: Frame, state: Vec<u8>) -> Result<(), SessionError> {
        if self.export_requested != Some(frame) {
            return Err(SessionError::StateNotRequested(frame));
        }
        self.export_requested = None;
        let bases = (0..self.kinds.len())
            .map(|h| {
                let before = frame.checked_sub(1)?;
                if self.absences[h].contains(before) {
                    return None;
                }
                self.queues[h].get(before).map(<[u8]>::to_vec)
            })
            .collect();
        let handover = Handover {
            state_frame: frame,
            absences: self
                .absences
                .iter()
                .map(|a| a.as_slice().to_vec())
                .collect(),
            bases,
            state,
        }
        .encode();
        for peer in &mut self.peers {
            let resend = rejoin::resend_after(peer.rtt.rtt());
            if let Some(r) = &mut peer.rejoin {
                if r.donor_asked && r.sender.is_none() {
                    r.sender = StateSender::new(frame, handover.clone(), resend);
                }
            }
        }
        Ok(())
    }

    /// Whether this session is rejoining a match and has not caught up with it
    /// yet (see [`SessionBuilder::rejoining`](super::SessionBuilder::rejoining)).
    pub fn is_rejoining(&self) -> bool {
        self.rejoining.as_ref().is_some_and(|r| !r.caught_up)
    }

    /// How much of the rejoin state has arrived: (chunks received, chunks in
    /// all; 0 while unknown). `None` unless this session is waiting for it.
    pub fn rejoin_progress(&self) -> Option<(u32, u32)> {
        self.rejoining
            .as_ref()
            .filter(|r| !r.imported)
            .map(|r| r.receiver.progress())
    }

    fn finalize_checksum(&mut self, frame: Frame, epoch: u8, checksum: Checksum) {
        let report = ChecksumReport {
            frame,
            epoch,
            total: checksum.total,
            parts: checksum
                .parts
                .iter()
                .take(protocol::MAX_CHECKSUM_PARTS)
                .map(|(_, v)| *v)
                .collect(),
        };
        if let Some(recording) = &mut self.recording {
            recording.record_checksum(frame, &checksum);
        }
        self.checksums.add_local(frame, epoch, checksum);
        for peer in &mut self.peers {
            if matches!(peer.role, Role::Player(_)) && !peer.disconnected {
                peer.outgoing_checksums
                    .push((report.clone(), CHECKSUM_COPIES));
            }
        }
        self.compare_checksums();
    }

    /// Predicted states that are now confirmed (no rollback touched them) are final.
    fn promote_pending_checksums(&mut self) {
        let confirmed = self.confirmed();
        while let Some(entry) = self.pending_checksums.first_entry() {
            if i64::from(*entry.key()) > confirmed + 1 {
                break;
            }
            let (frame, (epoch, checksum)) = entry.remove_entry();
            if epoch == self.epoch() {
                self.finalize_checksum(frame, epoch, checksum);
            }
        }
    }

    /// Receive datagrams, detect silent peers, and (while synchronizing or idle)
    /// send sync datagrams and keepalives. Call it every tick, also between frames.
    pub fn poll(&mut self, now: Duration, net: &mut (impl Transport + ?Sized)) {
        self.recv.clear();
        net.receive(&mut self.recv);
        let received = std::mem::take(&mut self.recv);
        for (from, bytes) in &received {
            self.handle_datagram(now, *from, bytes);
        }
        self.recv = received;
        self.compare_checksums();
        self.check_timeouts(now);
        for i in 0..self.peers.len() {
            let p = &self.peers[i];
            if p.disconnected {
                continue;
            }
            let interval = if self.running && p.synchronized {
                self.config.keepalive_interval
            } else {
                self.config.sync_retry_interval
            };
            if p.answer_now
                || p.last_send
                    .is_none_or(|t| now.saturating_sub(t) >= interval)
            {
                self.send_to_peer(i, now, net);
            }
        }
        self.send_transfers(now, net);
    }

    /// Chunks of a state we hand over, and acks of one we receive.
    fn send_transfers(&mut self, now: Duration, net: &mut (impl Transport + ?Sized)) {
        let session = self.config.session_id;
        let mut out = std::mem::take(&mut self.transfer_out);
        for peer in &mut self.peers {
            let Some(sender) = peer.rejoin.as_mut().and_then(|r| r.sender.as_mut()) else {
                continue;
            };
            if peer.disconnected {
                continue;
            }
            sender.set_resend_after(rejoin::resend_after(peer.rtt.rtt()));
            out.clear();
            sender.poll(now, session, &mut out);
            for datagram in &out {
                net.send_to(peer.id, datagram);
            }
        }
        if let Some(r) = &mut self.rejoining {
            if let (Some(donor), false) = (r.donor, r.imported) {
                out.clear();
                r.receiver.poll(session, &mut out);
                for datagram in &out {
                    net.send_to(donor, datagram);
                }
            }
        }
        out.clear();
        self.transfer_out = out;
    }

    /// Advance one frame. Returns the requests to carry out, in order.
    ///
    /// Errors: [`SessionError::NotSynchronized`] before the session runs,
    /// [`SessionError::MissingLocalInput`] if a local input was not added, and
    /// [`SessionError::PredictionThreshold`] when the prediction window is full (skip
    /// this tick; datagrams were still exchanged).
    pub fn advance_frame(
        &mut self,
        now: Duration,
        net: &mut (impl Transport + ?Sized),
    ) -> Result<Vec<Request<I>>, SessionError> {
        self.poll(now, net);
        if !self.running {
            return Err(SessionError::NotSynchronized);
        }
        if let Some(&h) = self
            .local_handles
            .iter()
            .find(|h| self.pending_local[**h].is_none())
        {
            return Err(SessionError::MissingLocalInput(h));
        }
        // A rejoining session commits neutral inputs for the frames the others
        // have reached: they need them to go on while it catches up.
        if self.rejoining.as_ref().is_some_and(|r| !r.caught_up) {
            let ahead = self
                .peers
                .iter()
                .filter(|p| !p.disconnected && !p.handles().is_empty())
                .filter_map(|p| p.remote_frame)
                .max()
                .unwrap_or(0)
                .saturating_add(self.input_delay);
            for &h in &self.local_handles {
                self.queues[h].fill_until(ahead, &self.default_input);
            }
        }
        // Commit local inputs first, even if this frame cannot advance: peers need
        // them to confirm it (in lockstep, nobody could ever advance otherwise). A
        // retry of the same frame adds nothing new: its target is already filled.
        let target = self.current_frame.saturating_add(self.input_delay);
        for &h in &self.local_handles {
            if let Some(bytes) = self.pending_local[h].take() {
                self.queues[h].add_local(target, bytes, &self.default_input);
            }
        }
        let mut requests = Vec::new();
        if let Some((frame, state)) = self.pending_import.take() {
            if let Some(build) = self.recording.as_ref().map(|r| r.build().to_string()) {
                let header = self.replay_header(&build, frame, Some(state.clone()));
                if let Some(recording) = &mut self.recording {
                    recording.begin(&header);
                }
            }
            requests.push(Request::Import { frame, state });
        }
        let steps = self.catch_up_steps();
        for step in 0..steps {
            let predicted = i64::from(self.current_frame) - self.confirmed();
            // While catching up, only confirmed frames are simulated.
            let limit = if steps > 1 {
                0
            } else {
                self.config.max_prediction
            };
            if predicted > i64::from(limit) {
                if step > 0 || !requests.is_empty() {
                    break;
                }
                self.send_all(now, net);
                return Err(SessionError::PredictionThreshold);
            }
            self.advance_one(&mut requests);
        }
        if self.rejoining.as_ref().is_none_or(|r| r.caught_up) {
            self.update_time_sync();
        }
        self.adapt_input_delay();
        self.send_all(now, net);
        self.record(false);
        self.trim();
        Ok(requests)
    }

    /// Record this match as a replay (see [`replay`](super::replay)): from now
    /// on the confirmed frames, the players' absences and the checksums are
    /// written as they become final; [`take_replay_bytes`](Self::take_replay_bytes)
    /// hands them over. `build` is the game's version string (a replay plays
    /// only in the same build). Call it before the first frame, or on a
    /// rejoining session before its state arrives (the replay then starts from
    /// that state).
    pub fn start_recording(&mut self, build: &str) -> Result<(), SessionError> {
        let awaiting_state = self.rejoining.as_ref().is_some_and(|r| !r.imported);
        if awaiting_state {
            self.recording = Some(Recording::waiting(build));
            return Ok(());
        }
        if self.current_frame != 0 || self.rejoining.is_some() {
            return Err(SessionError::RecordingTooLate(self.current_frame));
        }
        let header = self.replay_header(build, 0, None);
        self.recording = Some(Recording::started(&header));
        Ok(())
    }

    /// The replay bytes written since the last call: append them to the file.
    pub fn take_replay_bytes(&mut self) -> Vec<u8> {
        Recording::take_from(&mut self.recording)
    }

    /// End the replay after the frames confirmed so far (an end mark says it
    /// ended cleanly); take the last bytes with `take_replay_bytes`.
    pub fn finish_recording(&mut self) {
        self.record(true);
        Recording::finish_in(&mut self.recording);
    }

    /// Whether a replay is being written.
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    fn replay_header(&self, build: &str, start: Frame, state: Option<Vec<u8>>) -> ReplayHeader {
        ReplayHeader {
            start_frame: start,
            checksum_spacing: super::replay::checksum_spacing(
                self.config.checksum_interval,
                self.config.fps,
            ),
            initial_state: state,
            ..ReplayHeader::starting::<I>(build, self.config.fps, self.kinds.clone())
        }
    }

    /// Hand the frames confirmed and simulated since the last call, and any
    /// changed absences, to the recorder: in batches of [`RECORD_BATCH`] frames
    /// (`all`: everything now), so recording costs next to nothing per frame.
    fn record(&mut self, all: bool) {
        let Some(recorder) = self.recording.as_mut().and_then(Recording::recorder) else {
            return;
        };
        // At most the frames simulated so far are confirmed: until a batch of
        // those has gathered, there is nothing to look at.
        if self.current_frame.saturating_sub(recorder.next_frame()) < RECORD_BATCH && !all {
            return;
        }
        let upto = self.confirmed().min(i64::from(self.current_frame) - 1);
        let Some(recorder) = self.recording.as_mut().and_then(Recording::recorder) else {
            return;
        };
        let from = recorder.next_frame();
        let Ok(frames) = Frame::try_from(upto + 1 - i64::from(from)) else {
            return;
        };
        if frames == 0 || (frames < RECORD_BATCH && !all) {
            return;
        }
        let to = from + frames;
        recorder.record_span(
            frames,
            self.queues.iter().map(|q| q.runs_in(from, to)),
            &self.default_input,
        );
        for (h, away) in self.absences.iter().enumerate() {
            recorder.record_absences(h, away.as_slice());
        }
    }

    /// Frames to simulate in this call: one, or several while a rejoining session
    /// is behind the others.
    fn catch_up_steps(&mut self) -> u32 {
        let Some(r) = &self.rejoining else { return 1 };
        if r.caught_up || !r.imported {
            return 1;
        }
        let others = self
            .peers
            .iter()
            .filter(|p| !p.disconnected && !p.handles().is_empty())
            .filter_map(|p| p.remote_frame)
            .max()
            .unwrap_or(0);
        let behind = others.saturating_sub(self.current_frame);
        if behind <= 2 {
            if let Some(r) = &mut self.rejoining {
                r.caught_up = true;
            }
            return 1;
        }
        self.config.rejoin_catchup_speed.clamp(1, behind)
    }

    /// Simulate the current frame (after any rollback), exporting a state for
    /// rejoining peers when one is wanted.
    fn advance_one(&mut self, requests: &mut Vec<Request<I>>) {
        if let Some(first) = self.first_incorrect.take() {
            if first < self.current_frame {
                self.rollback(first, requests);
            }
        }
        self.save(self.current_frame, requests);
        self.request_export(requests);
        requests.push(Request::Advance {
            frame: self.current_frame,
            inputs: self.inputs_for(self.current_frame),
        });
        self.current_frame += 1;
        self.stats.frames_advanced += 1;
        self.promote_pending_checksums();
    }

    /// As a donor: ask the game for the newest confirmed state (every state up to
    /// it was just saved or re-saved) once it is from the rejoiner's absence on.
    fn request_export(&mut self, requests: &mut Vec<Request<I>>) {
        self.export_requested = None;
        let mut wanted = false;
        let mut away_from: Frame = 0;
        for p in &self.peers {
            let asked = p
                .rejoin
                .as_ref()
                .is_some_and(|r| r.donor_asked && r.sender.is_none());
            let back = p
                .handles()
                .iter()
                .all(|h| self.absences[*h].open_from().is_none());
            if asked && back && !p.disconnected {
                wanted = true;
                for h in p.handles() {
                    if let Some(a) = self.absences[*h].as_slice().last() {
                        away_from = away_from.max(a.from);
                    }
                }
            }
        }
        if !wanted {
            return;
        }
        let newest = (self.confirmed() + 1).min(i64::from(self.current_frame));
        let Ok(frame) = Frame::try_from(newest) else {
            return;
        };
        if frame >= away_from {
            self.export_requested = Some(frame);
            requests.push(Request::Export { frame });
        }
    }

    fn rollback(&mut self, first: Frame, requests: &mut Vec<Request<I>>) {
        let depth = self.current_frame - first;
        self.stats.rollbacks += 1;
        self.stats.rollback_frames += u64::from(depth);
        self.stats.last_rollback_depth = depth;
        self.stats.max_rollback_depth = self.stats.max_rollback_depth.max(depth);
        // States after `first` will be recomputed (and their checksums reported again).
        self.pending_checksums.retain(|f, _| *f <= first);
        requests.push(Request::Load { frame: first });
        for f in first..self.current_frame {
            requests.push(Request::Advance {
                frame: f,
                inputs: self.inputs_for(f),
            });
            if f + 1 < self.current_frame {
                self.save(f + 1, requests);
            }
        }
    }

    fn save(&mut self, frame: Frame, requests: &mut Vec<Request<I>>) {
        let is_final = frame == 0 || self.confirmed() >= i64::from(frame) - 1;
        self.saves.push_back(SaveRecord {
            frame,
            is_final,
            epoch: self.epoch(),
        });
        if self.saves.len() > 128 {
            self.saves.pop_front();
        }
        requests.push(Request::Save { frame });
    }

    fn inputs_for(&self, frame: Frame) -> Vec<(I, InputStatus)> {
        (0..self.kinds.len())
            .map(|h| {
                if self.absences[h].contains(frame) {
                    return (I::default(), InputStatus::Disconnected);
                }
                let q = &self.queues[h];
                let (bytes, status) = match q.get(frame) {
                    Some(b) => (b, InputStatus::Confirmed),
                    None => (
                        q.latest().unwrap_or(&self.default_input),
                        InputStatus::Predicted,
                    ),
                };
                (decode_input(bytes).unwrap_or_default(), status)
            })
            .collect()
    }

    /// The newest frame with every input known; -1 if none. Players away now count
    /// as known (a closed absence holds placeholders in the queue); a session
    /// without remote players is confirmed to the present.
    fn confirmed(&self) -> i64 {
        let mut confirmed = i64::MAX;
        for (h, kind) in self.kinds.iter().enumerate() {
            if matches!(kind, PlayerType::Remote(_) | PlayerType::Vacant) {
                // A vacant seat taken elsewhere (its absence closed by the
                // others) waits for `seat_player` here, and then its inputs.
                if self.absences[h].open_from().is_some() {
                    continue;
                }
                let last = self.queues[h].last_frame().map_or(-1, i64::from);
                confirmed = confirmed.min(last);
            }
        }
        if confirmed == i64::MAX {
            i64::from(self.current_frame) - 1
        } else {
            confirmed
        }
    }

    /// Digest of the players' absences: checksums are only compared between
    /// states computed under the same absences.
    fn epoch(&self) -> u8 {
        self.absences
            .iter()
            .fold(0u8, |acc, a| a.fold(acc.wrapping_mul(31)))
    }

    fn last_local_frame(&self) -> Option<Frame> {
        self.local_handles
            .iter()
            .map(|h| self.queues[*h].last_frame())
            .min()
            .flatten()
    }

    /// Frames the peer is estimated to be ahead of us (GGPO's local advantage).
    fn local_advantage(&self, peer: &RemotePeer) -> f32 {
        let Some(remote) = peer.remote_frame else {
            return 0.0;
        };
        let one_way = peer.rtt.rtt().as_secs_f32() / 2.0;
        let estimate = remote as f32 + one_way * self.config.fps as f32;
        (estimate - self.current_frame as f32).clamp(-127.0, 127.0)
    }

    fn update_time_sync(&mut self) {
        let mut worst: Option<(f32, f32)> = None;
        for p in &self.peers {
            if p.disconnected
                || !matches!(p.role, Role::Player(_))
                || p.remote_frame.is_none()
                || p.rejoin.is_some()
            {
                continue;
            }
            let local = self.local_advantage(p);
            let remote = f32::from(p.remote_advantage);
            if worst.is_none_or(|(l, r)| remote - local > r - l) {
                worst = Some((local, remote));
            }
        }
        if let Some((local, remote)) = worst {
            if let Some(advice) = self.time_sync.sample(local, remote) {
                self.events.push_back(SessionEvent::TickRate(advice));
            }
        }
    }

    fn adapt_input_delay(&mut self) {
        if !self.config.adaptive_input_delay || !self.current_frame.is_multiple_of(ADAPT_EVERY) {
            return;
        }
        let frame = self.config.frame_duration().as_secs_f64();
        let worst = self
            .peers
            .iter()
            .filter(|p| !p.disconnected && p.rtt.has_sample())
            .map(|p| p.rtt.rtt().as_secs_f64() / 2.0 + 2.0 * p.rtt.jitter().as_secs_f64())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let Some(one_way) = worst else { return };
        // Hide the one-way delay except for about two frames of rollback.
        let wanted = ((one_way / frame).ceil() as i64 - 2)
            .clamp(0, i64::from(self.config.max_input_delay)) as u32;
        if wanted != self.input_delay {
            self.input_delay = wanted;
            self.events
                .push_back(SessionEvent::InputDelayChanged { frames: wanted });
        }
    }

    fn handle_datagram(&mut self, now: Duration, from: PeerId, bytes: &[u8]) {
        let Some(i) = self.peers.iter().position(|p| p.id == from) else {
            self.drops.unknown_peer += 1;
            return;
        };
        if state_transfer::is_transfer_datagram(bytes) {
            self.handle_transfer(now, i, bytes);
            return;
        }
        let d = match Datagram::decode(bytes, self.config.session_id, self.config.max_input_size) {
            Ok(d) => d,
            Err(e) => {
                count_decode_error(&mut self.drops, e);
                return;
            }
        };
        if !self.accept_sender(now, i, d.rejoin) {
            self.drops.unknown_peer += 1;
            return;
        }
        self.stats.datagrams_received += 1;
        let total = self.config.sync_round_trips;
        if self.peers[i].on_datagram(now, &d, bytes.len(), total, &mut self.events) {
            self.check_all_synchronized(now);
        }
        let last_sent = match self.peers[i].role {
            Role::Player(_) => self.last_local_frame(),
            Role::Spectator => self.confirmed_frame(),
        };
        let peer = &mut self.peers[i];
        if let Some(ack) = d.ack {
            // An ack beyond what we sent is absurd: ignore it. The latest ack wins even
            // when lower (a reordered datagram costs a resend, never a stall).
            if last_sent.is_some_and(|l| ack <= l) {
                peer.ack = Some(ack);
            }
        }
        if let Some(adv) = d.advantage {
            peer.remote_advantage = adv;
        }
        let handles_back = peer
            .handles()
            .iter()
            .all(|h| self.absences[*h].open_from().is_none());
        let mut choose_frame = false;
        if let Some(r) = &mut peer.rejoin {
            r.donor_asked |= d.donor;
            if d.rejoin.is_none() && handles_back {
                // It caught up with the match: a player like any other again.
                peer.last_rejoin = r.nonce;
                peer.rejoin = None;
            } else {
                choose_frame = d.donor;
            }
        }
        if choose_frame {
            self.resume_rejoiner_at_chosen_frame(now, i);
        }
        // Statuses first: a close of an absence must be known before the inputs
        // that follow it in the same datagram.
        if d.statuses.len() == self.kinds.len() {
            self.receive_statuses(now, i, d.frame, &d.statuses);
        }
        if let Some(block) = &d.inputs {
            self.receive_inputs(i, block);
        }
        for report in d.checksums {
            self.checksums.add_remote(from, report);
        }
    }

    /// Whether a datagram from peer `i` (marked with `rejoin` by a rejoining
    /// session) is taken in. A new rejoin number starts that peer's rejoin.
    fn accept_sender(&mut self, now: Duration, i: usize, rejoin: Option<u32>) -> bool {
        let peer = &mut self.peers[i];
        let Some(nonce) = rejoin else {
            return !peer.disconnected;
        };
        if peer.handles().is_empty() {
            return !peer.disconnected;
        }
        if let Some(r) = &mut peer.rejoin {
            if r.nonce.is_none() {
                r.nonce = Some(nonce);
            }
            if r.nonce == Some(nonce) {
                return true;
            }
        }
        if peer.last_rejoin == Some(nonce) {
            return false;
        }
        // A rejoining session of our own cannot hand out a state yet.
        if self.rejoining.as_ref().is_some_and(|r| !r.imported) {
            return false;
        }
        let handles = peer.handles().to_vec();
        if !handles.iter().all(|h| self.absences[*h].can_rejoin()) {
            return false;
        }
        if handles
            .iter()
            .any(|h| self.absences[*h].open_from().is_none())
        {
            // Its old session is gone: its players are away from here on.
            self.timeout_peer(i);
        }
        self.revive_peer(now, i, Some(nonce));
        self.events.push_back(SessionEvent::PeerRejoining {
            peer: self.peers[i].id,
        });
        true
    }

    /// Forget what we knew of peer `i`'s old session: it synchronizes afresh.
    fn revive_peer(&mut self, now: Duration, i: usize, nonce: Option<u32>) {
        let old = &self.peers[i];
        let mut fresh = RemotePeer::new(old.id, old.role.clone());
        fresh.traffic = old.traffic;
        fresh.last_rejoin = old.last_rejoin;
        fresh.last_recv = Some(now);
        fresh.rejoin = Some(PeerRejoin::new(nonce));
        self.peers[i] = fresh;
    }

    /// As the donor for rejoining peer `i`: pick the frame from which its inputs
    /// count again, unless it is known already. After everything we sent or
    /// confirmed, so no peer can have confirmed that frame without learning it.
    fn resume_rejoiner_at_chosen_frame(&mut self, now: Duration, i: usize) {
        let handles = self.peers[i].handles().to_vec();
        let Some(away_from) = handles
            .iter()
            .filter_map(|h| self.absences[*h].open_from())
            .max()
        else {
            return;
        };
        if handles
            .iter()
            .any(|h| self.absences[*h].open_from().is_none())
        {
            return;
        }
        let sent = self.last_local_frame().map_or(0, |f| i64::from(f) + 1);
        let confirmed = self.confirmed() + 1;
        let present = i64::from(self.current_frame).max(sent).max(confirmed);
        let resume =
            present.max(i64::from(away_from) + 1) + i64::from(rejoin::resume_lead(self.config.fps));
        let resume = Frame::try_from(resume).unwrap_or(Frame::MAX);
        for h in handles {
            if self.absences[h].close(resume) {
                self.on_absence_closed(now, h, resume);
            }
        }
    }

    /// Player `h`'s absence now ends at `until`: its queue holds neutral
    /// placeholders up to there, and its inputs count again from `until`.
    fn on_absence_closed(&mut self, now: Duration, h: PlayerHandle, until: Frame) {
        let from = self.absences[h].as_slice().last().map_or(until, |a| a.from);
        let queue = &mut self.queues[h];
        queue.truncate(from);
        queue.fill_until(until, &self.default_input);
        self.mark_incorrect_from(until);
        let PlayerType::Remote(owner) = self.kinds[h] else {
            return;
        };
        let Some(i) = self.peers.iter().position(|p| p.id == owner) else {
            return;
        };
        let back = self.peers[i]
            .handles()
            .iter()
            .all(|h| self.absences[*h].open_from().is_none());
        if !back {
            return;
        }
        if self.peers[i].rejoin.is_none() {
            // We learned of this rejoin from another peer first.
            self.revive_peer(now, i, None);
        }
        self.events.push_back(SessionEvent::PeerRejoined {
            peer: owner,
            frame: until,
        });
    }

    /// A transfer datagram: a chunk of our state (rejoining) or an ack of the one
    /// we send (donor).
    fn handle_transfer(&mut self, now: Duration, i: usize, bytes: &[u8]) {
        let message = match TransferMessage::decode(bytes, self.config.session_id) {
            Ok(m) => m,
            Err(e) => return count_decode_error(&mut self.drops, e),
        };
        let id = self.peers[i].id;
        if let Some(r) = &mut self.rejoining {
            if !r.imported && r.donor == Some(id) {
                if r.receiver.on_message(&message).is_err() {
                    self.drops.malformed += 1;
                }
                if let Some((frame, bytes)) = r.receiver.take_complete() {
                    self.import(now, frame, &bytes);
                }
                return;
            }
        }
        match self.peers[i]
            .rejoin
            .as_mut()
            .and_then(|r| r.sender.as_mut())
        {
            Some(sender) => {
                if sender.on_ack(&message).is_err() {
                    self.drops.malformed += 1;
                }
            }
            None => self.drops.unknown_peer += 1,
        }
    }

    /// Take in the donor's handover: the state of frame `frame`, the absences and
    /// the inputs before it. From here this session plays the match.
    fn import(&mut self, now: Duration, frame: Frame, bytes: &[u8]) {
        let handover = match Handover::decode(bytes, self.kinds.len(), self.config.max_input_size) {
            Ok(h) if h.state_frame == frame => h,
            _ => {
                self.drops.malformed += 1;
                return;
            }
        };
        let absences: Vec<Absences> = handover.absences.into_iter().map(Absences::from).collect();
        // Our own players must be away before the state and back at a set frame.
        let resume = self.local_handles.iter().try_fold(None, |agreed, h| {
            let last = absences[*h].as_slice().last().copied();
            match (last, agreed) {
                (
                    Some(Absence {
                        from,
                        until: Some(u),
                    }),
                    None,
                ) if from <= frame && u >= frame => Some(Some(u)),
                (
                    Some(Absence {
                        from,
                        until: Some(u),
                    }),
                    Some(a),
                ) if from <= frame && u == a => Some(Some(u)),
                _ => None,
            }
        });
        let Some(Some(resume)) = resume else {
            self.drops.malformed += 1;
            return;
        };
        // Built aside: a bad handover changes nothing.
        let mut queues = Vec::with_capacity(self.kinds.len());
        for ((kind, away), base) in self.kinds.iter().zip(&absences).zip(&handover.bases) {
            let base = if frame == 0 {
                None
            } else if *kind == PlayerType::Local || away.contains(frame - 1) {
                Some(self.default_input.clone())
            } else {
                match base.clone() {
                    Some(b) if decode_input::<I>(&b).is_some() => Some(b),
                    _ => {
                        self.drops.malformed += 1;
                        return;
                    }
                }
            };
            let mut queue = match base {
                Some(b) => InputQueue::starting_at(frame - 1, b),
                None => InputQueue::default(),
            };
            // Placeholders through a closed absence the queue starts in.
            if let Some(until) = away
                .as_slice()
                .iter()
                .find(|a| {
                    a.from <= queue.next_frame() && a.until.is_some_and(|u| u > queue.next_frame())
                })
                .and_then(|a| a.until)
            {
                queue.fill_until(until, &self.default_input);
            }
            queues.push(queue);
        }
        self.queues = queues;
        self.absences = absences;
        for peer in &mut self.peers {
            let handles = peer.handles();
            if !handles.is_empty()
                && handles
                    .iter()
                    .all(|h| self.absences[*h].open_from().is_some())
            {
                peer.disconnected = true;
            }
        }
        self.current_frame = frame;
        self.first_state = frame;
        self.pending_import = Some((frame, handover.state));
        let mut transfer = Duration::ZERO;
        if let Some(r) = &mut self.rejoining {
            r.imported = true;
            transfer = now.saturating_sub(r.asked_at.unwrap_or(now));
        }
        self.running = true;
        self.running_since = now;
        self.events.push_back(SessionEvent::Rejoined {
            frame: resume,
            state_frame: frame,
            state_bytes: bytes.len(),
            transfer,
        });
        self.events.push_back(SessionEvent::Running);
    }

    fn check_all_synchronized(&mut self, now: Duration) {
        if let Some(r) = &mut self.rejoining {
            // A rejoining session runs once the state arrived; it asks the first
            // peer it synchronized with for it.
            if r.donor.is_none() {
                r.donor = self
                    .peers
                    .iter()
                    .filter(|p| p.synchronized && !p.handles().is_empty())
                    .map(|p| p.id)
                    .min();
            }
            return;
        }
        let all = self
            .peers
            .iter()
            .filter(|p| matches!(p.role, Role::Player(_)))
            .all(|p| p.synchronized || p.disconnected);
        if all && !self.running {
            self.running = true;
            self.running_since = now;
            self.events.push_back(SessionEvent::Running);
        }
    }

    fn receive_inputs(&mut self, i: usize, block: &InputBlock) {
        let handles = self.peers[i].handles().to_vec();
        let disconnected_run =
            |runs: &Vec<Run>| runs.iter().any(|r| matches!(r, Run::Disconnected(_)));
        // A player peer never reports its own players as disconnected.
        if handles.len() != block.players.len() || block.players.iter().any(disconnected_run) {
            self.drops.bad_inputs += 1;
            return;
        }
        let max_size = self.config.max_input_size;
        let current = self.current_frame;
        let mut first_incorrect = self.first_incorrect;
        for (h, runs) in handles.into_iter().zip(&block.players) {
            if self.absences[h].open_from().is_some() {
                // Away: nothing of it counts until its absence is closed.
                continue;
            }
            let absences = &self.absences[h];
            let outcome = self.queues[h].receive_runs(
                block.start,
                runs,
                &self.default_input,
                &mut |v| v.len() <= max_size && decode_input::<I>(v).is_some(),
                &mut |f, predicted, actual| {
                    let used = f < current && !absences.contains(f);
                    if used && predicted != actual {
                        first_incorrect = Some(first_incorrect.map_or(f, |x| x.min(f)));
                    }
                },
                &mut |_| {},
            );
            if outcome.is_err() {
                self.drops.bad_inputs += 1;
            }
        }
        if first_incorrect != self.first_incorrect {
            self.first_incorrect = first_incorrect;
            self.peers[i].rollbacks_caused += 1;
        }
    }

    fn receive_statuses(
        &mut self,
        now: Duration,
        i: usize,
        their_frame: Frame,
        statuses: &[Vec<Absence>],
    ) {
        if self.rejoining.as_ref().is_some_and(|r| !r.imported) {
            // Until the handover arrives we know nothing to merge them with.
            return;
        }
        let horizon = i64::from(self.current_frame.max(their_frame))
            + i64::from(RETAIN_FRAMES)
            + i64::from(rejoin::resume_lead(self.config.fps));
        for (h, theirs) in statuses.iter().enumerate() {
            let too_far = theirs.iter().any(|a| {
                i64::from(a.from) > horizon || a.until.is_some_and(|u| i64::from(u) > horizon)
            });
            if too_far {
                self.drops.malformed += 1;
                continue;
            }
            if self.kinds[h] == PlayerType::Local {
                // The peer dropped us (an absence we never had, still open): it no
                // longer uses our inputs, so we drop it.
                let dropped_us = theirs.len() > self.absences[h].len()
                    && theirs.last().is_some_and(|a| a.until.is_none());
                if dropped_us && !self.peers[i].disconnected {
                    self.timeout_peer(i);
                }
                continue;
            }
            let outcome = self.absences[h].merge(theirs);
            if outcome.conflict {
                self.drops.malformed += 1;
                continue;
            }
            if let Some(f) = outcome.changed_from {
                self.mark_incorrect_from(f);
            }
            if let Some(until) = outcome.closed_at {
                self.on_absence_closed(now, h, until);
            }
            self.report_if_all_away(h);
        }
    }

    /// Frames from `frame` on were simulated with inputs that changed.
    fn mark_incorrect_from(&mut self, frame: Frame) {
        if frame < self.current_frame {
            let frame = frame.max(self.first_state);
            self.first_incorrect = Some(self.first_incorrect.map_or(frame, |x| x.min(frame)));
        }
    }

    /// Player `h` is away from `from` on (the earliest report wins).
    fn open_absence(&mut self, h: PlayerHandle, from: Frame) {
        if self.absences[h].open(from) {
            self.mark_incorrect_from(from);
            self.report_if_all_away(h);
        }
    }

    /// When every player of `h`'s peer is away, the peer is disconnected (unless
    /// it is rejoining).
    fn report_if_all_away(&mut self, h: PlayerHandle) {
        let PlayerType::Remote(owner) = self.kinds[h] else {
            return;
        };
        let Some(peer) = self.peers.iter_mut().find(|p| p.id == owner) else {
            return;
        };
        let since = peer
            .handles()
            .iter()
            .map(|h| self.absences[*h].open_from())
            .try_fold(0, |m: Frame, f| f.map(|f| m.max(f)));
        if let Some(frame) = since {
            if !peer.disconnected && peer.rejoin.is_none() {
                peer.disconnected = true;
                self.events
                    .push_back(SessionEvent::Disconnected { peer: owner, frame });
            }
        }
    }

    fn timeout_peer(&mut self, i: usize) {
        let handles = self.peers[i].handles().to_vec();
        if handles.is_empty() {
            let peer = &mut self.peers[i];
            if !peer.disconnected {
                peer.disconnected = true;
                self.events.push_back(SessionEvent::Disconnected {
                    peer: peer.id,
                    frame: self.current_frame,
                });
            }
            return;
        }
        // A rejoin in progress ends here; its players stay (or become) away.
        self.peers[i].rejoin = None;
        for h in handles {
            if self.absences[h].open_from().is_none() {
                let from = self.queues[h].next_frame();
                self.open_absence(h, from);
            }
        }
        self.report_if_all_away(self.peers[i].handles()[0]);
        if !self.peers[i].disconnected {
            // Its players were away already (a rejoin that went silent).
            self.peers[i].disconnected = true;
        }
        // Still synchronizing? Going on without the peer may complete it.
        if !self.running {
            self.check_all_synchronized(self.running_since);
        }
    }

    fn check_timeouts(&mut self, now: Duration) {
        if !self.running {
            return;
        }
        for i in 0..self.peers.len() {
            let p = &mut self.peers[i];
            if p.disconnected {
                continue;
            }
            let silence = p.silence(now, self.running_since);
            if silence >= self.config.disconnect_timeout {
                self.timeout_peer(i);
            } else if silence >= self.config.disconnect_notify_start && !p.interrupted {
                p.interrupted = true;
                let disconnect_in = self.config.disconnect_timeout - silence;
                self.events.push_back(SessionEvent::NetworkInterrupted {
                    peer: p.id,
                    disconnect_in,
                });
            }
        }
    }

    fn compare_checksums(&mut self) {
        let mut found: Vec<Mismatch> = Vec::new();
        self.stats.checksums_compared += self.checksums.compare(&mut found);
        for m in found {
            // The replay keeps the state that diverged, whatever its spacing: a
            // replay of this file elsewhere then stops right there.
            if let (Some(recording), Some(local)) =
                (&mut self.recording, self.checksums.local(m.frame))
            {
                recording.record_checksum_always(m.frame, local);
            }
            self.events.push_back(SessionEvent::DesyncDetected {
                frame: m.frame,
                peer: m.peer,
                local: m.local,
                remote: m.remote,
                parts: m.parts,
            });
        }
    }

    fn send_all(&mut self, now: Duration, net: &mut (impl Transport + ?Sized)) {
        for i in 0..self.peers.len() {
            if !self.peers[i].disconnected {
                self.send_to_peer(i, now, net);
            }
        }
    }

    fn send_to_peer(&mut self, i: usize, now: Duration, net: &mut (impl Transport + ?Sized)) {
        let syncing = !self.running || !self.peers[i].synchronized;
        let mut d = Datagram {
            sync: syncing,
            frame: self.current_frame,
            ..Datagram::default()
        };
        let (handles, last) = match &self.peers[i].role {
            Role::Player(remote) => {
                d.ack = remote
                    .iter()
                    .map(|h| self.queues[*h].last_frame())
                    .min()
                    .flatten();
                (self.local_handles.clone(), self.last_local_frame())
            }
            Role::Spectator => ((0..self.kinds.len()).collect(), self.confirmed_frame()),
        };
        // A rejoining peer gets inputs once it acknowledged the frame before its
        // state; we send our own players' inputs only from where they count.
        let waiting = self.peers[i].rejoin.is_some() && self.peers[i].ack.is_none();
        if let (Some(last), false) = (last, waiting) {
            let mut start = self.peers[i].ack.map_or(0, |a| a + 1);
            if matches!(self.peers[i].role, Role::Player(_)) {
                start = start.max(self.local_resume_frame());
            }
            if start <= last {
                let end = last.min(start + MAX_SEND_FRAMES - 1);
                d.inputs = Some(self.input_block(&handles, start, end));
            }
        }
        d.statuses = if self.absences.iter().any(|a| !a.is_empty()) {
            self.absences
                .iter()
                .map(|a| a.as_slice().to_vec())
                .collect()
        } else {
            Vec::new()
        };
        if let Some(r) = &mut self.rejoining {
            if !r.caught_up {
                d.rejoin = Some(r.nonce);
                d.donor = !r.imported && r.donor == Some(self.peers[i].id);
                if d.donor {
                    r.asked_at.get_or_insert(now);
                }
            }
        }
        let fps = self.config.fps;
        let advantage = self.local_advantage(&self.peers[i]);
        let peer = &mut self.peers[i];
        if peer.ping_due(now, self.config.ping_interval, syncing) {
            d.ping = Some(ms16(now));
            peer.last_ping = Some(now);
        }
        d.pong = peer.take_pong(now);
        peer.datagrams_since_advantage += 1;
        if peer.datagrams_since_advantage >= ADVANTAGE_EVERY && fps > 0 {
            peer.datagrams_since_advantage = 0;
            d.advantage = Some(advantage.round() as i8);
        }
        peer.outgoing_checksums.retain_mut(|(report, copies)| {
            d.checksums.push(report.clone());
            *copies -= 1;
            *copies > 0
        });
        self.out.clear();
        d.encode(self.config.session_id, &mut self.out);
        net.send_to(peer.id, &self.out);
        peer.last_send = Some(now);
        peer.answer_now = false;
        peer.traffic.datagrams_out += 1;
        peer.traffic.bytes_out += self.out.len() as u64;
        peer.traffic.roll(now);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += self.out.len() as u64;
    }

    /// The first frame our local players' inputs count in (after any absence of
    /// theirs: a rejoining session never sends the frames it was away).
    fn local_resume_frame(&self) -> Frame {
        self.local_handles
            .iter()
            .filter_map(|h| self.absences[*h].as_slice().last())
            .filter_map(|a| a.until)
            .max()
            .unwrap_or(0)
    }

    /// Inputs of `handles` for frames `start..=end`, run-length and delta encoded;
    /// frames a player was away are `Disconnected` runs (spectators get those).
    fn input_block(&self, handles: &[PlayerHandle], start: Frame, end: Frame) -> InputBlock {
        let players = handles
            .iter()
            .map(|&h| {
                let q = &self.queues[h];
                let away = &self.absences[h];
                let mut runs: Vec<Run> = Vec::new();
                let mut prev: Option<&[u8]> = start.checked_sub(1).and_then(|f| q.get(f));
                let mut f = start;
                while f <= end {
                    if away.contains(f) {
                        let mut count = 1;
                        while f + count <= end && away.contains(f + count) {
                            count += 1;
                        }
                        runs.push(Run::Disconnected(count));
                        if away.open_from().is_some_and(|from| f >= from) {
                            break;
                        }
                        prev = Some(&self.default_input);
                        f += count;
                        continue;
                    }
                    let Some(value) = q.get(f) else { break };
                    let mut count = 1;
                    while f + count <= end
                        && !away.contains(f + count)
                        && q.get(f + count) == Some(value)
                    {
                        count += 1;
                    }
                    runs.push(protocol::encode_change(count, prev, value));
                    prev = Some(value);
                    f += count;
                }
                runs
            })
            .collect();
        InputBlock { start, players }
    }

    fn trim(&mut self) {
        if self.config.keep_input_history {
            return;
        }
        // Spectators behind the retention window still get every frame.
        let spectators_need = self
            .peers
            .iter()
            .filter(|p| matches!(p.role, Role::Spectator) && !p.disconnected)
            .map(|p| p.ack.map_or(0, |a| a + 1))
            .min();
        // A rejoining peer needs every input from the state it will receive on,
        // and that state is at or after the start of its absence.
        let rejoiners_need = self
            .peers
            .iter()
            .filter(|p| p.rejoin.is_some() && !p.disconnected)
            .flat_map(|p| {
                p.ack.map(|a| a + 1).into_iter().chain(
                    p.handles()
                        .iter()
                        .filter_map(|h| self.absences[*h].as_slice().last().map(|a| a.from)),
                )
            })
            .min();
        // The recorder has not seen frames from its next one on.
        let recorder_needs = self
            .recording
            .as_mut()
            .and_then(Recording::recorder)
            .map(|r| r.next_frame());
        let mut keep = self.current_frame.saturating_sub(RETAIN_FRAMES);
        for need in [spectators_need, rejoiners_need, recorder_needs]
            .into_iter()
            .flatten()
        {
            keep = keep.min(need.saturating_sub(1));
        }
        for q in &mut self.queues {
            if q.first_frame() + RETAIN_FRAMES / 4 < keep {
                q.discard_before(keep);
            }
        }
    }
}

pub(crate) fn count_decode_error(drops: &mut DropCounters, e: DatagramError) {
    match e {
        DatagramError::NotSession | DatagramError::Version(_) => drops.wrong_version += 1,
        DatagramError::WrongSession(_) => drops.wrong_session += 1,
        _ => drops.malformed += 1,
    }
}
