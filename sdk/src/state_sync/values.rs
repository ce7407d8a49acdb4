//! The values an endpoint keeps: its own (with recent versions, the bases of
//! deltas) and each peer's (the latest, and recent versions to apply deltas to).

use std::collections::VecDeque;

/// One key's value as its owner or a receiver holds it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Versions {
    /// Number of the latest version (0: none yet).
    pub seq: u32,
    /// The key was removed at `seq`.
    pub removed: bool,
    /// The owner's tick the latest version was set for.
    pub tick: u64,
    /// Recent versions, newest last: (number, encoded value).
    recent: VecDeque<(u32, Vec<u8>)>,
}

impl Versions {
    /// The latest value, unless removed.
    pub(crate) fn latest(&self) -> Option<&[u8]> {
        if self.removed {
            return None;
        }
        self.recent
            .back()
            .filter(|(s, _)| *s == self.seq)
            .map(|(_, v)| v.as_slice())
    }

    /// Version `seq`, if still kept.
    pub(crate) fn version(&self, seq: u32) -> Option<&[u8]> {
        self.recent
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, v)| v.as_slice())
    }

    /// Make `value` version `seq` (newer than the latest) of the owner's
    /// `tick`, keeping `keep` versions.
    pub(crate) fn push(&mut self, seq: u32, tick: u64, value: Vec<u8>, keep: usize) {
        self.seq = seq;
        self.tick = tick;
        self.removed = false;
        self.recent.push_back((seq, value));
        while self.recent.len() > keep.max(1) {
            self.recent.pop_front();
        }
    }

    /// Mark the key removed at version `seq`, the owner's `tick`.
    pub(crate) fn remove(&mut self, seq: u32, tick: u64) {
        self.seq = seq;
        self.tick = tick;
        self.removed = true;
        self.recent.clear();
    }
}
