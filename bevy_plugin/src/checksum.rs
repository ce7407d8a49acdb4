//! A small, stable hasher for checksums (FNV-1a): the same on every peer running the
//! same build.

use std::hash::{Hash, Hasher};

/// The hasher behind rollback checksums: 64-bit FNV-1a, with no seed, so the same
/// values hash the same in every process of the same build. Use it for any
/// checksum you print or compare across peers (`std`'s `DefaultHasher` makes no
/// such promise).
#[derive(Debug, Clone, Copy)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// How many confirmed checksums [`ConfirmedChecksums`] keeps.
const KEEP_CONFIRMED: usize = 64;

/// The plugin's state checksums of frames that can no longer change: the same
/// value every peer computes (and compares) for that frame, over every type
/// registered `*_with_checksum`. Use it to compare or print the final state of a
/// match, e.g. end at frame N and log `get(N)` on every peer.
///
/// Checksums are taken every `SessionConfig::checksum_interval` frames (P2P, 30 by
/// default; make it divide the frame you want) and every frame in sync-test; the
/// newest 64 are kept. Spectators compute none.
#[derive(bevy::prelude::Resource, Debug, Clone, Default)]
pub struct ConfirmedChecksums {
    /// Checksummed frames not confirmed yet (a rollback may still change them).
    pending: Vec<(u32, u64)>,
    confirmed: std::collections::VecDeque<(u32, u64)>,
}

impl ConfirmedChecksums {
    /// The checksum of confirmed frame `frame`, if it was checksummed and is kept.
    pub fn get(&self, frame: u32) -> Option<u64> {
        self.confirmed
            .iter()
            .find(|(f, _)| *f == frame)
            .map(|(_, sum)| *sum)
    }

    /// The newest confirmed checksum and its frame.
    pub fn latest(&self) -> Option<(u32, u64)> {
        self.confirmed.back().copied()
    }

    /// A checksum was computed for a saved frame (a re-simulation replaces it).
    pub(crate) fn saved(&mut self, frame: u32, total: u64) {
        self.pending.retain(|(f, _)| *f != frame);
        self.pending.push((frame, total));
    }

    /// Frames up to `confirmed` can no longer change.
    pub(crate) fn confirm(&mut self, confirmed: u32) {
        let (now_final, still_pending): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|(f, _)| *f <= confirmed);
        self.pending = still_pending;
        let mut now_final = now_final;
        now_final.sort_unstable();
        for entry in now_final {
            if self.confirmed.back().is_some_and(|(f, _)| *f >= entry.0) {
                continue;
            }
            self.confirmed.push_back(entry);
            if self.confirmed.len() > KEEP_CONFIRMED {
                self.confirmed.pop_front();
            }
        }
    }
}

/// Hash one value with its rollback id.
pub(crate) fn hash_item<T: Hash>(id: u64, value: &T) -> u64 {
    let mut h = StableHasher::default();
    id.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// The last path segment of a type name, generics kept: `game::Position` → `Position`.
pub(crate) fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    let short = base.rsplit("::").next().unwrap_or(base);
    format!("{short}{}", &full[base.len()..])
}
