//! Replays: every match can be recorded as it is confirmed and played back
//! deterministically, frame by frame (see `docs/replays.md`).
//!
//! - a session records with `start_recording(build)`; each
//!   `take_replay_bytes()` returns the bytes to append to the file, written as
//!   frames are confirmed, so a crash leaves a file that plays up to its last
//!   few seconds;
//! - [`Replay::decode`] reads a file (clear errors for damaged, foreign or
//!   newer files); [`ReplaySession`] plays it through the game with pause,
//!   step, speed and seek, and verifies the recorded checksums.

mod format;
mod player;
mod recorder;

pub use format::{Replay, ReplayError, ReplayHeader, REPLAY_FORMAT_VERSION, REPLAY_MAGIC};
pub use player::{ReplayEvent, ReplayMismatch, ReplaySession, MAX_SPEED, MIN_SPEED};
pub(crate) use recorder::{checksum_spacing, Recording};
