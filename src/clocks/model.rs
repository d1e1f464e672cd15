//! The model's parameters as a user gives them: the rates machines pick
//! from (`--rates 1..6` or `--rates 1,3,6`) and how a tick without a message
//! chooses what to do (`--event-range 10`, or `--internal-prob 0.7`).

use std::fmt;

/// Where each machine's rate (ticks per second) comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rates {
    /// A whole number drawn uniformly from `lo..=hi`.
    Range { lo: u32, hi: u32 },
    /// One of these, drawn uniformly.
    List(Vec<u32>),
}

/// The fastest rate the model takes: beyond it the "slow, visible machine"
/// of the model is gone, and a real node's ticks would be noise.
pub const MAX_RATE: u32 = 1000;

impl Rates {
    pub fn pick(&self, rng: &mut impl rand::Rng) -> u32 {
        match self {
            Rates::Range { lo, hi } => rng.random_range(*lo..=*hi),
            Rates::List(l) => l[rng.random_range(0..l.len())],
        }
    }

    pub fn min(&self) -> u32 {
        match self {
            Rates::Range { lo, .. } => *lo,
            Rates::List(l) => l.iter().copied().min().unwrap_or(1),
        }
    }

    pub fn max(&self) -> u32 {
        match self {
            Rates::Range { hi, .. } => *hi,
            Rates::List(l) => l.iter().copied().max().unwrap_or(1),
        }
    }
}

impl fmt::Display for Rates {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Rates::Range { lo, hi } => write!(f, "{lo}..{hi}"),
            Rates::List(l) => {
                let s: Vec<String> = l.iter().map(u32::to_string).collect();
                f.write_str(&s.join(","))
            }
        }
    }
}

fn rate(s: &str) -> Result<u32, String> {
    let r: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of ticks per second"))?;
    if r == 0 || r > MAX_RATE {
        return Err(format!(
            "a rate of {r} ticks per second is outside 1..{MAX_RATE}"
        ));
    }
    Ok(r)
}

/// Parses `--rates`: `LO..HI` (inclusive, like the assignment's 1..6) or a
/// list `A,B,C`.
pub fn parse_rates(s: &str) -> Result<Rates, String> {
    if let Some((lo, hi)) = s.split_once("..") {
        let (lo, hi) = (rate(lo)?, rate(hi.trim_start_matches('='))?);
        if lo > hi {
            return Err(format!("{s:?}: the range is empty ({lo} > {hi})"));
        }
        return Ok(Rates::Range { lo, hi });
    }
    let list = s.split(',').map(rate).collect::<Result<Vec<_>, _>>()?;
    Ok(Rates::List(list))
}

/// What a tick without a message does, drawn at each such tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Draw {
    /// The assignment's rule: a number in `1..=range`; 1, 2, 3 are sends,
    /// the rest internal events.
    Range(u32),
    /// An internal event with this probability, else one of the three
    /// sends, equally likely (`Range(r)` is `Internal((r - 3) / r)`).
    Internal(f64),
}

/// What a machine does with a tick that finds its queue empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// 1: to one other machine (the next one in the config, after this one).
    SendNext,
    /// 2: to the other machine (with more than three, another one at random).
    SendOther,
    /// 3: to every other machine.
    SendAll,
    Internal,
}

impl Draw {
    pub fn draw(&self, rng: &mut impl rand::Rng) -> Action {
        let n = match *self {
            Draw::Range(r) => rng.random_range(1..=r),
            Draw::Internal(p) => {
                if rng.random_bool(p) {
                    return Action::Internal;
                }
                rng.random_range(1..=3)
            }
        };
        match n {
            1 => Action::SendNext,
            2 => Action::SendOther,
            3 => Action::SendAll,
            _ => Action::Internal,
        }
    }

    /// The probability of each of the three sends, and of an internal event.
    pub fn probabilities(&self) -> (f64, f64) {
        match *self {
            Draw::Range(r) => {
                // `--event-range` is at least 3: every send kind can happen.
                let each = 1.0 / r as f64;
                (each, 1.0 - 3.0 * each)
            }
            Draw::Internal(p) => ((1.0 - p) / 3.0, p),
        }
    }

    /// `event_range` and `internal_prob` as the `setup` event writes them.
    pub fn describe(&self) -> (Option<u32>, f64) {
        match *self {
            Draw::Range(r) => (Some(r), self.probabilities().1),
            Draw::Internal(p) => (None, p),
        }
    }
}

impl fmt::Display for Draw {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Draw::Range(r) => write!(
                f,
                "event range 1..{r} (internal {:.0}%)",
                self.probabilities().1 * 100.0
            ),
            Draw::Internal(p) => write!(f, "internal probability {:.0}%", p * 100.0),
        }
    }
}

/// Parses `--internal-prob`.
pub fn parse_prob(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a probability (a number from 0 to 1)"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("{p} is not a probability: it must be from 0 to 1"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rates_parse_as_ranges_or_lists_and_bad_ones_say_why() {
        assert_eq!(parse_rates("1..6"), Ok(Rates::Range { lo: 1, hi: 6 }));
        assert_eq!(parse_rates("2..=4"), Ok(Rates::Range { lo: 2, hi: 4 }));
        assert_eq!(parse_rates("1,3,6"), Ok(Rates::List(vec![1, 3, 6])));
        assert_eq!(parse_rates("5"), Ok(Rates::List(vec![5])));
        assert!(parse_rates("6..1").unwrap_err().contains("empty"));
        assert!(parse_rates("0..3").unwrap_err().contains("outside"));
        assert!(parse_rates("a,b").unwrap_err().contains("\"a\""));
    }

    #[test]
    fn draws_follow_the_assignments_rule() {
        let mut rng = crate::node::Rng::seed_from_u64(1);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[Draw::Range(10).draw(&mut rng) as usize] += 1;
        }
        // 1, 2, 3 each a tenth; internal seven tenths.
        for c in &counts[..3] {
            assert!((9_000..11_000).contains(c), "{counts:?}");
        }
        assert!((68_000..72_000).contains(&counts[3]), "{counts:?}");
        assert_eq!(Draw::Range(10).probabilities(), (0.1, 0.7));
        assert_eq!(Draw::Range(4).probabilities().1, 0.25);
        let all_internal = (0..100).all(|_| Draw::Internal(1.0).draw(&mut rng) == Action::Internal);
        assert!(all_internal);
        let rates = parse_rates("1..6").unwrap();
        let picks: std::collections::BTreeSet<u32> =
            (0..200).map(|_| rates.pick(&mut rng)).collect();
        assert_eq!(picks.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    }
}
