//! Byte-mask deltas between two encoded values of the same length: a bit per
//! byte says which bytes changed, then the new values of those bytes.

/// Encode `new` against `base`; `None` when the lengths differ or the delta
/// would not be smaller than the value itself.
pub(crate) fn encode(base: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    if base.len() != new.len() {
        return None;
    }
    let mut mask = vec![0u8; new.len().div_ceil(8)];
    let mut changed = Vec::new();
    for (i, (a, b)) in base.iter().zip(new).enumerate() {
        if a != b {
            mask[i / 8] |= 1 << (i % 8);
            changed.push(*b);
        }
    }
    if mask.len() + changed.len() >= new.len() {
        return None;
    }
    mask.extend_from_slice(&changed);
    Some(mask)
}

/// Apply a delta made by [`encode`] to `base`; `None` if it does not fit.
pub(crate) fn apply(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    let mask_len = base.len().div_ceil(8);
    let (mask, mut changed) = (delta.get(..mask_len)?, delta.get(mask_len..)?);
    let mut out = base.to_vec();
    for (i, byte) in out.iter_mut().enumerate() {
        if mask[i / 8] & (1 << (i % 8)) != 0 {
            let (first, rest) = changed.split_first()?;
            *byte = *first;
            changed = rest;
        }
    }
    // Mask bits beyond the value, or bytes left over: not a delta of `base`.
    let spare = mask_len * 8 - base.len();
    let last = mask.last().copied().unwrap_or(0);
    if !changed.is_empty() || (spare > 0 && last >> (8 - spare) != 0) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_round_trip_and_bad_ones_are_refused() {
        let base = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        let mut new = base;
        new[3] = 40;
        new[10] = 0;
        let d = encode(&base, &new).expect("smaller");
        assert_eq!(d.len(), 2 + 2);
        assert_eq!(apply(&base, &d).as_deref(), Some(&new[..]));
        assert!(apply(&base, &d[..3]).is_none());
        let mut extra = d.clone();
        extra.push(1);
        assert!(apply(&base, &extra).is_none());
        let mut spare_bit = d.clone();
        spare_bit[1] |= 0x80;
        assert!(apply(&base, &spare_bit).is_none());
        assert!(encode(&base, &[1, 2]).is_none());
        // Everything changed: no gain.
        assert!(encode(&[0; 4], &[1; 4]).is_none());
    }
}
