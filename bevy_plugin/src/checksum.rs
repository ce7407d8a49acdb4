//! A small, stable hasher for checksums (FNV-1a): the same on every peer running the
//! same build.

use std::hash::{Hash, Hasher};

/// FNV-1a, 64 bit.
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
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
    let mut h = Fnv::default();
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
