//! Dead reckoning: send a value only when the receivers' extrapolation of it
//! has drifted.

use std::collections::HashMap;

use super::snapshots::between;
use super::Snapshots;

/// Decides, per key, when a moving value must be sent. Receivers show a value
/// with [`Snapshots`], extrapolating past the newest sample from the last two;
/// the owner keeps the last samples it sent and sends a new one only when that
/// same extrapolation is off by more than `threshold`, or when `max_quiet`
/// ticks passed (so receivers hold a recent sample). A value moving steadily
/// then costs a sample every `max_quiet` ticks instead of one every tick.
///
/// - When the motion turns, the sample sent is the last one still on the old
///   course (the previous tick's), and the new course follows next tick: a
///   receiver interpolating between them shows the turn where it happened
///   instead of cutting the corner. (Receivers therefore need a render delay
///   of two ticks beyond latency and jitter: the default.)
/// - A receiver may miss a sample (a newer one replaces it in flight), so the
///   extrapolation from the sample before it is checked too.
///
/// Send what it returns with
/// [`StateSync::set_sample`](super::StateSync::set_sample) (at the tick it
/// says; call it with [`StateSync::stamp`](super::StateSync::stamp)) and use
/// the same `max_extrapolation` on the receivers.
///
/// ```
/// use rtcplay::state_sync::DeadReckoning;
///
/// let lerp = |a: &f32, b: &f32, t: f32| a + (b - a) * t;
/// let dist = |a: &f32, b: &f32| (a - b).abs();
/// let mut reckoning = DeadReckoning::new(0.1, 30, 30);
/// // Steady motion, then a turn after tick 10.
/// let x = |tick: u64| if tick <= 10 { tick as f32 } else { 10.0 - (tick - 10) as f32 };
/// let sent: Vec<u64> = (1..=20)
///     .filter_map(|tick| reckoning.sample(7, tick, &x(tick), lerp, dist))
///     .map(|(tick, _)| tick)
///     .collect();
/// // Two samples and a third in case one is missed; at the turn, the last
/// // tick on the old course, then the new course (twice, as at the start).
/// assert_eq!(sent, vec![1, 2, 3, 10, 12, 13]);
/// ```
#[derive(Debug, Clone)]
pub struct DeadReckoning<T> {
    keys: HashMap<u64, Track<T>>,
    /// Largest error receivers may show, in the units of `distance`.
    pub threshold: f32,
    /// A sample is sent at least this often, ticks.
    pub max_quiet: u64,
    /// Ticks receivers extrapolate past their newest sample.
    pub max_extrapolation: u64,
}

/// What the owner knows of one key.
#[derive(Debug, Clone)]
struct Track<T> {
    /// The last samples sent.
    sent: Snapshots<T>,
    /// The value of the last call: its tick, and whether it was on course.
    previous: Option<(u64, T, bool)>,
}

impl<T> Default for Track<T> {
    fn default() -> Self {
        Track {
            sent: Snapshots::default(),
            previous: None,
        }
    }
}

impl<T: Clone> DeadReckoning<T> {
    /// A filter with these settings and nothing sent yet.
    pub fn new(threshold: f32, max_quiet: u64, max_extrapolation: u64) -> Self {
        DeadReckoning {
            keys: HashMap::new(),
            threshold,
            max_quiet: max_quiet.max(1),
            max_extrapolation,
        }
    }

    /// `value` is the value at `key` at `tick` (call it every tick the value
    /// exists): the sample to send now, if one is due — `(tick, value)` of
    /// now or of the previous tick. What it returns counts as sent.
    pub fn sample(
        &mut self,
        key: u64,
        tick: u64,
        value: &T,
        blend: impl Fn(&T, &T, f32) -> T,
        distance: impl Fn(&T, &T) -> f32,
    ) -> Option<(u64, T)> {
        let track = self.keys.entry(key).or_default();
        let last = track.sent.newest().map(|(t, _)| *t);
        let off = last.is_some_and(|last| {
            let at = (tick as f64).min(last.saturating_add(self.max_extrapolation) as f64);
            let samples: Vec<&(u64, T)> = track.sent.iter().rev().collect();
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
        });
        let due = match last {
            None => Some((tick, value.clone())),
            Some(last) if last >= tick => None,
            Some(last) if tick - last >= self.max_quiet => Some((tick, value.clone())),
            Some(last) if off => match &track.previous {
                // The course changed since the previous tick: its value is the turn.
                Some((t, v, true)) if *t + 1 == tick && *t > last => Some((*t, v.clone())),
                _ => Some((tick, value.clone())),
            },
            Some(_) => None,
        };
        track.previous = Some((tick, value.clone(), !off));
        if let Some((t, v)) = &due {
            track.sent.push(*t, v.clone());
            track.sent.keep_newest(3);
        }
        due
    }

    /// Forget `key` (removed, or handed to another owner).
    pub fn forget(&mut self, key: u64) {
        self.keys.remove(&key);
    }
}
