//! Configuring and starting sessions.

use std::marker::PhantomData;
use std::time::Duration;

use super::{Input, P2PSession, PlayerHandle, SessionError, SpectatorSession, SyncTestSession};
use crate::datagram::PeerId;

/// Where a player's inputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerType {
    /// Played on this endpoint.
    Local,
    /// Played on the remote peer.
    Remote(PeerId),
    /// A free seat (drop-in): no player yet. Its input is `Disconnected` from
    /// frame 0 until a player takes the seat
    /// ([`P2PSession::seat_player`](super::P2PSession::seat_player)); that player
    /// joins like a rejoining one, with a survivor's state.
    Vacant,
}

/// Every tunable of a session. Built with [`SessionBuilder`]; the defaults suit a
/// 60 Hz game.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Players in the match (1–16).
    pub num_players: usize,
    /// Frames per second the game simulates.
    pub fps: u32,
    /// Frames between a local input and the frame it applies to.
    pub input_delay: u32,
    /// Most frames the session may run ahead of confirmed remote inputs (0 = lockstep).
    pub max_prediction: u32,
    /// Silence after which peers are told the network is interrupted.
    pub disconnect_notify_start: Duration,
    /// Silence after which a peer is disconnected. Long by default (12 s) so a link
    /// that stalls and is restarted does not cost the match a player: the socket
    /// reports a peer that is really gone (its process ended) much sooner, and
    /// [`P2PSession::disconnect_peer`] hands that on.
    pub disconnect_timeout: Duration,
    /// Compare checksums every this many frames (0 = never).
    pub checksum_interval: u32,
    /// Round trips with every peer before the session runs.
    pub sync_round_trips: u32,
    /// How often sync datagrams are retried while synchronizing, and keepalives sent
    /// when idle, at most.
    pub sync_retry_interval: Duration,
    /// Idle keepalive interval (no datagram sent for this long).
    pub keepalive_interval: Duration,
    /// How often the RTT is measured.
    pub ping_interval: Duration,
    /// Largest encoded input accepted from a peer, in bytes.
    pub max_input_size: usize,
    /// Choose the input delay from measured RTT and jitter.
    pub adaptive_input_delay: bool,
    /// Upper bound for adaptive input delay.
    pub max_input_delay: u32,
    /// Spectators: when more than this many frames behind, catch up.
    pub spectator_catchup_threshold: u32,
    /// Spectators: frames advanced per call while catching up.
    pub spectator_catchup_speed: u32,
    /// Filters out datagrams of other matches or protocol versions.
    pub session_id: u16,
    /// Keep every confirmed input since frame 0 so spectators can join mid-match
    /// ([`P2PSession::add_spectator`]). Inputs are stored as runs of equal values:
    /// about 60 bytes each time a player's input changes, nothing while it is held
    /// (a player changing input 10 times a second: about 2 MB per hour); off by
    /// default.
    pub keep_input_history: bool,
    /// Largest game state (bytes) a rejoining session accepts from a survivor.
    pub max_state_size: usize,
    /// Frames a rejoining session simulates per tick while it catches up with
    /// the others after importing the state.
    pub rejoin_catchup_speed: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            num_players: 2,
            fps: 60,
            input_delay: 2,
            max_prediction: 8,
            disconnect_notify_start: Duration::from_millis(500),
            disconnect_timeout: Duration::from_secs(12),
            checksum_interval: 30,
            sync_round_trips: 3,
            sync_retry_interval: Duration::from_millis(50),
            keepalive_interval: Duration::from_millis(200),
            ping_interval: Duration::from_millis(100),
            max_input_size: 256,
            adaptive_input_delay: false,
            max_input_delay: 8,
            spectator_catchup_threshold: 8,
            spectator_catchup_speed: 2,
            session_id: 0,
            keep_input_history: false,
            max_state_size: 16 << 20,
            rejoin_catchup_speed: 8,
        }
    }
}

impl SessionConfig {
    /// Duration of one frame.
    pub fn frame_duration(&self) -> Duration {
        Duration::from_secs(1) / self.fps.max(1)
    }
}

/// Builds P2P, spectator and sync-test sessions.
///
/// ```
/// use rtcplay::session::{PlayerType, SessionBuilder};
/// use rtcplay::transport::PeerId;
///
/// let session = SessionBuilder::<u32>::new()
///     .with_num_players(2)
///     .with_input_delay(2)
///     .add_player(PlayerType::Local, 0)
///     .add_player(PlayerType::Remote(PeerId(7)), 1)
///     .start_p2p_session()
///     .expect("valid configuration");
/// assert_eq!(session.local_player_handles(), vec![0]);
/// ```
#[derive(Debug, Clone)]
pub struct SessionBuilder<I> {
    config: SessionConfig,
    players: Vec<(PlayerType, PlayerHandle)>,
    spectators: Vec<PeerId>,
    rejoin: Option<u32>,
    _input: PhantomData<fn() -> I>,
}

impl<I: Input> Default for SessionBuilder<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Input> SessionBuilder<I> {
    /// A builder with default settings.
    pub fn new() -> Self {
        SessionBuilder {
            config: SessionConfig::default(),
            players: Vec::new(),
            spectators: Vec::new(),
            rejoin: None,
            _input: PhantomData,
        }
    }

    /// The configuration so far.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Replace the whole configuration.
    pub fn with_config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// Number of players (default 2).
    pub fn with_num_players(mut self, n: usize) -> Self {
        self.config.num_players = n;
        self
    }

    /// Simulation rate (default 60).
    pub fn with_fps(mut self, fps: u32) -> Self {
        self.config.fps = fps;
        self
    }

    /// Input delay in frames (default 2).
    pub fn with_input_delay(mut self, frames: u32) -> Self {
        self.config.input_delay = frames;
        self
    }

    /// Prediction window in frames (default 8; 0 = lockstep).
    pub fn with_max_prediction(mut self, frames: u32) -> Self {
        self.config.max_prediction = frames;
        self
    }

    /// Interruption notice and disconnect timeout (defaults 500 ms / 2000 ms).
    pub fn with_disconnect_timeouts(mut self, notify: Duration, timeout: Duration) -> Self {
        self.config.disconnect_notify_start = notify;
        self.config.disconnect_timeout = timeout;
        self
    }

    /// Compare checksums every `frames` confirmed frames (default 30; 0 = off).
    pub fn with_checksum_interval(mut self, frames: u32) -> Self {
        self.config.checksum_interval = frames;
        self
    }

    /// Let the session pick the input delay from RTT and jitter.
    pub fn with_adaptive_input_delay(mut self, on: bool) -> Self {
        self.config.adaptive_input_delay = on;
        self
    }

    /// Session id shared by all peers of one match (e.g. a hash of the room name).
    pub fn with_session_id(mut self, id: u16) -> Self {
        self.config.session_id = id;
        self
    }

    /// Largest encoded input accepted from peers (default 256 bytes).
    pub fn with_max_input_size(mut self, bytes: usize) -> Self {
        self.config.max_input_size = bytes;
        self
    }

    /// Declare a player.
    pub fn add_player(mut self, kind: PlayerType, handle: PlayerHandle) -> Self {
        self.players.push((kind, handle));
        self
    }

    /// Send confirmed inputs to a spectator peer.
    pub fn add_spectator(mut self, peer: PeerId) -> Self {
        self.spectators.push(peer);
        self
    }

    fn validate(&self) -> Result<(), SessionError> {
        let c = &self.config;
        let bad = |m: &str| Err(SessionError::InvalidConfig(m.to_string()));
        if !(1..=super::protocol::MAX_PLAYERS).contains(&c.num_players) {
            return bad("num_players must be 1..=16");
        }
        if c.fps == 0 {
            return bad("fps must be positive");
        }
        if c.max_prediction > 64 || c.input_delay > 64 {
            return bad("max_prediction and input_delay must be at most 64 frames");
        }
        if c.disconnect_notify_start > c.disconnect_timeout {
            return bad("disconnect notice must not come after the timeout");
        }
        if c.max_input_size == 0 || c.max_input_size > 1024 {
            return bad("max_input_size must be 1..=1024 bytes");
        }
        Ok(())
    }

    /// Build a session that rejoins a running match instead of starting one: the
    /// local players come back under their old handles (the same player list as
    /// the original session). `incarnation` names this attempt and must differ
    /// from any earlier session of the same players in this match: take it from a
    /// random source or a clock. The session asks a survivor for the game state
    /// and returns it in a `Request::Import`; see `docs/session.md`, "Rejoining".
    pub fn rejoining(mut self, incarnation: u32) -> Self {
        self.rejoin = Some(incarnation);
        self
    }

    /// Start a peer-to-peer session. Every handle `0..num_players` must be declared
    /// exactly once.
    pub fn start_p2p_session(self) -> Result<P2PSession<I>, SessionError> {
        self.validate()?;
        let n = self.config.num_players;
        let mut kinds: Vec<Option<PlayerType>> = vec![None; n];
        for (kind, handle) in &self.players {
            match kinds.get_mut(*handle) {
                Some(slot @ None) => *slot = Some(*kind),
                Some(Some(_)) => {
                    return Err(SessionError::InvalidConfig(format!(
                        "player handle {handle} declared twice"
                    )))
                }
                None => {
                    return Err(SessionError::InvalidConfig(format!(
                        "player handle {handle} out of range 0..{n}"
                    )))
                }
            }
        }
        let kinds = kinds
            .into_iter()
            .enumerate()
            .map(|(h, k)| {
                k.ok_or_else(|| SessionError::InvalidConfig(format!("player {h} not declared")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !kinds.contains(&PlayerType::Local) {
            return Err(SessionError::InvalidConfig(
                "a P2P session needs at least one local player".into(),
            ));
        }
        Ok(P2PSession::new(
            self.config,
            kinds,
            self.spectators,
            self.rejoin,
        ))
    }

    /// Start a spectator session that follows `host`.
    pub fn start_spectator_session(
        self,
        host: PeerId,
    ) -> Result<SpectatorSession<I>, SessionError> {
        self.validate()?;
        Ok(SpectatorSession::new(self.config, host))
    }

    /// Start a sync-test session: every frame, re-simulate the last `check_distance`
    /// frames and compare checksums. All players are local.
    pub fn start_synctest_session(
        self,
        check_distance: u32,
    ) -> Result<SyncTestSession<I>, SessionError> {
        self.validate()?;
        if check_distance == 0 || check_distance > 64 {
            return Err(SessionError::InvalidConfig(
                "check_distance must be 1..=64".into(),
            ));
        }
        Ok(SyncTestSession::new(self.config, check_distance))
    }
}
