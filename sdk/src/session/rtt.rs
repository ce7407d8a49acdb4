//! Smoothed round-trip time and jitter (RFC 6298 style).

use std::time::Duration;

/// Smoothed RTT and its mean deviation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let dev = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + dev) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// Smoothed round-trip time (zero before the first sample).
    pub(crate) fn rtt(&self) -> Duration {
        self.srtt.unwrap_or_default()
    }

    /// Mean deviation of the round-trip time.
    pub(crate) fn jitter(&self) -> Duration {
        self.rttvar
    }

    pub(crate) fn has_sample(&self) -> bool {
        self.srtt.is_some()
    }
}
