//! Vector-Jacobian products of data movement, reductions and the softmax family (PyTorch's
//! formulas):
//!
//! ```text
//! reshape      reshape(g, shape of x)          transpose(perm)  transpose(g, inverse perm)
//! sum          expand(gk, shape of x)          mean             expand(gk, shape of x) / count
//! amax         mask = equal(x, yk);  (gk / sum(mask, axes, keepdim)) * mask
//! softmax      y * (g - sum(g * y, axis, keepdim))
//! log_softmax  g - exp(y) * sum(g, axis, keepdim)
//! cross_entropy  cross_entropy_grad(logits, targets, g); none for the targets
//! ```
//! (`gk`, `yk`: the gradient and the result with the reduced dimensions kept as 1, a view.)

use super::Site;
use crate::error::Result;
use crate::graph::infer::{reduce_shape, reduced_axes};
use crate::graph::{BinaryOp, Builder, NodeId, Op, ReduceOp, UnaryOp};
use crate::tensor::Tensor;

/// The gradient `name` of `reshape`: `g` viewed in the operand's shape.
pub(super) fn reshape(b: &mut Builder, at: Site, name: &str) -> Result<NodeId> {
    let shape = b.shape(at.x[0]);
    b.reshape(name, at.g, &shape)
}

/// The gradient `name` of `transpose` by `perm`: `g` by the inverse permutation.
pub(super) fn transpose(b: &mut Builder, perm: &[usize], at: Site, name: &str) -> Result<NodeId> {
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    b.transpose(name, at.g, inverse)
}

/// The gradient `name` of reduction `op` over `axes`.
pub(super) fn reduce(
    b: &mut Builder,
    op: ReduceOp,
    axes: &[i64],
    at: Site,
    name: &str,
) -> Result<NodeId> {
    let Site { y, x, g } = at;
    let x = x[0];
    let shape = b.shape(x);
    let axes = reduced_axes(&shape, axes).expect("invariant: the axes were inferred");
    if axes.is_empty() {
        // Nothing was reduced: the node is the identity (a count of 1 for mean).
        return Ok(g);
    }
    let part = |tag: &str| format!("{name}.{tag}");
    let kept = reduce_shape(&shape, &axes, true);
    let kept_view = |b: &mut Builder, of: NodeId, tag: &str| {
        if b.shape(of) == kept {
            Ok(of)
        } else {
            b.reshape(&part(tag), of, &kept)
        }
    };
    let gk = kept_view(b, g, "gk")?;
    let count: usize = axes.iter().map(|&a| shape.dims()[a]).product();
    let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    match op {
        ReduceOp::Sum => b.expand(name, gk, &shape),
        ReduceOp::Mean => {
            let expanded = b.expand(&part("expand"), gk, &shape)?;
            let n = b.constant(&part("count"), Tensor::scalar(count as f32))?;
            b.div(name, expanded, n)
        }
        ReduceOp::Max => {
            let yk = kept_view(b, y, "yk")?;
            let mask = b.binary(&part("mask"), BinaryOp::Equal, x, yk)?;
            let ties = b.sum(&part("ties"), mask, axes, true)?;
            let share = b.div(&part("share"), gk, ties)?;
            b.mul(name, share, mask)
        }
    }
}

/// The gradient `name` of `softmax` along `axis`.
pub(super) fn softmax(b: &mut Builder, axis: i64, at: Site, name: &str) -> Result<NodeId> {
    let Site { y, g, .. } = at;
    let gy = b.mul(&format!("{name}.gy"), g, y)?;
    let dot = b.sum(&format!("{name}.dot"), gy, vec![axis], true)?;
    let centered = b.sub(&format!("{name}.centered"), g, dot)?;
    b.mul(name, y, centered)
}

/// The gradient `name` of `log_softmax` along `axis`.
pub(super) fn log_softmax(b: &mut Builder, axis: i64, at: Site, name: &str) -> Result<NodeId> {
    let Site { y, g, .. } = at;
    let total = b.sum(&format!("{name}.total"), g, vec![axis], true)?;
    let p = b.unary(&format!("{name}.p"), UnaryOp::Exp, y)?;
    let ps = b.mul(&format!("{name}.ps"), p, total)?;
    b.sub(name, g, ps)
}

/// The gradient `name` of `cross_entropy` (operands `x = [logits, targets]`) with respect
/// to the logits.
pub(super) fn cross_entropy(b: &mut Builder, at: Site, name: &str) -> Result<NodeId> {
    b.node(name, Op::CrossEntropyGrad, &[at.x[0], at.x[1], at.g])
}
