//! Edge rewrites for passes that change what a node reads without replacing the node, so the
//! node keeps its name (and with it every dump and output that mentions it).

use petgraph::Direction;
use petgraph::visit::EdgeRef;

use super::{Graph, NodeId, Op};
use crate::tensor::Tensor;

impl Graph {
    /// Makes `user` read `new` as its operand at `position` instead of what it read there.
    /// `new` must not depend on `user` (no cycles). The user's stored type is kept: a pass that
    /// also rewrites the op may pass through an inconsistent state, and the verifier re-infers
    /// every type afterwards.
    pub(crate) fn set_operand(&mut self, user: NodeId, position: usize, new: NodeId) {
        self.assert_live(new);
        let edge = self
            .nodes
            .edges_directed(user.index, Direction::Incoming)
            .find(|e| *e.weight() == position)
            .map(|e| e.id())
            .expect("invariant: the user has an operand at that position");
        self.nodes.remove_edge(edge);
        self.nodes.add_edge(new.index, user.index, position);
    }

    /// Makes `id` compute `op` of `operands` (in position order) instead of what it computed,
    /// keeping its name, users and outputs. Its type must stay the same: the verifier re-infers
    /// every type and reports a difference. `operands` must not depend on `id` (no cycles).
    pub(crate) fn rewrite(&mut self, id: NodeId, op: Op, operands: &[NodeId]) {
        self.clear_operands(id);
        for (position, &operand) in operands.iter().enumerate() {
            self.assert_live(operand);
            self.nodes.add_edge(operand.index, id.index, position);
        }
        self.nodes[id.index].node.op = op;
    }

    /// Turns `id` into a constant holding `value`, which has to have `id`'s type: its operand
    /// edges go, its users, outputs and name stay (a mask that is all true in eval mode
    /// becomes that constant under its own name).
    pub(crate) fn make_constant(&mut self, id: NodeId, value: Tensor) {
        assert_eq!(
            value.ty(),
            self[id].ty,
            "invariant: a constant replacing a node has its type"
        );
        self.clear_operands(id);
        self.nodes[id.index].node.op = Op::Constant(value);
    }

    /// Makes the in-place op `id` write a buffer of its own (see
    /// [`super::inplace::withdraw_conflicts`]).
    pub(crate) fn withdraw_inplace(&mut self, id: NodeId) {
        match &mut self.nodes[id.index].node.op {
            Op::Dropout(d) => d.inplace = false,
            other => panic!(
                "invariant: only dropouts run in place, not {}",
                other.name()
            ),
        }
    }

    /// Removes every operand edge of `id`.
    fn clear_operands(&mut self, id: NodeId) {
        let edges: Vec<_> = (self.nodes)
            .edges_directed(id.index, Direction::Incoming)
            .map(|e| e.id())
            .collect();
        for edge in edges {
            self.nodes.remove_edge(edge);
        }
    }

    /// Panics unless `id` is a live node of this graph: a pass handing a rewrite a stale
    /// handle is a compiler bug.
    fn assert_live(&self, id: NodeId) {
        let _ = &self[id];
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{BinaryOp, Graph, Op, TensorType, UnaryOp, verify::verify};

    #[test]
    fn set_operand_keeps_the_position_and_the_name() {
        let mut g = Graph::new("g");
        let a = g.add("a", Op::Input(TensorType::f32([2])), &[]).unwrap();
        let b = g.add("b", Op::Input(TensorType::f32([2])), &[]).unwrap();
        let c = g.add("c", Op::Input(TensorType::f32([2])), &[]).unwrap();
        let s = g.add("s", Op::Binary(BinaryOp::Sub), &[a, b]).unwrap();
        g.add_output("s", s).unwrap();
        g.set_operand(s, 1, c);
        assert_eq!(g.operands_of(s), vec![a, c]);
        assert!(g.users_of(b).is_empty());
        verify(&g).unwrap();
    }

    #[test]
    fn rewrite_changes_op_and_operands_but_keeps_the_name() {
        let mut g = Graph::new("g");
        let a = g.add("a", Op::Input(TensorType::f32([2])), &[]).unwrap();
        let b = g.add("b", Op::Input(TensorType::f32([2])), &[]).unwrap();
        let s = g.add("s", Op::Binary(BinaryOp::Sub), &[a, b]).unwrap();
        let n = g.add("n", Op::Unary(UnaryOp::Neg), &[s]).unwrap();
        g.add_output("n", n).unwrap();
        g.rewrite(s, Op::Unary(UnaryOp::Relu), &[b]);
        assert_eq!(g.operands_of(s), vec![b]);
        assert_eq!(g[s].name, "s");
        assert_eq!(g.users_of(s), vec![n]);
        assert!(g.users_of(a).is_empty());
        verify(&g).unwrap();
    }
}
