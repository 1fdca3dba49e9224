//! The lazy-heap merge loop both merge rules share, for pieces too long for a vector loop.
//!
//! Parts live in one array as a doubly linked list; a min-heap holds candidate merges keyed
//! `priority << 32 | part index` in one `u64`, so the minimum is the lowest priority and, among
//! equal priorities, the leftmost part (the tie rule of tiktoken and of `tokenizers` alike). A
//! merge changes only the pairs of the merged part with its two neighbours; their entries are
//! pushed anew and the old ones go stale. An entry is stale when its part was merged away, or
//! when the part's current pair has another priority: a part's pair only ever grows, so it
//! never returns to a pair it had. O(n log n), so a 1 MB piece (a million `a`s, a line of
//! base64) merges in linear-ish time instead of the quadratic blow-up of a vector loop.
//!
//! Measured on one core, 1 MB of random lowercase letters with cl100k: separate vectors for
//! start/next/prev/alive/rank and tuple entries pushed one by one took 0.60 s; one array of
//! nodes (the loop touches a node and its two neighbours) and a heapified initial vector is
//! what is kept (numbers in benches/encode_bench.py `--scaling`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Which adjacent parts merge, in what order, and into what: the one thing the merge rules
/// differ in.
pub(crate) trait PairRule {
    /// A part of a piece being merged: a token id, or a span of the piece's bytes.
    type Part: Copy;

    /// The priority of merging `left` with `right` (lower merges first; below `u32::MAX`) and
    /// the part they become, or `None` when they do not merge.
    fn pair(&self, left: Self::Part, right: Self::Part) -> Option<(u32, Self::Part)>;
}

/// No neighbour.
const NONE: u32 = u32::MAX;
/// `prev` of a part that was merged into its left neighbour.
const DEAD: u32 = u32::MAX - 1;
/// `priority` of a part that does not merge with its right neighbour.
const NO_PAIR: u32 = u32::MAX;

/// One part: its value, what it merges into with its right neighbour and at which priority,
/// and its neighbours.
#[derive(Clone, Copy)]
struct Node<P> {
    part: P,
    merged: P,
    priority: u32,
    prev: u32,
    next: u32,
}

/// Merges the parts `parts[base..]` in place by `rule` until no adjacent pair merges:
/// afterwards `parts[base..]` holds the result. At most `u32::MAX - 2` parts.
///
/// With ids merging into the token their bytes make: `[a, a, a]` with `aa` a token becomes
/// `[aa, a]` (the leftmost of two equal pairs merges first).
pub(crate) fn heap_merge<R: PairRule>(rule: &R, parts: &mut Vec<R::Part>, base: usize) {
    let n = parts.len() - base;
    if n < 2 {
        return;
    }
    debug_assert!(n < DEAD as usize);
    let mut nodes: Vec<Node<R::Part>> = parts[base..]
        .iter()
        .enumerate()
        .map(|(i, &part)| Node {
            part,
            merged: part,
            priority: NO_PAIR,
            prev: if i == 0 { NONE } else { i as u32 - 1 },
            next: if i + 1 < n { i as u32 + 1 } else { NONE },
        })
        .collect();
    let mut initial = Vec::with_capacity(n);
    for i in 0..n - 1 {
        if let Some(entry) = set_pair(rule, &mut nodes, i, i + 1) {
            initial.push(entry);
        }
    }
    let mut heap = BinaryHeap::from(initial);
    while let Some(Reverse(entry)) = heap.pop() {
        let (priority, i) = ((entry >> 32) as u32, (entry & 0xFFFF_FFFF) as usize);
        if nodes[i].prev == DEAD || nodes[i].priority != priority {
            continue;
        }
        // Merge part i with its right neighbour j.
        let j = nodes[i].next as usize;
        let after = nodes[j].next;
        nodes[j].prev = DEAD;
        nodes[i].next = after;
        nodes[i].part = nodes[i].merged;
        nodes[i].priority = NO_PAIR;
        if after != NONE {
            nodes[after as usize].prev = i as u32;
            if let Some(entry) = set_pair(rule, &mut nodes, i, after as usize) {
                heap.push(entry);
            }
        }
        let p = nodes[i].prev;
        if p != NONE {
            if let Some(entry) = set_pair(rule, &mut nodes, p as usize, i) {
                heap.push(entry);
            }
        }
    }
    // Part 0 is never merged away (a merge keeps the left part).
    parts.truncate(base);
    let mut i = 0u32;
    while i != NONE {
        parts.push(nodes[i as usize].part);
        i = nodes[i as usize].next;
    }
}

/// Sets part `i`'s pair with its right neighbour `j` and returns its heap entry
/// (`priority << 32 | i`, lowest first), or `None` when the two do not merge.
#[inline(always)]
fn set_pair<R: PairRule>(
    rule: &R,
    nodes: &mut [Node<R::Part>],
    i: usize,
    j: usize,
) -> Option<Reverse<u64>> {
    match rule.pair(nodes[i].part, nodes[j].part) {
        Some((priority, merged)) => {
            nodes[i].priority = priority;
            nodes[i].merged = merged;
            Some(Reverse(((priority as u64) << 32) | i as u64))
        }
        None => {
            nodes[i].priority = NO_PAIR;
            None
        }
    }
}
