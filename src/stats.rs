//! Summaries of measured samples: percentiles and the one-line latency
//! summaries the reports print.

use std::time::Duration;

/// The `p` quantile (0.0..=1.0) of `sorted` (ascending), by nearest rank;
/// the default value when there are no samples.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `median 1.2ms, p99 3.4ms, max 5.6ms` for sorted durations, with the
/// quantiles asked for (`0.5` is called median, `1.0` max).
pub fn summary(sorted: &[Duration], quantiles: &[f64]) -> String {
    quantiles
        .iter()
        .map(|&q| {
            let label = if q == 0.5 {
                "median".to_string()
            } else if q == 1.0 {
                "max".to_string()
            } else {
                format!("p{}", (q * 100.0).round() as u32)
            };
            format!("{label} {}", ms(percentile(sorted, q)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration in milliseconds, with precision where it matters.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v < 10.0 {
        format!("{v:.2}ms")
    } else if v < 100.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.0}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile::<u64>(&[], 0.5), 0);
        let d: Vec<Duration> = (1..=3).map(Duration::from_millis).collect();
        assert_eq!(summary(&d, &[0.5, 1.0]), "median 2.00ms, max 3.00ms");
    }
}
