//! Tril materialization: every `tril` node (a lower-triangular bool mask the text names by
//! its type alone) becomes the constant it stands for, under its own name, so the rest of the
//! compiler sees an ordinary constant (a leaf with data) and no later stage knows `tril`.

use super::Stats;
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};

/// Replaces every `tril` node of `graph` with its constant; fails only if the memory for a
/// mask cannot be had.
pub fn materialize_tril(graph: &mut Graph) -> Result<Stats> {
    let nodes: Vec<NodeId> = (graph.node_ids())
        .filter(|&id| matches!(graph[id].op, Op::Tril { .. }))
        .collect();
    let mut stats = Stats::default();
    for id in nodes {
        let Op::Tril { shape, diagonal } = graph[id].op.clone() else {
            unreachable!("invariant: only tril nodes were collected")
        };
        let mask = crate::interp::tril_mask(&shape, diagonal)?;
        graph.make_constant(id, mask);
        stats.rewired += 1;
    }
    Ok(stats)
}

/// True if `graph` has a node this pass rewrites.
pub fn has_tril(graph: &Graph) -> bool {
    graph
        .node_ids()
        .any(|id| matches!(graph[id].op, Op::Tril { .. }))
}
