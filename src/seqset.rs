//! Sets of sequence numbers kept as disjoint ranges. Gossip digests and
//! multicast acknowledgements are both "which numbers of this sender do I
//! have", and both are mostly contiguous, so ranges keep them small.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent inclusive ranges of sequence numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqSet {
    ranges: BTreeMap<u64, u64>,
}

impl SeqSet {
    pub fn contains(&self, s: u64) -> bool {
        self.ranges
            .range(..=s)
            .next_back()
            .is_some_and(|(_, &end)| s <= end)
    }

    /// Adds `s`; false if it was there already.
    pub fn insert(&mut self, s: u64) -> bool {
        if self.contains(s) {
            return false;
        }
        let before = self
            .ranges
            .range(..s)
            .next_back()
            .filter(|&(_, &end)| end + 1 == s)
            .map(|(&start, _)| start);
        let after = s
            .checked_add(1)
            .and_then(|n| self.ranges.get(&n).copied().map(|e| (n, e)));
        match (before, after) {
            (Some(b), Some((a, e))) => {
                self.ranges.remove(&a);
                self.ranges.insert(b, e);
            }
            (Some(b), None) => {
                self.ranges.insert(b, s);
            }
            (None, Some((a, e))) => {
                self.ranges.remove(&a);
                self.ranges.insert(s, e);
            }
            (None, None) => {
                self.ranges.insert(s, s);
            }
        }
        true
    }

    /// Does the set hold every number from `first` to `last`? (Yes when
    /// `last < first`: the range is empty.)
    pub fn contains_range(&self, first: u64, last: u64) -> bool {
        last < first
            || self
                .ranges
                .range(..=first)
                .next_back()
                .is_some_and(|(_, &end)| last <= end)
    }

    /// Adds every number from `first` to `last`.
    pub fn insert_range(&mut self, first: u64, last: u64) {
        if last >= first {
            *self = SeqSet::from_ranges(self.ranges().chain([(first, last)]));
        }
    }

    /// Adds every number of `other`.
    pub fn extend(&mut self, other: &SeqSet) {
        if !other.is_empty() {
            *self = SeqSet::from_ranges(self.ranges().chain(other.ranges()));
        }
    }

    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    /// How many disjoint ranges the set is made of.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Builds a set from ranges in any order, overlapping or not (they come
    /// from the network: empty or reversed ones are ignored).
    pub fn from_ranges(r: impl IntoIterator<Item = (u64, u64)>) -> SeqSet {
        let mut v: Vec<(u64, u64)> = r.into_iter().filter(|(s, e)| s <= e).collect();
        v.sort_unstable();
        let mut ranges = BTreeMap::new();
        let mut cur: Option<(u64, u64)> = None;
        for (s, e) in v {
            cur = match cur {
                Some((cs, ce)) if s <= ce.saturating_add(1) => Some((cs, ce.max(e))),
                Some((cs, ce)) => {
                    ranges.insert(cs, ce);
                    Some((s, e))
                }
                None => Some((s, e)),
            };
        }
        if let Some((cs, ce)) = cur {
            ranges.insert(cs, ce);
        }
        SeqSet { ranges }
    }

    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_split_correctly() {
        let mut s = SeqSet::default();
        for x in [5, 7, 6, 1, 2, 10] {
            assert!(s.insert(x));
        }
        assert!(!s.insert(6));
        assert_eq!(
            s.ranges().collect::<Vec<_>>(),
            vec![(1, 2), (5, 7), (10, 10)]
        );
        assert!(s.contains(7) && !s.contains(8) && !s.contains(0));
        assert!(s.contains_range(5, 7) && !s.contains_range(2, 5) && s.contains_range(9, 3));
        assert_eq!(s.len(), 6);
        assert!(s.insert(u64::MAX));
        assert_eq!(SeqSet::from_ranges(s.ranges()), s);
        let messy = SeqSet::from_ranges([(5, 6), (1, 2), (3, 3), (9, 8), (6, 7)]);
        assert_eq!(messy.ranges().collect::<Vec<_>>(), vec![(1, 3), (5, 7)]);
        let mut a = SeqSet::from_ranges([(1, 3)]);
        a.extend(&SeqSet::from_ranges([(4, 4), (9, 9)]));
        assert_eq!(a.ranges().collect::<Vec<_>>(), vec![(1, 4), (9, 9)]);
        assert_eq!(a.range_count(), 2);
    }
}
