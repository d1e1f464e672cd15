//! Rumor-mongering and anti-entropy knobs on the command line, shared by
//! `dsys gossip` and `dsys sim gossip`.

use std::time::Duration;

use clap::Args;

use super::Params;

#[derive(Args, Clone, Debug)]
pub struct Tuning {
    /// Neighbors pushed to per round: a number from 1, or `all`
    #[arg(long, default_value = "all")]
    pub fanout: String,
    /// Lose interest in a word with probability 1/K when a neighbor already knew it (K from 1)
    #[arg(long, default_value_t = 4)]
    pub k: u32,
    /// Gossip round interval (batching window)
    #[arg(long, default_value = "100ms", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub interval: Duration,
    /// Anti-entropy interval (digest exchange with the next neighbor of a shuffled cycle)
    #[arg(long, default_value = "2s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub anti_entropy_interval: Duration,
}

impl Tuning {
    pub fn params(&self) -> Result<Params, String> {
        let fanout = match self.fanout.as_str() {
            "all" => None,
            n => Some(
                n.parse::<usize>()
                    .ok()
                    .filter(|&f| f > 0)
                    .ok_or_else(|| format!("--fanout {n:?}: a number from 1, or `all`"))?,
            ),
        };
        if self.k == 0 {
            return Err("--k 0: k is a number from 1 (1/k is a probability)".into());
        }
        if self.interval.is_zero() || self.anti_entropy_interval.is_zero() {
            return Err("--interval and --anti-entropy-interval must be above zero".into());
        }
        Ok(Params {
            fanout,
            k: self.k,
            interval: self.interval,
            anti_entropy: self.anti_entropy_interval,
            ..Default::default()
        })
    }
}
