//! Linear bias splitting: `linear(x, W, b) -> add(linear(x, W), b)` where the add fuses into
//! the element-wise kernel after the matrix product, so `Linear -> relu -> Dropout` costs one
//! GEMM and one pass over its output (bias, activation and dropout together) instead of a GEMM,
//! a bias loop and a pass.
//!
//! A `linear` with a bias is split when its value is read once, by an element-wise node of its
//! shape, and is no output: the add then joins that node's kernel (fusion joins a producer of
//! the same shape only) and the sum lives in registers. Other linears stay whole: where the sum
//! is read again (a training step's `relu_grad` reads the pre-activation), the kernel has to
//! store it besides its own result, and the SimpleNet training step measured about 5% slower
//! split than whole (criterion, batch 32, one thread). The add keeps the linear's name, so
//! users and dumps still name it; the product becomes `<name>.gemm` (a linear is left whole if
//! that name is taken).
//!
//! The values do not change, bit for bit: the interpreter's linear adds the bias to the finished
//! dot product in one f32 addition, and `add` is that addition.

use super::Stats;
use crate::graph::{BinaryOp, Graph, NodeId, Op};

/// Splits every linear read once, by an element-wise node of its shape, and no output; see the
/// module docs.
pub fn split_linear_bias(graph: &mut Graph) -> Stats {
    let order = graph.topo_order();
    let splits: Vec<NodeId> = (order.into_iter())
        .filter(|&id| splits(graph, id))
        .collect();
    for &id in &splits {
        // linear(x, W, b) -> add(linear(x, W), b), the add under the linear's name
        let [x, weight, bias] = operands3(graph, id);
        let name = gemm_name(graph, id);
        let gemm = graph
            .add(name, Op::Linear { bias: false }, &[x, weight])
            .expect("invariant: a linear without its bias is well typed under a free name");
        graph.rewrite(id, Op::Binary(BinaryOp::Add), &[gemm, bias]);
    }
    Stats {
        removed: 0,
        rewired: splits.len(),
    }
}

/// True if `id` is a linear with a bias, one user, element-wise of its shape, no output, and a
/// free name for its product.
fn splits(graph: &Graph, id: NodeId) -> bool {
    let node = &graph[id];
    let fuses = |user: NodeId| {
        let user = &graph[user];
        user.op.is_elementwise() && user.ty.shape == node.ty.shape
    };
    let one_fusing_user = matches!(graph.users_of(id)[..], [user] if fuses(user));
    let output = graph.outputs().iter().any(|o| o.node == id);
    matches!(node.op, Op::Linear { bias: true })
        && one_fusing_user
        && !output
        && graph.find(&gemm_name(graph, id)).is_none()
}

fn gemm_name(graph: &Graph, id: NodeId) -> String {
    format!("{}.gemm", graph[id].name)
}

fn operands3(graph: &Graph, id: NodeId) -> [NodeId; 3] {
    let operands = graph.operands_of(id);
    [operands[0], operands[1], operands[2]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{TensorType, UnaryOp, verify::verify};

    /// `y = linear(x, W, b)` read by `users` (each an output), and an output itself if
    /// `output`.
    fn linear(users: &[Op], output: bool) -> Graph {
        let mut g = Graph::new("net");
        let x = g.add("x", Op::Input(TensorType::f32([2, 3])), &[]).unwrap();
        let w = g
            .add("w", Op::Parameter(TensorType::f32([8, 3])), &[])
            .unwrap();
        let b = g
            .add("b", Op::Parameter(TensorType::f32([8])), &[])
            .unwrap();
        let y = g.add("y", Op::Linear { bias: true }, &[x, w, b]).unwrap();
        for (i, op) in users.iter().enumerate() {
            let u = g.add(format!("u{i}"), op.clone(), &[y]).unwrap();
            g.add_output(format!("u{i}"), u).unwrap();
        }
        if output {
            g.add_output("out", y).unwrap();
        }
        g
    }

    #[test]
    fn splits_a_linear_read_once_by_an_element_wise_node() {
        let mut g = linear(&[Op::Unary(UnaryOp::Relu)], false);
        assert_eq!(split_linear_bias(&mut g).rewired, 1);
        verify(&g).unwrap();
        let text = g.to_string();
        assert!(
            text.contains("%y.gemm: f32[2, 8] = linear %x, %w\n"),
            "{text}"
        );
        assert!(text.contains("%y: f32[2, 8] = add %y.gemm, %b\n"), "{text}");
        assert!(text.contains("%u0: f32[2, 8] = relu %y\n"), "{text}");
    }

    #[test]
    fn leaves_a_linear_read_otherwise() {
        let relu = Op::Unary(UnaryOp::Relu);
        let cases = [
            linear(&[relu.clone(), Op::Unary(UnaryOp::Neg)], false),
            linear(&[Op::Softmax { axis: 1 }], false),
            linear(&[relu], true),
            linear(&[], true),
        ];
        for mut g in cases {
            assert_eq!(split_linear_bias(&mut g).rewired, 0, "{g}");
        }
    }

    #[test]
    fn leaves_a_linear_whose_product_name_is_taken() {
        let mut g = linear(&[Op::Unary(UnaryOp::Relu)], false);
        let x = g.lookup("x").unwrap();
        g.add("y.gemm", Op::Unary(UnaryOp::Exp), &[x]).unwrap();
        assert_eq!(split_linear_bias(&mut g).rewired, 0);
    }
}
