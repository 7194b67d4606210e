//! The one rule for overwriting a value in place, which the verifier checks (invariant 9), so
//! that `check`, the interpreter and the compiler, which all verify first, accept the same
//! programs.
//!
//! An op that asks to run in place ([`super::Op::reads_in_place`]: an `inplace` dropout)
//! writes its result over the buffer of the operand it overwrites. That buffer holds the
//! operand, every view of it (`reshape`, either way) and the results of earlier in-place ops
//! written over it (a chain). The request is safe only if no other node reads that buffer:
//! otherwise the program asks to destroy a value something else needs, and the reader comes
//! first in the program or not (fusion may run a reader written earlier after the overwrite),
//! in train mode or in eval mode alike. So the rule depends on the graph alone, never on the
//! mode, the schedule or where values live.
//!
//! A pass that rewires uses can put an in-place op straight on a value others read (removing an
//! identity `transpose`, a copy, does): it withdraws such requests ([`withdraw_conflicts`]).
//! `inplace` only chooses where a result is written, so no value changes.
//!
//! Whether the compiler then really shares the buffer (it never overwrites a graph output, a
//! parameter or a constant, which outlive the run) is the memory plan's business
//! (`crate::plan::alias`); a program that breaks this rule never gets there.

use std::collections::BTreeSet;

use super::{Graph, NodeId, OpClass};

/// An in-place op whose overwritten buffer another node reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// The op asking to run in place.
    pub node: NodeId,
    /// The value it would overwrite.
    pub input: NodeId,
    /// The first other node, in topological order, that reads the buffer.
    pub reader: NodeId,
}

/// Every conflict of `graph`, one per buffer (naming the buffer's first in-place op), in
/// topological order.
pub(crate) fn conflicts(graph: &Graph) -> Vec<Conflict> {
    // Most graphs ask for nothing in place: nothing to order or to index.
    let asks = graph
        .node_ids()
        .any(|id| graph[id].op.reads_in_place().is_some());
    if !asks {
        return Vec::new();
    }
    let order = graph.topo_order();
    let len = order.iter().map(|id| id.index() + 1).max().unwrap_or(0);
    let mut rank = vec![0; len];
    for (i, id) in order.iter().enumerate() {
        rank[id.index()] = i;
    }
    // Buffers by node index: a view shares its operand's; every other node has its own.
    let mut buffer: Vec<usize> = (0..len).collect();
    let mut members: Vec<Vec<NodeId>> = vec![Vec::new(); len];
    for &id in &order {
        if graph[id].op.class() == OpClass::View {
            buffer[id.index()] = buffer[graph.operands_of(id)[0].index()];
        }
        members[buffer[id.index()]].push(id);
    }
    let mut chain: BTreeSet<NodeId> = BTreeSet::new();
    let mut reported: BTreeSet<usize> = BTreeSet::new();
    let mut found = Vec::new();
    for &id in &order {
        let Some(position) = graph[id].op.reads_in_place() else {
            continue;
        };
        // A missing operand is invariant 1's error, reported already.
        let Some(&input) = graph.operands_of(id).get(position) else {
            continue;
        };
        let shared = buffer[input.index()];
        let reader = (members[shared].iter())
            .flat_map(|&member| graph.users_of(member))
            .filter(|&user| user != id && !chain.contains(&user))
            .filter(|&user| graph[user].op.class() != OpClass::View)
            .min_by_key(|user| rank[user.index()]);
        if let Some(reader) = reader
            && reported.insert(shared)
        {
            found.push(Conflict {
                node: id,
                input,
                reader,
            });
        }
        // The op's result (and its views) join the buffer it writes over.
        chain.insert(id);
        let own = std::mem::take(&mut members[buffer[id.index()]]);
        for &member in &own {
            buffer[member.index()] = shared;
        }
        members[shared].extend(own);
    }
    found
}

/// Withdraws every in-place request of `graph` that conflicts (see the module docs), until
/// none does; returns how many. For passes whose rewiring may create conflicts; no value
/// changes.
pub(crate) fn withdraw_conflicts(graph: &mut Graph) -> usize {
    let mut withdrawn = 0;
    loop {
        let found = conflicts(graph);
        if found.is_empty() {
            return withdrawn;
        }
        for conflict in found {
            graph.withdraw_inplace(conflict.node);
            withdrawn += 1;
        }
    }
}
