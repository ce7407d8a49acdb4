//! Errors of the session layer.

use super::{Frame, PlayerHandle};

/// What went wrong in a session call. None of these come from the network: bad
/// datagrams are dropped and counted (see [`DropCounters`](super::DropCounters)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The builder was given an impossible configuration.
    #[error("invalid session configuration: {0}")]
    InvalidConfig(String),
    /// The handle does not name a player of the right kind.
    #[error("player handle {0} is not a local player of this session")]
    NotLocalPlayer(PlayerHandle),
    /// A local player's input is missing for this frame.
    #[error("no local input for player {0} this frame: call add_local_input first")]
    MissingLocalInput(PlayerHandle),
    /// The input could not be serialized, or is too large.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The session is still synchronizing with its peers; call `poll` until running.
    #[error("the session is not synchronized with its peers yet")]
    NotSynchronized,
    /// Advancing would predict further than the prediction window allows: skip this
    /// frame (keep calling) until remote inputs arrive.
    #[error("prediction threshold reached: waiting for remote inputs")]
    PredictionThreshold,
    /// A spectator has no confirmed inputs for its next frame yet.
    #[error("waiting for the host's inputs")]
    WaitingForInputs,
    /// A spectator cannot join: the inputs it needs (from frame 0) are no longer
    /// held. Set [`SessionConfig::keep_input_history`](super::SessionConfig) to let
    /// spectators join at any time.
    #[error(
        "a spectator cannot join at frame {current}: inputs before frame {oldest} are discarded (enable SessionConfig::keep_input_history)"
    )]
    HistoryDiscarded {
        /// The session's current frame.
        current: Frame,
        /// The oldest frame whose inputs are still held.
        oldest: Frame,
    },
    /// The peer already takes part in the session.
    #[error("{0} is already a player or spectator of this session")]
    PeerExists(crate::datagram::PeerId),
    /// `seat_player` named a seat that is not vacant.
    #[error("player handle {0} is not a vacant seat of this session")]
    NotVacant(PlayerHandle),
    /// `export_state` was called for a frame no `Request::Export` asked for.
    #[error("no Request::Export asked for the state of frame {0}")]
    StateNotRequested(Frame),
    /// `start_recording` came after the match's first frame: a replay must
    /// start from a state the game can reproduce (frame 0, or a rejoining
    /// session's imported state).
    #[error("cannot start recording at frame {0}: start before the first frame (or, rejoining, before the state arrives)")]
    RecordingTooLate(Frame),
    /// Sync-test found a frame whose re-simulation gave a different checksum.
    #[error(
        "sync test: frame {frame} checksum {original:#018x} on first run, {resimulated:#018x} on re-simulation (parts differing: {parts:?})"
    )]
    MismatchedChecksum {
        /// The frame whose state differs.
        frame: Frame,
        /// Checksum when the frame was first simulated.
        original: u64,
        /// Checksum after re-simulating it.
        resimulated: u64,
        /// Names of the checksum parts that differ.
        parts: Vec<String>,
    },
}
