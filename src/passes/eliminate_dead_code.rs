//! Dead-code elimination: nodes that no output depends on are removed.
//!
//! A node is live if an output names it or a live node reads it. What it leaves alone:
//! - every `input` and `parameter`, used or not: together they are the compiled function's
//!   signature, so callers bind the same names before and after the pass;
//! - every live node, untouched: values, names, dropout streams. Removing a dead dropout does
//!   not change another's mask, since masks are keyed by stream, not by position, and a
//!   train-mode run claims its generator step whether or not a dropout remains;
//! - the dropout a live `dropout_mask` describes, even if nothing reads it: the verifier
//!   requires every mask's dropout (a mask recomputes that dropout's draw). A
//!   `dropout_grad` keeps no dropout alive: it draws its mask itself, and the verifier
//!   accepts one whose dropout is gone.
//!
//! A dead node that would fail at run time (a `cross_entropy` with an out-of-range target) is
//! removed like any other, so the optimized graph can succeed where the original fails.

use std::collections::{BTreeMap, BTreeSet};

use super::Stats;
use crate::graph::{Graph, NodeId};

/// Removes every node that no output depends on, except inputs and parameters.
pub fn eliminate_dead_code(graph: &mut Graph) -> Stats {
    let dropouts: BTreeMap<u32, NodeId> = (graph.node_ids())
        .filter_map(|id| graph[id].op.as_dropout().map(|d| (d.stream, id)))
        .collect();
    let mut live: BTreeSet<NodeId> = BTreeSet::new();
    let mut pending: Vec<NodeId> = graph.outputs().iter().map(|o| o.node).collect();
    while let Some(id) = pending.pop() {
        if live.insert(id) {
            pending.extend(graph.operands_of(id));
            let mask = graph[id].op.as_dropout_mask();
            pending.extend(mask.and_then(|m| dropouts.get(&m.stream)));
        }
    }
    let order = graph.topo_order();
    let dead: Vec<NodeId> = order
        .into_iter()
        .filter(|&id| !live.contains(&id) && !graph[id].op.is_bound())
        .collect();
    // Users before their operands, so each node is unused when it goes.
    for &id in dead.iter().rev() {
        graph.remove(id);
    }
    Stats {
        removed: dead.len(),
        rewired: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{BinaryOp, Dropout, DropoutKind, Op, TensorType, UnaryOp, verify::verify};
    use crate::tensor::Tensor;

    #[test]
    fn removes_dead_chains_and_keeps_the_signature() {
        let mut g = Graph::new("g");
        let x = g.add("x", Op::Input(TensorType::f32([3])), &[]).unwrap();
        g.add("unused_in", Op::Input(TensorType::i32([2])), &[])
            .unwrap();
        let w = g
            .add("w", Op::Parameter(TensorType::f32([3])), &[])
            .unwrap();
        let c = g.add("c", Op::Constant(Tensor::scalar(2.0)), &[]).unwrap();
        let dead_mul = g
            .add("dead_mul", Op::Binary(BinaryOp::Mul), &[w, c])
            .unwrap();
        let d = Op::Dropout(Dropout::new(DropoutKind::Dropout, 0.5, 3));
        let dead_drop = g.add("dead_drop", d, &[dead_mul]).unwrap();
        g.add("dead_exp", Op::Unary(UnaryOp::Exp), &[dead_drop])
            .unwrap();
        let y = g.add("y", Op::Unary(UnaryOp::Relu), &[x]).unwrap();
        g.add_output("y", y).unwrap();

        assert_eq!(eliminate_dead_code(&mut g).removed, 4);
        verify(&g).unwrap();
        let mut names: Vec<&str> = g.node_ids().map(|id| g[id].name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["unused_in", "w", "x", "y"]);
    }

    #[test]
    fn a_graph_without_dead_code_is_unchanged() {
        let mut g = Graph::new("g");
        let x = g.add("x", Op::Input(TensorType::f32([3])), &[]).unwrap();
        let c = g.add("c", Op::Constant(Tensor::scalar(2.0)), &[]).unwrap();
        let y = g.add("y", Op::Binary(BinaryOp::Add), &[x, c]).unwrap();
        g.add_output("y", y).unwrap();
        g.add_output("x_again", x).unwrap();
        let before = g.clone();
        assert_eq!(eliminate_dead_code(&mut g), Stats::default());
        assert_eq!(g, before);
    }
}
