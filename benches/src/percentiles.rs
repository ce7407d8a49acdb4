//! The one percentile definition of every benchmark here: HdrHistogram's
//! `value_at_quantile` (the smallest recorded value such that at least the
//! fraction `p` of all values are at most it), with 3 significant digits of
//! precision (a result may be up to 0.1 % above the sample it stands for). BENCHMARKS.md figures before 2026-12-03 used hand-written
//! definitions (floor(n·p) in `signal_load`, round((n−1)·p) in `transport-bench`);
//! they differ from this by at most one sample.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Percentile `p` (0..=1) of `samples`; zero for no samples.
pub fn duration_percentile(samples: &[Duration], p: f64) -> Duration {
    let nanos = samples
        .iter()
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Duration::from_nanos(value_at(nanos, p))
}

/// Percentile `p` (0..=1) of `samples` in any unit, kept to 3 decimal places of
/// that unit (microseconds in µs, milliseconds in ms); NaN for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let thousandths = samples.iter().map(|v| (v.max(0.0) * 1000.0).round() as u64);
    value_at(thousandths, p) as f64 / 1000.0
}

fn value_at(values: impl Iterator<Item = u64>, p: f64) -> u64 {
    let Ok(mut histogram) = Histogram::<u64>::new(3) else {
        return 0;
    };
    for value in values {
        // Auto-resizing histograms only fail to record on overflow of the count.
        let _ = histogram.record(value);
    }
    if histogram.is_empty() {
        return 0;
    }
    histogram.value_at_quantile(p.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred() {
        // 3 significant digits: each answer within 0.1 % of the exact sample.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001;
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!(close(percentile(&values, 0.5), 50.0));
        assert!(close(percentile(&values, 0.99), 99.0));
        assert!(close(percentile(&values, 1.0), 100.0));
        assert!(close(percentile(&[7.25], 0.5), 7.25));
        assert!(percentile(&[], 0.5).is_nan());
        let durations: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p90 = duration_percentile(&durations, 0.9);
        // 3 significant digits: within 0.1 % of the exact 90 ms.
        assert!(
            p90 >= Duration::from_millis(90) && p90 <= Duration::from_micros(90_090),
            "{p90:?}"
        );
        assert_eq!(duration_percentile(&[], 0.5), Duration::ZERO);
    }
}
