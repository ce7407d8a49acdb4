//! Coming back to a match after a crash: the demo keeps the rejoin tokens the
//! signaling server gave it, per server and room, in a file only this user can
//! read; `--rejoin` tries them, newest first, until the server hands a seat back
//! (a token whose player is still connected is refused, so several demos of one
//! user in one room each find their own seat).

use std::fs;
use std::io::Write;
use std::path::PathBuf;

/// Tokens kept per room (the newest ones).
const KEEP: usize = 8;

/// Where the tokens of `room` on `url` are kept: `$RTCPLAY_DEMO_STATE_DIR`, else
/// `$XDG_STATE_HOME/rtcplay-demo`, else `~/.local/state/rtcplay-demo`, else the
/// temp directory.
pub fn token_file(url: &str, room: &str) -> PathBuf {
    let dir = crate::state_dir::state_dir();
    let safe: String = room
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    // FNV-1a of the server URL keeps rooms of different servers apart.
    let server = url.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    dir.join(format!("{safe}-{server:016x}.tokens"))
}

/// The kept tokens of `room` on `url`, newest first.
pub fn tokens(url: &str, room: &str) -> Vec<String> {
    let text = fs::read_to_string(token_file(url, room)).unwrap_or_default();
    let mut list: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.len() <= 128)
        .map(str::to_string)
        .collect();
    list.reverse();
    list
}

/// Keep `token` for `room` on `url`. Errors are printed, never fatal: the match
/// goes on, it just cannot be rejoined.
pub fn remember(url: &str, room: &str, token: &str) {
    let path = token_file(url, room);
    let mut list = tokens(url, room);
    list.retain(|t| t != token);
    list.insert(0, token.to_string());
    list.truncate(KEEP);
    list.reverse();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        for t in &list {
            writeln!(file, "{t}")?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        eprintln!("cannot keep the rejoin token in {}: {e}", path.display());
    }
}
