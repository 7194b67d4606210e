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

use super::Cx;
use crate::graph::infer::{reduce_shape, reduced_axes};
use crate::graph::{BinaryOp, NodeId, Op, ReduceOp, UnaryOp};
use crate::tensor::Tensor;

/// The gradient of `reshape` (of operand `x`) for `g`.
pub(super) fn reshape(
    cx: &mut Cx,
    x: NodeId,
    g: NodeId,
    names: &[Option<String>],
) -> Option<NodeId> {
    let name = names[0].as_deref()?;
    let shape = cx.shape(x);
    Some(cx.reshape(name, g, &shape))
}

/// The gradient of `transpose` by `perm` for `g`: the inverse permutation.
pub(super) fn transpose(
    cx: &mut Cx,
    perm: &[usize],
    g: NodeId,
    names: &[Option<String>],
) -> Option<NodeId> {
    let name = names[0].as_deref()?;
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    Some(cx.add(name, Op::Transpose { perm: inverse }, &[g]))
}

/// The gradient of reduction `op` over `axes` (node `y` of operand `x`) for `g`.
pub(super) fn reduce(
    cx: &mut Cx,
    op: ReduceOp,
    axes: &[i64],
    y: NodeId,
    x: NodeId,
    g: NodeId,
    names: &[Option<String>],
) -> Option<NodeId> {
    let name = names[0].as_deref()?;
    let shape = cx.shape(x);
    let axes = reduced_axes(&shape, axes).expect("invariant: the axes were inferred");
    if axes.is_empty() {
        // Nothing was reduced: the node is the identity (a count of 1 for mean).
        return Some(g);
    }
    let kept = reduce_shape(&shape, &axes, true);
    let kept_view = |cx: &mut Cx, of: NodeId, tag: &str| {
        if cx.shape(of) == kept {
            of
        } else {
            cx.reshape(&format!("{name}.{tag}"), of, &kept)
        }
    };
    let gk = kept_view(cx, g, "gk");
    let count: usize = axes.iter().map(|&a| shape.dims()[a]).product();
    let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    let node = match op {
        ReduceOp::Sum => cx.expand(name, gk, &shape),
        ReduceOp::Mean => {
            let expanded = cx.expand(&format!("{name}.expand"), gk, &shape);
            let n = cx.constant(&format!("{name}.count"), Tensor::scalar(count as f32));
            cx.add(name, Op::Binary(BinaryOp::Div), &[expanded, n])
        }
        ReduceOp::Max => {
            let yk = kept_view(cx, y, "yk");
            let mask = cx.add(
                &format!("{name}.mask"),
                Op::Binary(BinaryOp::Equal),
                &[x, yk],
            );
            let sum = Op::Reduce {
                op: ReduceOp::Sum,
                axes,
                keepdim: true,
            };
            let ties = cx.add(&format!("{name}.ties"), sum, &[mask]);
            let share = cx.add(
                &format!("{name}.share"),
                Op::Binary(BinaryOp::Div),
                &[gk, ties],
            );
            cx.add(name, Op::Binary(BinaryOp::Mul), &[share, mask])
        }
    };
    Some(node)
}

/// The gradient of `softmax` along `axis` (node `y`) for `g`.
pub(super) fn softmax(
    cx: &mut Cx,
    axis: i64,
    y: NodeId,
    g: NodeId,
    names: &[Option<String>],
) -> Option<NodeId> {
    let name = names[0].as_deref()?;
    let gy = cx.add(&format!("{name}.gy"), Op::Binary(BinaryOp::Mul), &[g, y]);
    let sum = Op::Reduce {
        op: ReduceOp::Sum,
        axes: vec![axis],
        keepdim: true,
    };
    let s = cx.add(&format!("{name}.dot"), sum, &[gy]);
    let d = cx.add(
        &format!("{name}.centered"),
        Op::Binary(BinaryOp::Sub),
        &[g, s],
    );
    Some(cx.add(name, Op::Binary(BinaryOp::Mul), &[y, d]))
}

/// The gradient of `log_softmax` along `axis` (node `y`) for `g`.
pub(super) fn log_softmax(
    cx: &mut Cx,
    axis: i64,
    y: NodeId,
    g: NodeId,
    names: &[Option<String>],
) -> Option<NodeId> {
    let name = names[0].as_deref()?;
    let sum = Op::Reduce {
        op: ReduceOp::Sum,
        axes: vec![axis],
        keepdim: true,
    };
    let s = cx.add(&format!("{name}.total"), sum, &[g]);
    let p = cx.add(&format!("{name}.p"), Op::Unary(UnaryOp::Exp), &[y]);
    let ps = cx.add(&format!("{name}.ps"), Op::Binary(BinaryOp::Mul), &[p, s]);
    Some(cx.add(name, Op::Binary(BinaryOp::Sub), &[g, ps]))
}

/// The gradients of `cross_entropy` (operands `x = [logits, targets]`) for `g`.
pub(super) fn cross_entropy(
    cx: &mut Cx,
    x: &[NodeId],
    g: NodeId,
    names: &[Option<String>],
) -> Vec<Option<NodeId>> {
    let logits = names[0]
        .as_deref()
        .map(|name| cx.add(name, Op::CrossEntropyGrad, &[x[0], x[1], g]));
    vec![logits, None]
}
