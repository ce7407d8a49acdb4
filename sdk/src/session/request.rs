//! What the session asks the game to do.

use super::Frame;

/// Whether an input is known for sure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputStatus {
    /// The player's real input for this frame.
    Confirmed,
    /// A guess (the player's last known input); may be corrected by a rollback.
    Predicted,
    /// The player has left; the input is the default value.
    Disconnected,
}

/// One step the game must carry out, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<I> {
    /// Store the current game state as the state at the start of `frame`
    /// (and, for desync detection, report its checksum with
    /// `report_checksum(frame, ..)`).
    Save {
        /// The frame this state belongs to.
        frame: Frame,
    },
    /// Restore the state saved for `frame`.
    Load {
        /// The frame to return to.
        frame: Frame,
    },
    /// Only on a survivor of a match a player rejoins: serialize the state saved
    /// for `frame` (the same one a `Load { frame }` would restore) and hand the
    /// bytes to [`P2PSession::export_state`](super::P2PSession::export_state).
    /// The session sends them to the rejoining player.
    Export {
        /// The confirmed frame whose saved state is wanted.
        frame: Frame,
    },
    /// Only on a rejoining session: replace the game state with `state` (bytes a
    /// survivor's game produced for an `Export`); it is the state at the start of
    /// `frame`. Always the first request of the call that returns it.
    Import {
        /// The frame the state belongs to.
        frame: Frame,
        /// The exported state.
        state: Vec<u8>,
    },
    /// Simulate `frame` with one input per player, in player-handle order.
    Advance {
        /// The frame being simulated; afterwards the state is at `frame + 1`.
        frame: Frame,
        /// Every player's input and its status.
        inputs: Vec<(I, InputStatus)>,
    },
}
