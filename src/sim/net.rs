//! The simulated network: latency distributions and the faults applied to
//! each message.

use std::time::Duration;

use rand::Rng as _;

use crate::node::Rng;

/// Per-message one-way delay.
#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    Constant(Duration),
    Uniform(Duration, Duration),
    /// `min` plus an exponential with the given mean.
    Exponential {
        min: Duration,
        mean: Duration,
    },
}

impl Latency {
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform(lo, hi) if hi > lo => {
                lo + Duration::from_nanos(rng.random_range(0..=(hi - lo).as_nanos() as u64))
            }
            Latency::Uniform(lo, _) => lo,
            Latency::Exponential { min, mean } => {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                min + mean.mul_f64(-u.ln())
            }
        }
    }

    /// Parses `5ms`, `1ms..10ms` (uniform) or `exp:2ms` / `exp:1ms+2ms`
    /// (exponential with mean 2ms, optionally after a 1ms floor).
    pub fn parse(s: &str) -> Result<Latency, String> {
        use crate::duration::parse as d;
        if let Some(rest) = s.strip_prefix("exp:") {
            return match rest.split_once('+') {
                Some((min, mean)) => Ok(Latency::Exponential {
                    min: d(min)?,
                    mean: d(mean)?,
                }),
                None => Ok(Latency::Exponential {
                    min: Duration::ZERO,
                    mean: d(rest)?,
                }),
            };
        }
        if let Some((lo, hi)) = s.split_once("..") {
            let (lo, hi) = (d(lo)?, d(hi)?);
            if hi < lo {
                return Err(format!(
                    "latency {s:?}: the upper bound is below the lower one"
                ));
            }
            return Ok(Latency::Uniform(lo, hi));
        }
        Ok(Latency::Constant(d(s)?))
    }
}

/// What the network does to every message.
#[derive(Clone, Debug)]
pub struct NetModel {
    pub latency: Latency,
    /// Probability that a message is silently lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Links are FIFO like the real transport's streams; set this to let
    /// messages on one link overtake each other (for protocols that do not
    /// need FIFO links).
    pub reorder: bool,
}

impl Default for NetModel {
    fn default() -> Self {
        NetModel {
            latency: Latency::Uniform(Duration::from_micros(200), Duration::from_millis(2)),
            loss: 0.0,
            duplicate: 0.0,
            reorder: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn parses_and_samples_within_bounds() {
        let mut rng = Rng::seed_from_u64(1);
        let u = Latency::parse("1ms..3ms").unwrap();
        for _ in 0..100 {
            let x = u.sample(&mut rng);
            assert!(x >= Duration::from_millis(1) && x <= Duration::from_millis(3));
        }
        let e = Latency::parse("exp:1ms+2ms").unwrap();
        let mean: f64 = (0..10_000)
            .map(|_| e.sample(&mut rng).as_secs_f64())
            .sum::<f64>()
            / 1e4;
        assert!((mean - 0.003).abs() < 0.0003, "mean {mean}");
        assert_eq!(
            Latency::parse("5ms"),
            Ok(Latency::Constant(Duration::from_millis(5)))
        );
        assert!(Latency::parse("3ms..1ms").is_err());
    }
}
