//! Dropout elimination: `dropout(x) -> x` wherever a dropout is the identity.
//!
//! In eval mode every dropout-family node is the identity; in train mode a dropout with
//! `p = 0` is too (it keeps every element and scales by exactly 1). Dropout gradients
//! (`dropout_grad(g)`) follow their dropout: the identity where it is. Such a node's users and
//! outputs are rewired to its input and the node is removed. The masks of such dropouts are
//! all true, so each becomes an all-true constant under its own name (as ONNX specifies for
//! Dropout's mask output in inference), in the same pass, so no mask outlives its dropout.
//! Everything else is left alone: train-mode dropouts with `p > 0` and their masks keep their
//! streams, so masks do not change.

use super::Stats;
use crate::error::Result;
use crate::graph::{Dropout, Graph, Mode, inplace};
use crate::tensor::Tensor;

/// Removes every dropout that is the identity in `mode` and makes its masks constants; fails
/// only if the memory for such a constant cannot be had.
pub fn eliminate_dropout(graph: &mut Graph, mode: Mode) -> Result<Stats> {
    let is_identity = |d: &Dropout| !mode.draws() || d.p == 0.0;
    let order = graph.topo_order();
    // Dropout gradients too: the gradient of the identity is the identity.
    let identities: Vec<_> = (order.iter().copied())
        .filter(|&id| (graph[id].op.drawn_dropout()).is_some_and(is_identity))
        .collect();
    let masks: Vec<_> = (order.iter().copied())
        .filter(|&id| (graph[id].op.as_dropout_mask()).is_some_and(is_identity))
        .collect();
    for &id in &masks {
        // dropout_mask(x) -> constant true
        let shape = graph[id].ty.shape.clone();
        graph.make_constant(id, Tensor::full_bool(shape, true)?);
    }
    for &id in &identities {
        // dropout(x) -> x;  dropout_grad(g) -> g
        let input = graph.operands_of(id)[0];
        graph.replace_all_uses(id, input);
        graph.remove(id);
    }
    // An in-place dropout that read a removed one's fresh buffer may now read `x`, which
    // others read too: it writes a buffer of its own instead.
    let withdrawn = inplace::withdraw_conflicts(graph);
    Ok(Stats {
        removed: identities.len(),
        rewired: masks.len() + withdrawn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Dropout, DropoutKind, Op, TensorType, verify::verify};

    fn chain(p2: f64) -> Graph {
        let mut g = Graph::new("chain");
        let x = g
            .add("x", Op::Input(TensorType::f32([2, 3, 4])), &[])
            .unwrap();
        let d1 = Op::Dropout(Dropout::new(DropoutKind::Dropout1d, 0.5, 0));
        let d1 = g.add("d1", d1, &[x]).unwrap();
        let r = g
            .add("r", Op::Unary(crate::graph::UnaryOp::Relu), &[d1])
            .unwrap();
        let d2 = Op::Dropout(Dropout::new(DropoutKind::AlphaDropout, p2, 1));
        let d2 = g.add("d2", d2, &[r]).unwrap();
        g.add_output("y", d2).unwrap();
        g
    }

    #[test]
    fn eval_removes_every_dropout_and_rewires_outputs() {
        let mut g = chain(0.2);
        assert_eq!(eliminate_dropout(&mut g, Mode::Eval).unwrap().removed, 2);
        verify(&g).unwrap();
        assert!(g.node_ids().all(|id| !g[id].op.is_dropout()));
        let r = g.lookup("r").unwrap();
        assert_eq!(g.outputs()[0].node, r);
        assert_eq!(g.operands_of(r), vec![g.lookup("x").unwrap()]);
    }

    #[test]
    fn dropout_gradients_follow_their_dropout() {
        let mut g = Graph::new("grads");
        let x = g.add("x", Op::Input(TensorType::f32([2, 3])), &[]).unwrap();
        let zero = Op::DropoutGrad(Dropout::new(DropoutKind::Dropout, 0.0, 0));
        let half = Op::DropoutGrad(Dropout::new(DropoutKind::AlphaDropout, 0.5, 1));
        let a = g.add("a", zero, &[x]).unwrap();
        let b = g.add("b", half, &[a]).unwrap();
        g.add_output("y", b).unwrap();
        let mut train = g.clone();
        assert_eq!(
            eliminate_dropout(&mut train, Mode::Train).unwrap().removed,
            1
        );
        assert_eq!(train.operands_of(train.lookup("b").unwrap()), vec![x]);
        verify(&train).unwrap();
        assert_eq!(eliminate_dropout(&mut g, Mode::Eval).unwrap().removed, 2);
        assert_eq!(g.outputs()[0].node, x);
    }

    #[test]
    fn train_removes_only_p_zero() {
        let mut g = chain(0.0);
        assert_eq!(eliminate_dropout(&mut g, Mode::Train).unwrap().removed, 1);
        assert!(g.find("d1").is_some());
        assert!(g.find("d2").is_none());
        let mut g = chain(0.3);
        assert_eq!(eliminate_dropout(&mut g, Mode::Train).unwrap().removed, 0);
    }

    #[test]
    fn an_in_place_request_the_removal_makes_unsafe_is_withdrawn() {
        // d2 overwrites d1's fresh buffer; with d1 (p = 0) gone, d2 would overwrite `x`,
        // which `s` reads: it writes a buffer of its own instead.
        let mut g = Graph::new("g");
        let x = g.add("x", Op::Input(TensorType::f32([4])), &[]).unwrap();
        let d1 = Op::Dropout(Dropout::new(DropoutKind::Dropout, 0.0, 0));
        let d1 = g.add("d1", d1, &[x]).unwrap();
        let mut d2 = Dropout::new(DropoutKind::Dropout, 0.5, 1);
        d2.inplace = true;
        let d2 = g.add("d2", Op::Dropout(d2), &[d1]).unwrap();
        let s = g
            .add("s", Op::Unary(crate::graph::UnaryOp::Neg), &[x])
            .unwrap();
        g.add_output("d2", d2).unwrap();
        g.add_output("s", s).unwrap();
        verify(&g).unwrap();
        let stats = eliminate_dropout(&mut g, Mode::Train).unwrap();
        assert_eq!((stats.removed, stats.rewired), (1, 1));
        assert_eq!(g[d2].op.reads_in_place(), None);
        verify(&g).unwrap();
    }
}
