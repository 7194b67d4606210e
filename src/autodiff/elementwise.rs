//! Vector-Jacobian products of the element-wise ops. `g` has the node's (broadcast) shape; an
//! operand that was broadcast gets `g`'s contribution summed back to its own shape
//! ([`sum_to`]). PyTorch's formulas (derivatives.yaml), in its order of operations:
//!
//! ```text
//! neg   -g                 relu  relu_grad(g, x)      selu  selu_grad(g, x)
//! exp   g * y              log   g / x                sqrt  g / (2 * y)
//! tanh  g * (1 - y * y)      sigmoid  (g * (1 - y)) * y
//! gelu  gelu_grad(g, x)      (one op: PyTorch's gelu_backward in its order)
//! add   g, g               sub   g, -g                mul   g * b, g * a
//! div   g / b, -g * (y / b)                           (y = a / b, the node itself)
//! maximum  g * maximum_weight(a, b), g * maximum_weight(b, a)
//! relu_grad(g', x)   relu_grad(g, x) for g', none for x (piecewise constant)
//! selu_grad(g', x), gelu_grad(g', x)   the same op at (g, x) for g'; x has no
//!                    derivative here (an error)
//! equal, maximum_weight   none (piecewise constant)
//! expand   g summed back to the operand's shape
//! ```

use super::{Gradients, Site, cannot};
use crate::error::Result;
use crate::graph::{BinaryOp, Builder, NodeId, Shape, UnaryOp};
use crate::tensor::Tensor;

/// The gradient `name` of unary `op`.
pub(super) fn unary(b: &mut Builder, op: UnaryOp, at: Site, name: &str) -> Result<NodeId> {
    let Site { y, x, g } = at;
    let x = x[0];
    match op {
        UnaryOp::Neg => b.neg(name, g),
        UnaryOp::Relu => b.binary(name, BinaryOp::ReluGrad, g, x),
        UnaryOp::Selu => b.binary(name, BinaryOp::SeluGrad, g, x),
        UnaryOp::Exp => b.mul(name, g, y),
        UnaryOp::Log => b.div(name, g, x),
        UnaryOp::Sqrt => {
            let two = b.constant(&format!("{name}.two"), Tensor::scalar(2.0))?;
            let twice = b.mul(&format!("{name}.twice"), two, y)?;
            b.div(name, g, twice)
        }
        UnaryOp::Tanh => {
            // PyTorch's tanh_backward: a * (1 - b * b).
            let square = b.mul(&format!("{name}.square"), y, y)?;
            let one = b.constant(&format!("{name}.one"), Tensor::scalar(1.0))?;
            let slope = b.sub(&format!("{name}.slope"), one, square)?;
            b.mul(name, g, slope)
        }
        UnaryOp::Gelu(approximate) => b.binary(name, BinaryOp::GeluGrad(approximate), g, x),
        UnaryOp::Sigmoid => {
            // PyTorch's sigmoid_backward: a * (1 - b) * b, left to right.
            let one = b.constant(&format!("{name}.one"), Tensor::scalar(1.0))?;
            let complement = b.sub(&format!("{name}.complement"), one, y)?;
            let scaled = b.mul(&format!("{name}.scaled"), g, complement)?;
            b.mul(name, scaled, y)
        }
    }
}

/// The gradients of binary `op` (operands `x = [lhs, rhs]`).
pub(super) fn binary(
    b: &mut Builder,
    op: BinaryOp,
    at: Site,
    names: &[Option<String>],
) -> Result<Gradients> {
    let Site { y, x, g } = at;
    let (lhs, rhs) = (x[0], x[1]);
    let mut out = vec![None, None];
    for side in 0..2 {
        let Some(name) = names[side].as_deref() else {
            continue;
        };
        let own = b.shape(x[side]);
        let part = |tag: &str| format!("{name}.{tag}");
        // The full-shape product is the gradient itself unless it is summed back.
        let full_name = if own == b.shape(y) {
            name.to_string()
        } else {
            part("full")
        };
        // The full-shape gradient before summing back to the operand's shape, if any.
        let full = match (op, side) {
            (BinaryOp::Add, _) | (BinaryOp::Sub, 0) => Some(g),
            (BinaryOp::Sub, _) => {
                // sum(-g) = -(sum g) exactly: negate after summing, on fewer elements.
                let summed = sum_to(b, &part("sum"), g, &own)?;
                out[side] = Some(b.neg(name, summed)?);
                continue;
            }
            (BinaryOp::Mul, 0) => Some(b.mul(&full_name, g, rhs)?),
            (BinaryOp::Mul, _) => Some(b.mul(&full_name, g, lhs)?),
            (BinaryOp::Div, 0) => Some(b.div(&full_name, g, rhs)?),
            (BinaryOp::Div, _) => {
                let neg = b.neg(&part("neg"), g)?;
                let ratio = b.div(&part("ratio"), y, rhs)?;
                Some(b.mul(&full_name, neg, ratio)?)
            }
            (BinaryOp::Max, _) => {
                let (mine, other) = if side == 0 { (lhs, rhs) } else { (rhs, lhs) };
                let w = b.binary(&part("weight"), BinaryOp::MaxWeight, mine, other)?;
                Some(b.mul(&full_name, g, w)?)
            }
            (BinaryOp::ReluGrad | BinaryOp::SeluGrad | BinaryOp::GeluGrad(_), 0) => {
                Some(b.binary(&full_name, op, g, rhs)?)
            }
            (BinaryOp::SeluGrad | BinaryOp::GeluGrad(_), _) => {
                let reason = format!(
                    "{} has no derivative with respect to x (operand 1)",
                    op.name()
                );
                return Err(cannot(b.graph(), y, reason));
            }
            (BinaryOp::ReluGrad, _) | (BinaryOp::Equal, _) | (BinaryOp::MaxWeight, _) => None,
        };
        out[side] = full.map(|full| sum_to(b, name, full, &own)).transpose()?;
    }
    Ok(out)
}

/// The gradient `name` of `expand`: `g` summed back to the operand's shape.
pub(super) fn expand(b: &mut Builder, at: Site, name: &str) -> Result<NodeId> {
    let shape = b.shape(at.x[0]);
    sum_to(b, name, at.g, &shape)
}

/// `g` summed over the dimensions along which `shape` was broadcast to `g`'s shape, in
/// `shape`: the gradient of a broadcast. `g` itself if nothing was broadcast.
pub(super) fn sum_to(b: &mut Builder, name: &str, g: NodeId, shape: &Shape) -> Result<NodeId> {
    let from = b.shape(g);
    if from == *shape {
        return Ok(g);
    }
    let lead = from.rank() - shape.rank();
    let axes: Vec<i64> = (0..from.rank())
        .filter(|&d| d < lead || (shape.dims()[d - lead] == 1 && from.dims()[d] != 1))
        .map(|d| d as i64)
        .collect();
    let inner = axes.iter().any(|&d| d as usize >= lead);
    // Leading axes only: dropping them gives `shape`. No leading axes: keeping the
    // summed ones as 1 gives it. Both: keep, then view without the leading ones.
    match (lead > 0, inner) {
        (_, false) => b.sum(name, g, axes, false),
        (false, true) => b.sum(name, g, axes, true),
        (true, true) => {
            let summed = b.sum(&format!("{name}.sum"), g, axes, true)?;
            b.reshape(name, summed, shape)
        }
    }
}

/// `y = where(cond, a, b)`: `da = sum_to(where(cond, g, 0), a)`,
/// `db = sum_to(where(cond, 0, g), b)`; the condition (bool) has none.
pub(super) fn select(b: &mut Builder, at: Site, names: &[Option<String>]) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let mut out = vec![None; x.len()];
    for (k, keep_where_true) in [(1, true), (2, false)] {
        let Some(name) = names.get(k).and_then(|n| n.as_deref()) else {
            continue;
        };
        let zero = b.constant(&format!("{name}.zero"), crate::tensor::Tensor::scalar(0.0))?;
        let (yes, no) = if keep_where_true {
            (g, zero)
        } else {
            (zero, g)
        };
        let shape = b.shape(x[k]);
        let full = b.node(
            &format!("{name}.full"),
            crate::graph::Op::Where,
            &[x[0], yes, no],
        )?;
        out[k] = Some(sum_to(b, name, full, &shape)?);
    }
    Ok(out)
}
