//! LIST's account patterns: `*` any run of characters, `?` exactly one,
//! anything else itself; whole-name and case-sensitive.
//!
//! A pattern is compiled once per request into a bit-parallel automaton
//! (bit `i` of the state: "the first `i` pattern items are matched"), so
//! matching a name costs a few word operations per character of the name,
//! whatever the pattern: no backtracking, and a request's work is bounded
//! by (accounts × name length). A pattern that would backtrack
//! exponentially in a naive matcher (`**…*b`) is just another state here.

use super::service::MAX_NAME;

/// Longest pattern, in bytes.
pub const MAX_PATTERN: usize = 4 * MAX_NAME;

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// Per ASCII byte: the items (literal or `?`) it can advance past.
    advance: [u128; 128],
    /// The items that are `*`.
    stars: u128,
    /// The bit of "everything matched".
    done: u128,
    /// More literal characters than a name can hold: matches nothing.
    impossible: bool,
}

/// Why a pattern is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternError {
    TooLong(usize),
    BadChar(char),
}

/// The characters a pattern may hold besides `*` and `?`: those of names.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

impl Pattern {
    /// Compiles `pattern` (empty: every name).
    pub fn new(pattern: &str) -> Result<Pattern, PatternError> {
        if pattern.len() > MAX_PATTERN {
            return Err(PatternError::TooLong(pattern.len()));
        }
        if let Some(c) = pattern
            .chars()
            .find(|&c| !(name_char(c) || c == '*' || c == '?'))
        {
            return Err(PatternError::BadChar(c));
        }
        let pattern = if pattern.is_empty() { "*" } else { pattern };
        // Runs of `*` mean one `*`.
        let mut items: Vec<u8> = Vec::with_capacity(pattern.len());
        for b in pattern.bytes() {
            if !(b == b'*' && items.last() == Some(&b'*')) {
                items.push(b);
            }
        }
        let fixed = items.iter().filter(|&&b| b != b'*').count();
        let mut p = Pattern {
            advance: [0; 128],
            stars: 0,
            done: 0,
            impossible: fixed > MAX_NAME,
        };
        if p.impossible {
            return Ok(p);
        }
        // At most MAX_NAME fixed items and one star between each: 2 × 32 + 1
        // items, so every state fits in a u128.
        for (i, &b) in items.iter().enumerate() {
            let bit = 1u128 << i;
            match b {
                b'*' => p.stars |= bit,
                b'?' => p.advance.iter_mut().for_each(|a| *a |= bit),
                c => p.advance[usize::from(c)] |= bit,
            }
        }
        p.done = 1u128 << items.len();
        Ok(p)
    }

    /// A star may match nothing: from before it to after it.
    fn close(&self, s: u128) -> u128 {
        // Runs of stars were merged, so one step reaches past every star.
        s | ((s & self.stars) << 1)
    }

    /// Does the whole of `name` match?
    pub fn matches(&self, name: &str) -> bool {
        if self.impossible {
            return false;
        }
        let mut s = self.close(1);
        for b in name.bytes() {
            let Some(adv) = self.advance.get(usize::from(b)) else {
                return false; // not ASCII: no name holds it
            };
            s = self.close(((s & adv) << 1) | (s & self.stars));
            if s == 0 {
                return false;
            }
        }
        s & self.done != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Pattern::new(p).expect("a valid pattern").matches(n)
    }

    #[test]
    fn stars_questions_and_literals_match_whole_names() {
        assert!(m("al*", "alice") && m("al*", "al") && m("*", "x") && m("a?c", "abc"));
        assert!(!m("al*", "bob") && !m("a?c", "ac") && !m("a", "ab") && !m("b", "ab"));
        assert!(m("*e*", "bea") && m("**", "") && m("", "anyone"));
        assert!(m("*a*b*c", "xaybzc") && !m("*a*b*c", "xaybzcd"));
        assert!(m("?*?", "ab") && !m("?*?", "a"));
        assert!(!m("Al*", "alice"), "case-sensitive");
        assert!(m("a.b", "a.b") && !m("a.b", "axb"), "a dot is a dot");
    }

    #[test]
    fn agrees_with_a_plain_backtracking_matcher() {
        fn slow(p: &[u8], n: &[u8]) -> bool {
            match (p.first(), n.first()) {
                (None, None) => true,
                (Some(b'*'), _) => slow(&p[1..], n) || (!n.is_empty() && slow(p, &n[1..])),
                (Some(b'?'), Some(_)) => slow(&p[1..], &n[1..]),
                (Some(a), Some(b)) if a == b => slow(&p[1..], &n[1..]),
                _ => false,
            }
        }
        let alphabet = [b'a', b'b', b'*', b'?'];
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..20_000 {
            let p: Vec<u8> = (0..next() % 7).map(|_| alphabet[next() % 4]).collect();
            let n: Vec<u8> = (0..next() % 7).map(|_| alphabet[next() % 2]).collect();
            let (ps, ns) = (String::from_utf8_lossy(&p), String::from_utf8_lossy(&n));
            // (The empty pattern is LIST's "everyone".)
            let want = p.is_empty() || slow(&p, &n);
            assert_eq!(m(&ps, &ns), want, "pattern {ps:?} name {ns:?}");
        }
    }

    #[test]
    fn the_worst_patterns_are_cheap_and_bad_ones_refused() {
        let evil = format!("{}b", "*".repeat(127));
        assert!(!m(&evil, &"a".repeat(32)));
        let many = "*a".repeat(40);
        assert!(!m(&many, &"a".repeat(32)), "more letters than a name holds");
        assert!(m(&"*a".repeat(32), &"a".repeat(32)));
        assert_eq!(
            Pattern::new(&"a".repeat(129)).err(),
            Some(PatternError::TooLong(129))
        );
        assert_eq!(Pattern::new("a b").err(), Some(PatternError::BadChar(' ')));
        assert_eq!(Pattern::new("é*").err(), Some(PatternError::BadChar('é')));
    }
}
