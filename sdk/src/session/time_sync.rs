//! Time synchronization: how far ahead of its peers this session runs, and the
//! smooth tick-rate change that closes the gap without skipping frames.

use std::collections::VecDeque;

/// Advice on the game's tick rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickRateAdvice {
    /// Average frames this peer runs ahead of the slowest remote peer
    /// (half the advantage difference, as in GGPO). Negative: behind.
    pub frames_ahead: f32,
    /// Multiply the nominal tick rate by this (e.g. 0.97 = run 3 % slower).
    pub speed: f32,
}

impl Default for TickRateAdvice {
    fn default() -> Self {
        TickRateAdvice {
            frames_ahead: 0.0,
            speed: 1.0,
        }
    }
}

/// Averages frame-advantage samples over a window and turns them into advice.
#[derive(Debug)]
pub(crate) struct TimeSync {
    window: VecDeque<f32>,
    size: usize,
    advice: TickRateAdvice,
}

/// Slow down by this much per frame ahead …
const SLOWDOWN_PER_FRAME: f32 = 0.02;
/// … but never by more than this.
const MAX_SLOWDOWN: f32 = 0.05;
/// Ignore leads smaller than this (noise).
const DEADBAND: f32 = 0.75;

impl TimeSync {
    pub(crate) fn new(size: usize) -> Self {
        TimeSync {
            window: VecDeque::with_capacity(size),
            size: size.max(1),
            advice: TickRateAdvice::default(),
        }
    }

    /// Add one frame's sample: our advantage and the peer's (worst peer).
    /// Returns new advice when it changed noticeably.
    pub(crate) fn sample(&mut self, local_adv: f32, remote_adv: f32) -> Option<TickRateAdvice> {
        if self.window.len() == self.size {
            self.window.pop_front();
        }
        self.window.push_back((remote_adv - local_adv) / 2.0);
        let frames_ahead = self.window.iter().sum::<f32>() / self.window.len() as f32;
        let speed = if frames_ahead > DEADBAND {
            1.0 - (frames_ahead * SLOWDOWN_PER_FRAME).min(MAX_SLOWDOWN)
        } else {
            1.0
        };
        // Quantize so the game is not told about every tiny wobble.
        let speed = (speed * 100.0).round() / 100.0;
        let changed = (speed - self.advice.speed).abs() > 0.005;
        self.advice = TickRateAdvice {
            frames_ahead,
            speed,
        };
        changed.then_some(self.advice)
    }

    pub(crate) fn advice(&self) -> TickRateAdvice {
        self.advice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ahead_means_slightly_slower_never_skipping() {
        let mut ts = TimeSync::new(10);
        for _ in 0..10 {
            ts.sample(-3.0, 3.0);
        }
        let advice = ts.advice();
        assert!((advice.frames_ahead - 3.0).abs() < 1e-3);
        assert!((0.94..=0.98).contains(&advice.speed), "{advice:?}");
        for _ in 0..10 {
            ts.sample(0.0, 0.0);
        }
        assert_eq!(ts.advice().speed, 1.0);
        for _ in 0..10 {
            ts.sample(5.0, -5.0);
        }
        assert_eq!(
            ts.advice().speed,
            1.0,
            "the peer behind never speeds up alone"
        );
    }
}
