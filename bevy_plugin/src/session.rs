//! The session resource: which rtcplay session drives the app, and its transport.

use std::time::Duration;

use bevy::prelude::*;
use rtcplay::session::{
    Checksum, Frame, Input, P2PSession, PlayerHandle, ReplayError, ReplaySession, Request,
    SessionBuilder, SessionConfig, SessionError, SessionEvent, SpectatorSession, SyncTestSession,
};
use rtcplay::transport::Transport;

/// Errors of the Bevy layer.
#[derive(Debug, thiserror::Error)]
pub enum RtcPlayError {
    /// The session refused a call or configuration.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A replay file cannot be played.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A replay file cannot be read or written.
    #[error("replay file {path}: {message}")]
    ReplayFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A transport the app can own.
pub type BoxedTransport = Box<dyn Transport + Send + Sync>;

/// The session that drives the app. Insert it as a resource (at startup or later,
/// e.g. once a WebRTC room is connected); remove it to stop.
#[derive(Resource)]
pub enum RtcPlaySession<I> {
    /// Peer-to-peer play over a transport.
    P2P {
        /// The session.
        session: P2PSession<I>,
        /// Its datagram transport (the WebRTC socket, or an in-memory network).
        transport: BoxedTransport,
    },
    /// Watching a host.
    Spectator {
        /// The session.
        session: SpectatorSession<I>,
        /// Its datagram transport.
        transport: BoxedTransport,
    },
    /// Determinism check on one machine: every frame is re-simulated and compared.
    SyncTest(SyncTestSession<I>),
    /// Playing a recorded match back (see [`RtcPlaySession::replay_file`] and
    /// [`ReplayControl`](crate::ReplayControl)).
    Replay(ReplaySession<I>),
}

impl<I: Input> RtcPlaySession<I> {
    /// Wrap a P2P session and its transport.
    pub fn p2p(session: P2PSession<I>, transport: impl Transport + Send + Sync + 'static) -> Self {
        RtcPlaySession::P2P {
            session,
            transport: Box::new(transport),
        }
    }

    /// Wrap a spectator session and its transport.
    pub fn spectator(
        session: SpectatorSession<I>,
        transport: impl Transport + Send + Sync + 'static,
    ) -> Self {
        RtcPlaySession::Spectator {
            session,
            transport: Box::new(transport),
        }
    }

    /// A sync-test session for `players` local players that re-simulates the last
    /// `check_distance` frames every frame, at the default 60 Hz.
    pub fn sync_test(players: usize, check_distance: u32) -> Result<Self, RtcPlayError> {
        let config = SessionConfig {
            num_players: players,
            ..SessionConfig::default()
        };
        Self::sync_test_with_config(config, check_distance)
    }

    /// A sync-test session with the given configuration (tick rate, players).
    pub fn sync_test_with_config(
        config: SessionConfig,
        check_distance: u32,
    ) -> Result<Self, RtcPlayError> {
        let session = SessionBuilder::<I>::new()
            .with_config(config)
            .start_synctest_session(check_distance)?;
        Ok(RtcPlaySession::SyncTest(session))
    }

    /// Play the replay in `bytes`, recorded by build `build` of the game.
    pub fn replay(bytes: &[u8], build: &str) -> Result<Self, RtcPlayError> {
        Ok(RtcPlaySession::Replay(ReplaySession::from_bytes(
            bytes, build,
        )?))
    }

    /// Play the replay file at `path`, recorded by build `build` of the game.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn replay_file(
        path: impl AsRef<std::path::Path>,
        build: &str,
    ) -> Result<Self, RtcPlayError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| RtcPlayError::ReplayFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::replay(&bytes, build)
    }

    /// How long the app waits between frames now (P2P: with time-sync advice).
    pub(crate) fn frame_duration(&self) -> Duration {
        match self {
            RtcPlaySession::P2P { session, .. } => session.recommended_frame_duration(),
            RtcPlaySession::Replay(r) => r.frame_duration(),
            _ => self.nominal_frame_duration(),
        }
    }

    /// One frame at the session's tick rate.
    pub(crate) fn nominal_frame_duration(&self) -> Duration {
        match self {
            RtcPlaySession::P2P { session, .. } => session.config().frame_duration(),
            RtcPlaySession::Spectator { session, .. } => session.config().frame_duration(),
            RtcPlaySession::SyncTest(s) => s.config().frame_duration(),
            RtcPlaySession::Replay(r) => r.nominal_frame_duration(),
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        match self {
            RtcPlaySession::P2P { session, .. } => session.is_running(),
            RtcPlaySession::Spectator { session, .. } => session.is_running(),
            RtcPlaySession::SyncTest(_) | RtcPlaySession::Replay(_) => true,
        }
    }

    pub(crate) fn poll(&mut self, now: Duration) {
        match self {
            RtcPlaySession::P2P { session, transport } => session.poll(now, transport),
            RtcPlaySession::Spectator { session, transport } => session.poll(now, transport),
            RtcPlaySession::SyncTest(_) | RtcPlaySession::Replay(_) => {}
        }
    }

    pub(crate) fn local_handles(&self) -> Vec<PlayerHandle> {
        match self {
            RtcPlaySession::P2P { session, .. } => session.local_player_handles(),
            RtcPlaySession::Spectator { .. } | RtcPlaySession::Replay(_) => Vec::new(),
            RtcPlaySession::SyncTest(s) => (0..s.num_players()).collect(),
        }
    }

    pub(crate) fn add_local_input(
        &mut self,
        handle: PlayerHandle,
        input: I,
    ) -> Result<(), SessionError> {
        match self {
            RtcPlaySession::P2P { session, .. } => session.add_local_input(handle, input),
            RtcPlaySession::SyncTest(s) => s.add_local_input(handle, input),
            RtcPlaySession::Spectator { .. } | RtcPlaySession::Replay(_) => Ok(()),
        }
    }

    pub(crate) fn advance(&mut self, now: Duration) -> Result<Vec<Request<I>>, SessionError> {
        match self {
            RtcPlaySession::P2P { session, transport } => session.advance_frame(now, transport),
            RtcPlaySession::Spectator { session, transport } => {
                session.advance_frame(now, transport)
            }
            RtcPlaySession::SyncTest(s) => s.advance_frame(),
            RtcPlaySession::Replay(r) => Ok(r.advance_frame()),
        }
    }

    pub(crate) fn wants_checksum(&self, frame: Frame) -> bool {
        match self {
            RtcPlaySession::P2P { session, .. } => {
                let interval = session.config().checksum_interval;
                interval > 0 && frame.is_multiple_of(interval)
            }
            RtcPlaySession::SyncTest(_) => true,
            RtcPlaySession::Replay(r) => r.wants_checksum(frame),
            RtcPlaySession::Spectator { .. } => false,
        }
    }

    pub(crate) fn report_checksum(&mut self, frame: Frame, checksum: Checksum) {
        match self {
            RtcPlaySession::P2P { session, .. } => session.report_checksum(frame, checksum),
            RtcPlaySession::SyncTest(s) => s.report_checksum(frame, checksum),
            RtcPlaySession::Replay(r) => r.report_checksum(frame, checksum),
            RtcPlaySession::Spectator { .. } => {}
        }
    }

    /// Hand an exported state to the session (P2P only; see `Request::Export`).
    pub(crate) fn export_state(
        &mut self,
        frame: Frame,
        state: Vec<u8>,
    ) -> Result<(), SessionError> {
        match self {
            RtcPlaySession::P2P { session, .. } => session.export_state(frame, state),
            RtcPlaySession::Replay(r) => r.export_state(frame, state),
            _ => Err(SessionError::StateNotRequested(frame)),
        }
    }

    /// Whether this is a P2P session rejoining its match that has not caught up.
    pub fn is_rejoining(&self) -> bool {
        matches!(self, RtcPlaySession::P2P { session, .. } if session.is_rejoining())
    }

    /// The frame the next advance simulates.
    pub fn current_frame(&self) -> Frame {
        match self {
            RtcPlaySession::P2P { session, .. } => session.current_frame(),
            RtcPlaySession::Spectator { session, .. } => session.current_frame(),
            RtcPlaySession::SyncTest(s) => s.current_frame(),
            RtcPlaySession::Replay(r) => r.current_frame(),
        }
    }

    /// The newest frame that can no longer change.
    pub fn confirmed_frame(&self) -> Option<Frame> {
        match self {
            RtcPlaySession::P2P { session, .. } => session
                .confirmed_frame()
                .map(|c| c.min(session.current_frame().saturating_sub(1))),
            RtcPlaySession::Spectator { session, .. } => session.current_frame().checked_sub(1),
            // Sync-test re-simulates the last `check_distance` frames; older ones
            // are final.
            RtcPlaySession::SyncTest(s) => s.current_frame().checked_sub(s.check_distance() + 1),
            // Every replayed frame is final.
            RtcPlaySession::Replay(r) => r.current_frame().checked_sub(1),
        }
    }

    pub(crate) fn drain_events(&mut self, out: &mut Vec<SessionEvent>) {
        match self {
            RtcPlaySession::P2P { session, .. } => out.extend(session.events()),
            RtcPlaySession::Spectator { session, .. } => out.extend(session.events()),
            RtcPlaySession::SyncTest(_) | RtcPlaySession::Replay(_) => {}
        }
    }

    /// Start recording this session's match into `take_replay_bytes`; see
    /// [`RtcPlayRecording`](crate::RtcPlayRecording), which does it for you.
    pub(crate) fn start_recording(&mut self, build: &str) -> Result<(), SessionError> {
        match self {
            RtcPlaySession::P2P { session, .. } => session.start_recording(build),
            RtcPlaySession::Spectator { session, .. } => session.start_recording(build),
            RtcPlaySession::SyncTest(s) => s.start_recording(build),
            RtcPlaySession::Replay(_) => Ok(()),
        }
    }

    pub(crate) fn take_replay_bytes(&mut self) -> Vec<u8> {
        match self {
            RtcPlaySession::P2P { session, .. } => session.take_replay_bytes(),
            RtcPlaySession::Spectator { session, .. } => session.take_replay_bytes(),
            RtcPlaySession::SyncTest(s) => s.take_replay_bytes(),
            RtcPlaySession::Replay(_) => Vec::new(),
        }
    }

    pub(crate) fn finish_recording(&mut self) {
        match self {
            RtcPlaySession::P2P { session, .. } => session.finish_recording(),
            RtcPlaySession::Spectator { session, .. } => session.finish_recording(),
            RtcPlaySession::SyncTest(s) => s.finish_recording(),
            RtcPlaySession::Replay(_) => {}
        }
    }
}
