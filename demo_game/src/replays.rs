//! The demo's replays: every match is recorded (into `--record FILE`, or into
//! the state directory, kept as `last-match.rtcreplay`), and `--replay FILE`
//! plays one back.

use std::path::{Path, PathBuf};

use bevy_rtcplay::RtcPlaySession;
use rtcplay::session::Replay;

use crate::app::BUILD;
use crate::game::ArenaInput;

/// Where recordings go when `--record` is not given.
pub fn replay_dir() -> PathBuf {
    crate::state_dir::state_dir().join("replays")
}

/// The file this process records into without `--record` (its own name, so
/// several demos on one machine never write into one file).
pub fn default_recording() -> PathBuf {
    replay_dir().join(format!("match-{}.rtcreplay", std::process::id()))
}

/// After the match: a default recording is kept as `last-match.rtcreplay`.
/// Returns where the replay is now.
pub fn keep(recorded: &Path, explicit: bool) -> PathBuf {
    if explicit {
        return recorded.to_path_buf();
    }
    let last = replay_dir().join("last-match.rtcreplay");
    match std::fs::rename(recorded, &last) {
        Ok(()) => last,
        Err(_) => recorded.to_path_buf(),
    }
}

/// Make sure a recording's directory exists.
pub fn prepare(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {} for the replay: {e}", dir.display())),
        _ => Ok(()),
    }
}

/// A replay file opened for playing: the session and what the file says.
pub struct OpenedReplay {
    /// The session that plays it.
    pub session: RtcPlaySession<ArenaInput>,
    /// Players in the recorded match.
    pub players: u8,
    /// One past the last recorded frame.
    pub end_frame: u32,
    /// The first recorded frame.
    pub start_frame: u32,
    /// Whether the recording ended cleanly.
    pub complete: bool,
}

/// Read `path` and check it is a replay of this build of the demo.
pub fn open(path: &Path) -> Result<OpenedReplay, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("--replay {}: {e}", path.display()))?;
    let replay = Replay::decode(&bytes).map_err(|e| format!("--replay {}: {e}", path.display()))?;
    let players = u8::try_from(replay.header().players.len())
        .ok()
        .filter(|n| (2..=4).contains(n))
        .ok_or_else(|| format!("--replay {}: not a match of 2-4 players", path.display()))?;
    let (start_frame, end_frame, complete) = (
        replay.start_frame(),
        replay.end_frame(),
        replay.is_complete(),
    );
    let session = RtcPlaySession::Replay(
        rtcplay::session::ReplaySession::new(replay, BUILD)
            .map_err(|e| format!("--replay {}: {e}", path.display()))?,
    );
    Ok(OpenedReplay {
        session,
        players,
        end_frame,
        start_frame,
        complete,
    })
}
