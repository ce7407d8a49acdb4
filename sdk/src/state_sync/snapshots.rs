//! Timed samples of one peer's value, to show it smoothly between them.

use std::collections::VecDeque;

/// Samples kept per value: enough for a render delay of a second at 30 Hz.
const KEPT: usize = 32;

/// The recent samples of one value, each with the owner's tick it was set for
/// ([`StateSync::get_with_tick`](super::StateSync::get_with_tick)), to show it
/// at a fractional tick ([`StateSync::render_tick`](super::StateSync::render_tick)):
/// between two samples it is blended, past the newest it is extrapolated from
/// the last two for at most `max_extrapolation` ticks, then held.
///
/// ```
/// use rtcplay::state_sync::Snapshots;
///
/// let lerp = |a: &f32, b: &f32, t: f32| a + (b - a) * t;
/// let mut x = Snapshots::new();
/// x.push(10, 0.0_f32);
/// x.push(12, 4.0);
/// assert_eq!(x.sample(11.0, 0.0, lerp), Some(2.0)); // between the two
/// assert_eq!(x.sample(13.0, 2.0, lerp), Some(6.0)); // extrapolated
/// assert_eq!(x.sample(20.0, 2.0, lerp), Some(8.0)); // at most 2 ticks past
/// assert!(!x.push(11, 9.0)); // older than the newest: ignored
/// ```
#[derive(Debug, Clone)]
pub struct Snapshots<T> {
    samples: VecDeque<(u64, T)>,
}

impl<T> Default for Snapshots<T> {
    fn default() -> Self {
        Snapshots {
            samples: VecDeque::new(),
        }
    }
}

impl<T: Clone> Snapshots<T> {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the sample of `tick`; false (and ignored) unless newer than the newest.
    pub fn push(&mut self, tick: u64, value: T) -> bool {
        if self.samples.back().is_some_and(|(t, _)| *t >= tick) {
            return false;
        }
        self.samples.push_back((tick, value));
        while self.samples.len() > KEPT {
            self.samples.pop_front();
        }
        true
    }

    /// The newest sample.
    pub fn newest(&self) -> Option<&(u64, T)> {
        self.samples.back()
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &(u64, T)> {
        self.samples.iter()
    }

    /// Keep only the newest `n` samples.
    pub fn keep_newest(&mut self, n: usize) {
        while self.samples.len() > n {
            self.samples.pop_front();
        }
    }

    /// The value at tick `at`. `blend(a, b, t)` mixes two samples (`t` from 0
    /// at `a` to 1 at `b`; above 1 when extrapolating, so a linear blend
    /// extrapolates linearly). Before the oldest sample: the oldest.
    pub fn sample(
        &self,
        at: f64,
        max_extrapolation: f64,
        blend: impl Fn(&T, &T, f32) -> T,
    ) -> Option<T> {
        let (newest_tick, newest) = self.samples.back()?;
        let after = self.samples.partition_point(|(t, _)| (*t as f64) <= at);
        let (a, b, at) = match after {
            0 => return Some(self.samples[0].1.clone()),
            n if n < self.samples.len() => (&self.samples[n - 1], &self.samples[n], at),
            n if n >= 2 => {
                let limit = *newest_tick as f64 + max_extrapolation.max(0.0);
                (&self.samples[n - 2], &self.samples[n - 1], at.min(limit))
            }
            _ => return Some(newest.clone()),
        };
        Some(between(a, b, at, blend))
    }
}

/// The value at tick `at` on the line through samples `a` and `b` (`a` older).
pub(crate) fn between<T: Clone>(
    a: &(u64, T),
    b: &(u64, T),
    at: f64,
    blend: impl Fn(&T, &T, f32) -> T,
) -> T {
    let t = (at - a.0 as f64) / (b.0 - a.0) as f64;
    if t == 1.0 {
        return b.1.clone();
    }
    blend(&a.1, &b.1, t as f32)
}
