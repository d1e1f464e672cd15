//! Topologies for `dsys sim gossip` and `dsys demo gossip`: who is whose
//! neighbor (links are symmetric).

use std::collections::BTreeSet;

use rand::Rng as _;

use crate::node::{NodeId, Rng};

/// Who links with whom. (Plain comments on the variants: doc comments
/// would switch `--help` to clap's long, blank-line layout.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    // Each node linked to the next: the slowest, for contrast.
    Line,
    // A line closed into a circle.
    Ring,
    // Rows and columns, each node linked to its 4 neighbors.
    Grid,
    // One hub (the first node) linked to every other node.
    Star,
    // A tree in which each node has up to 4 children.
    Tree4,
    // A ring plus two random chords per node.
    Random,
    // Everyone linked to everyone.
    Full,
}

/// Neighbor sets of `n` nodes.
pub fn build(t: Topology, n: usize, rng: &mut Rng) -> Vec<BTreeSet<NodeId>> {
    let mut g = vec![BTreeSet::new(); n];
    let link = |a: usize, b: usize, g: &mut Vec<BTreeSet<NodeId>>| {
        if a != b && a < n && b < n {
            g[a].insert(NodeId(b as u32));
            g[b].insert(NodeId(a as u32));
        }
    };
    match t {
        Topology::Line => (1..n).for_each(|i| link(i - 1, i, &mut g)),
        Topology::Ring => {
            (1..n).for_each(|i| link(i - 1, i, &mut g));
            if n > 2 {
                link(n - 1, 0, &mut g);
            }
        }
        Topology::Grid => {
            let side = (n as f64).sqrt().ceil() as usize;
            for i in 0..n {
                if (i + 1) % side != 0 {
                    link(i, i + 1, &mut g);
                }
                link(i, i + side, &mut g);
            }
        }
        Topology::Star => (1..n).for_each(|i| link(0, i, &mut g)),
        Topology::Tree4 => (1..n).for_each(|i| link((i - 1) / 4, i, &mut g)),
        Topology::Random => {
            (1..n).for_each(|i| link(i - 1, i, &mut g));
            if n > 2 {
                link(n - 1, 0, &mut g);
            }
            for i in 0..n {
                for _ in 0..2 {
                    let j = rng.random_range(0..n);
                    link(i, j, &mut g);
                }
            }
        }
        Topology::Full => {
            for i in 0..n {
                for j in i + 1..n {
                    link(i, j, &mut g);
                }
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn connected(g: &[BTreeSet<NodeId>]) -> bool {
        let mut seen = BTreeSet::from([0usize]);
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            for n in &g[i] {
                if seen.insert(n.index()) {
                    stack.push(n.index());
                }
            }
        }
        seen.len() == g.len()
    }

    #[test]
    fn every_topology_is_connected_and_symmetric() {
        let mut rng = Rng::seed_from_u64(3);
        for t in [
            Topology::Line,
            Topology::Ring,
            Topology::Grid,
            Topology::Star,
            Topology::Tree4,
            Topology::Random,
            Topology::Full,
        ] {
            for n in [1, 2, 5, 25] {
                let g = build(t, n, &mut rng);
                assert!(connected(&g), "{t:?} {n}");
                for (i, ns) in g.iter().enumerate() {
                    for m in ns {
                        assert!(g[m.index()].contains(&NodeId(i as u32)), "{t:?} {n}");
                    }
                }
            }
        }
    }
}
