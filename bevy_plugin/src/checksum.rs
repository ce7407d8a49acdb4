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
