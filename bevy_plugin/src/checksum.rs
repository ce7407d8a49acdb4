//! A small, stable hasher for checksums (FNV-1a): the same on every peer running the
//! same game, whatever its platform (a desktop build and a browser build compare
//! checksums in one match).

use std::hash::{Hash, Hasher};

/// The hasher behind rollback checksums: 64-bit FNV-1a, with no seed, so the same
/// values hash the same in every process. Use it for any checksum you print or
/// compare across peers (`std`'s `DefaultHasher` makes no such promise).
///
/// Integers are hashed as little-endian bytes, and `usize`/`isize` — whose width
/// differs between a 64-bit desktop and 32-bit wasm — as 64-bit values. That
/// matters more than it looks: `#[derive(Hash)]` hashes every slice and array's
/// length as a `usize` and every enum's discriminant as an `isize`, so without it a
/// desktop peer and a browser peer disagree on the checksum of `[u8; 4]`.
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
    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_i16(&mut self, i: i16) {
        self.write(&i.to_le_bytes());
    }
    fn write_i32(&mut self, i: i32) {
        self.write(&i.to_le_bytes());
    }
    fn write_i64(&mut self, i: i64) {
        self.write(&i.to_le_bytes());
    }
    fn write_i128(&mut self, i: i128) {
        self.write(&i.to_le_bytes());
    }
    fn write_isize(&mut self, i: isize) {
        self.write_i64(i as i64);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(value: impl Hash) -> u64 {
        let mut hasher = StableHasher::default();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn lengths_and_discriminants_hash_as_64_bit_values() {
        // An array's length and an enum's discriminant go in as 8 bytes (what a
        // 32-bit wasm build must match), integers as little-endian bytes.
        let mut expected = StableHasher::default();
        expected.write(&4u64.to_le_bytes());
        expected.write(&[1, 2, 3, 4]);
        assert_eq!(hash([1u8, 2, 3, 4]), expected.finish());
        let mut expected = StableHasher::default();
        expected.write(&1i64.to_le_bytes());
        expected.write(&0x0102u16.to_le_bytes());
        assert_eq!(hash(Some(0x0102u16)), expected.finish());
    }

    #[test]
    fn checksums_are_pinned() {
        // Peers of different builds and platforms compare these: a change here
        // breaks cross-play and saved replays, so it must be on purpose.
        assert_eq!(
            hash(("arena", [3u8; 4], Some(7u32), 9usize)),
            0x6a9d_d2eb_4ff2_e91a
        );
    }
}
