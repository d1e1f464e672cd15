//! The embedded word list that generators draw from (gossip's words,
//! multicast's random chat lines, demos).

use rand::Rng;

/// Every word of the list.
pub fn all() -> &'static [&'static str] {
    static LIST: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| include_str!("words.txt").split_whitespace().collect())
}

/// One word at random.
pub fn pick(rng: &mut impl Rng) -> &'static str {
    let list = all();
    list[rng.random_range(0..list.len())]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_is_not_empty_and_has_no_blanks() {
        assert!(super::all().len() > 100);
        assert!(super::all().iter().all(|w| !w.trim().is_empty()));
    }
}
