//! Vector-Jacobian products of the element-wise ops. `g` has the node's (broadcast) shape; an
//! operand that was broadcast gets `g`'s contribution summed back to its own shape
//! ([`Cx::sum_to`]). PyTorch's formulas (derivatives.yaml), in its order of operations:
//!
//! ```text
//! neg   -g                 relu  relu_grad(g, x)      selu  selu_grad(g, x)
//! exp   g * y              log   g / x                sqrt  g / (2 * y)
//! add   g, g               sub   g, -g                mul   g * b, g * a
//! div   g / b, -g * (y / b)                           (y = a / b, the node itself)
//! maximum  g * maximum_weight(a, b), g * maximum_weight(b, a)
//! relu_grad(g', x)   relu_grad(g, x) for g', none for x (piecewise constant)
//! selu_grad(g', x)   selu_grad(g, x) for g'; x has no derivative here (an error)
//! equal, maximum_weight   none (piecewise constant)
//! expand   g summed back to the operand's shape
//! ```

use super::{Cx, cannot};
use crate::error::Result;
use crate::graph::{BinaryOp, NodeId, Op, UnaryOp};
use crate::tensor::Tensor;

/// The gradient of unary `op` (node `y` of operand `x`) for `g`.
pub(super) fn unary(
    cx: &mut Cx,
    op: UnaryOp,
    y: NodeId,
    x: NodeId,
    g: NodeId,
    names: &[Option<String>],
) -> Option<NodeId> {
    let name = names[0].as_deref()?;
    let node = match op {
        UnaryOp::Neg => cx.add(name, Op::Unary(UnaryOp::Neg), &[g]),
        UnaryOp::Relu => cx.add(name, Op::Binary(BinaryOp::ReluGrad), &[g, x]),
        UnaryOp::Selu => cx.add(name, Op::Binary(BinaryOp::SeluGrad), &[g, x]),
        UnaryOp::Exp => cx.add(name, Op::Binary(BinaryOp::Mul), &[g, y]),
        UnaryOp::Log => cx.add(name, Op::Binary(BinaryOp::Div), &[g, x]),
        UnaryOp::Sqrt => {
            let two = cx.constant(&format!("{name}.two"), Tensor::scalar(2.0));
            let twice = cx.add(
                &format!("{name}.twice"),
                Op::Binary(BinaryOp::Mul),
                &[two, y],
            );
            cx.add(name, Op::Binary(BinaryOp::Div), &[g, twice])
        }
    };
    Some(node)
}

/// The gradients of binary `op` (node `y` of operands `x = [a, b]`) for `g`.
pub(super) fn binary(
    cx: &mut Cx,
    op: BinaryOp,
    y: NodeId,
    x: &[NodeId],
    g: NodeId,
    names: &[Option<String>],
) -> Result<Vec<Option<NodeId>>> {
    let (a, b) = (x[0], x[1]);
    let mul = Op::Binary(BinaryOp::Mul);
    let mut out = vec![None, None];
    for side in 0..2 {
        let Some(name) = names[side].as_deref() else {
            continue;
        };
        let own = cx.shape(x[side]);
        let part = |tag: &str| format!("{name}.{tag}");
        // The full-shape product is the gradient itself unless it is summed back.
        let full_name = if own == cx.shape(y) {
            name.to_string()
        } else {
            part("full")
        };
        // The full-shape gradient before summing back to the operand's shape, if any.
        let full = match (op, side) {
            (BinaryOp::Add, _) | (BinaryOp::Sub, 0) => Some(g),
            (BinaryOp::Sub, _) => {
                // sum(-g) = -(sum g) exactly: negate after summing, on fewer elements.
                let summed = cx.sum_to(&part("sum"), g, &own);
                out[side] = Some(cx.add(name, Op::Unary(UnaryOp::Neg), &[summed]));
                continue;
            }
            (BinaryOp::Mul, 0) => Some(cx.add(&full_name, mul.clone(), &[g, b])),
            (BinaryOp::Mul, _) => Some(cx.add(&full_name, mul.clone(), &[g, a])),
            (BinaryOp::Div, 0) => Some(cx.add(&full_name, Op::Binary(BinaryOp::Div), &[g, b])),
            (BinaryOp::Div, _) => {
                let neg = cx.add(&part("neg"), Op::Unary(UnaryOp::Neg), &[g]);
                let ratio = cx.add(&part("ratio"), Op::Binary(BinaryOp::Div), &[y, b]);
                Some(cx.add(&full_name, mul.clone(), &[neg, ratio]))
            }
            (BinaryOp::Max, _) => {
                let (mine, other) = if side == 0 { (a, b) } else { (b, a) };
                let weight = Op::Binary(BinaryOp::MaxWeight);
                let w = cx.add(&part("weight"), weight, &[mine, other]);
                Some(cx.add(&full_name, mul.clone(), &[g, w]))
            }
            (BinaryOp::ReluGrad, 0) => {
                Some(cx.add(&full_name, Op::Binary(BinaryOp::ReluGrad), &[g, b]))
            }
            (BinaryOp::SeluGrad, 0) => {
                Some(cx.add(&full_name, Op::Binary(BinaryOp::SeluGrad), &[g, b]))
            }
            (BinaryOp::SeluGrad, _) => {
                let reason = "selu_grad has no derivative with respect to x (operand 1)";
                return Err(cannot(cx.graph, y, reason.to_string()));
            }
            (BinaryOp::ReluGrad, _) | (BinaryOp::Equal, _) | (BinaryOp::MaxWeight, _) => None,
        };
        out[side] = full.map(|full| cx.sum_to(name, full, &own));
    }
    Ok(out)
}

/// The gradient of `expand` (of operand `x`) for `g`: `g` summed back to `x`'s shape.
pub(super) fn expand(
    cx: &mut Cx,
    x: NodeId,
    g: NodeId,
    names: &[Option<String>],
) -> Option<NodeId> {
    let name = names[0].as_deref()?;
    let shape = cx.shape(x);
    Some(cx.sum_to(name, g, &shape))
}
