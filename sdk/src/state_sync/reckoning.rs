//! Dead reckoning: send a value only when the receivers' extrapolation of it
//! has drifted.

use std::collections::HashMap;

use super::snapshots::between;
use super::Snapshots;

/// Decides, per key, whether a moving value must be sent this tick. Receivers
/// show a value with [`Snapshots`], extrapolating past the newest sample from
/// the last two; the owner keeps the last two samples it sent and sends a new
/// one only when that same extrapolation is off by more than `threshold`, or
/// when `max_quiet` ticks passed (so receivers hold a recent sample). A
/// receiver may miss a sample (a newer one replaces it in flight), so the
/// extrapolation from the sample before it is checked too. A value
/// moving steadily then costs a sample every `max_quiet` ticks instead of one
/// every tick. Send what it approves with
/// [`StateSync::set_sample`](super::StateSync::set_sample) at the tick
/// [`StateSync::stamp`](super::StateSync::stamp), and use the same
/// `max_extrapolation` on the receivers.
///
/// ```
/// use rtcplay::state_sync::DeadReckoning;
///
/// let lerp = |a: &f32, b: &f32, t: f32| a + (b - a) * t;
/// let dist = |a: &f32, b: &f32| (a - b).abs();
/// let mut reckoning = DeadReckoning::new(0.1, 30, 30);
/// let sent: Vec<u64> = (1..=20)
///     .filter(|&tick| {
///         let x = tick as f32; // steady motion: predictable from two samples
///         reckoning.should_send(7, tick, &x, lerp, dist)
///     })
///     .collect();
/// // Two samples, and a third in case one of them is missed.
/// assert_eq!(sent, vec![1, 2, 3]);
/// ```
#[derive(Debug, Clone)]
pub struct DeadReckoning<T> {
    sent: HashMap<u64, Snapshots<T>>,
    /// Largest error receivers may show, in the units of `distance`.
    pub threshold: f32,
    /// A sample is sent at least this often, ticks.
    pub max_quiet: u64,
    /// Ticks receivers extrapolate past their newest sample.
    pub max_extrapolation: u64,
}

impl<T: Clone> DeadReckoning<T> {
    /// A filter with these settings and nothing sent yet.
    pub fn new(threshold: f32, max_quiet: u64, max_extrapolation: u64) -> Self {
        DeadReckoning {
            sent: HashMap::new(),
            threshold,
            max_quiet: max_quiet.max(1),
            max_extrapolation,
        }
    }

    /// Whether `value`, the value at `key` at `tick`, must be sent; if so it
    /// counts as sent.
    pub fn should_send(
        &mut self,
        key: u64,
        tick: u64,
        value: &T,
        blend: impl Fn(&T, &T, f32) -> T,
        distance: impl Fn(&T, &T) -> f32,
    ) -> bool {
        let sent = self.sent.entry(key).or_default();
        let send = match sent.newest() {
            None => true,
            Some((last, _)) if *last >= tick => false,
            Some((last, _)) if tick - last >= self.max_quiet => true,
            Some((last, _)) => {
                let at = (tick as f64).min(last.saturating_add(self.max_extrapolation) as f64);
                let samples: Vec<&(u64, T)> = sent.iter().rev().collect();
                // Predicted from the last two samples, and with the one before
                // the last missed.
                let bases = [(samples.get(1), samples[0]), (samples.get(2), samples[0])];
                bases.iter().any(|(older, newest)| {
                    let predicted = match older {
                        Some(older) => between(older, newest, at, &blend),
                        None => newest.1.clone(),
                    };
                    distance(&predicted, value) > self.threshold
                })
            }
        };
        if send {
            sent.push(tick, value.clone());
            sent.keep_newest(3);
        }
        send
    }

    /// Forget `key` (removed, or handed to another owner).
    pub fn forget(&mut self, key: u64) {
        self.sent.remove(&key);
    }
}
