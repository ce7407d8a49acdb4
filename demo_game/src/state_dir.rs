//! Where the demo keeps what outlives a run (rejoin tokens, replays).

use std::path::PathBuf;

/// `$RTCPLAY_DEMO_STATE_DIR`, else `$XDG_STATE_HOME/rtcplay-demo`, else
/// `~/.local/state/rtcplay-demo`, else the temp directory.
pub fn state_dir() -> PathBuf {
    std::env::var_os("RTCPLAY_DEMO_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("rtcplay-demo"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/rtcplay-demo"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("rtcplay-demo"))
}
