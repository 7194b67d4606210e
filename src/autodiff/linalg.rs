//! Vector-Jacobian products of `matmul` and `linear` (PyTorch's formulas):
//!
//! ```text
//! matmul  y = a @ b:         da = sum_to(g @ bᵀ, a),  db = sum_to(aᵀ @ g, b)
//! linear  y = x · Wᵀ + b:    dx = g @ W,  dW = gᵀ @ x,  db = sum of g over all but the last dim
//! ```
//! (`ᵀ` swaps the last two dimensions; `linear` views `x` and `g` as matrices `[R, in]` and
//! `[R, out]`, views that cost nothing.) The transposes are materialized `transpose` nodes, on
//! the smaller side where there is a choice: for `linear`, only `g` (`[R, out]`) is transposed,
//! never `x` or `W`; for SimpleNet at batch 32 that is at most 32 × 256 floats, microseconds
//! against the products' millions of multiply-adds, so the GEMM keeps its plain row-major
//! operands rather than growing transpose attributes. (Measured with `perf` on SimpleNet's
//! training step: the three `.gt` transposes take about 1% of the step at batch 32 on one
//! thread and about 2% at batch 256 on two. A transpose attribute on `matmul`, lowered as
//! `sgemm` strides, would remove them; it needs the GEMM lowering to read strided operands.)

use super::Cx;
use crate::graph::{NodeId, Op, Shape};

/// `[..., m, n] -> [..., n, m]`.
fn swap_last_two(cx: &mut Cx, name: &str, x: NodeId) -> NodeId {
    let rank = cx.shape(x).rank();
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    cx.add(name, Op::Transpose { perm }, &[x])
}

/// The gradients of `matmul` (operands `x = [a, b]`) for `g`.
pub(super) fn matmul(
    cx: &mut Cx,
    x: &[NodeId],
    g: NodeId,
    names: &[Option<String>],
) -> Vec<Option<NodeId>> {
    let out_shape = cx.shape(g);
    let mut out = vec![None, None];
    for side in 0..2 {
        let Some(name) = names[side].as_deref() else {
            continue;
        };
        let own = cx.shape(x[side]);
        let t = swap_last_two(cx, &format!("{name}.t"), x[1 - side]);
        // The product has the broadcast batch dimensions; it is the gradient itself when
        // the operand was not broadcast.
        let full_rank = out_shape.rank() == own.rank();
        let batch_same =
            full_rank && out_shape.dims()[..own.rank() - 2] == own.dims()[..own.rank() - 2];
        let full_name = if batch_same {
            name.to_string()
        } else {
            format!("{name}.full")
        };
        let operands = if side == 0 { [g, t] } else { [t, g] };
        let full = cx.add(&full_name, Op::MatMul, &operands);
        out[side] = Some(cx.sum_to(name, full, &own));
    }
    out
}

/// The gradients of `linear` (operands `x = [x, weight(, bias)]`) for `g`.
pub(super) fn linear(
    cx: &mut Cx,
    x: &[NodeId],
    g: NodeId,
    names: &[Option<String>],
) -> Vec<Option<NodeId>> {
    let (input, weight) = (x[0], x[1]);
    let x_shape = cx.shape(input);
    let g_shape = cx.shape(g);
    let (outs, ins) = {
        let w = cx.shape(weight);
        (w.dims()[0], w.dims()[1])
    };
    let rows: usize = x_shape.dims()[..x_shape.rank() - 1].iter().product();
    let as_matrix = x_shape.rank() == 2;
    let mut out = vec![None; x.len()];
    // g as [R, out]: itself for a rank-2 input, else a view.
    let g_name = format!("{}.rows", cx.graph.node(g).name);
    let mut g2 = None;
    let mut rows_of_g = |cx: &mut Cx| {
        *g2.get_or_insert_with(|| {
            if as_matrix {
                g
            } else {
                cx.reshape(&g_name, g, &Shape::new([rows, outs]))
            }
        })
    };
    if let Some(name) = names[0].as_deref() {
        let g2 = rows_of_g(cx);
        let product_name = if as_matrix {
            name.to_string()
        } else {
            format!("{name}.rows")
        };
        let product = cx.add(&product_name, Op::MatMul, &[g2, weight]);
        out[0] = Some(if as_matrix {
            product
        } else {
            cx.reshape(name, product, &x_shape)
        });
    }
    if let Some(name) = names[1].as_deref() {
        let g2 = rows_of_g(cx);
        let gt = cx.add(
            &format!("{name}.gt"),
            Op::Transpose { perm: vec![1, 0] },
            &[g2],
        );
        let x2 = if as_matrix {
            input
        } else {
            cx.reshape(&format!("{name}.x"), input, &Shape::new([rows, ins]))
        };
        out[1] = Some(cx.add(name, Op::MatMul, &[gt, x2]));
    }
    if let Some(name) = names.get(2).and_then(|n| n.as_deref()) {
        out[2] = Some(if g_shape.rank() == 1 {
            g
        } else {
            let axes = (0..g_shape.rank() as i64 - 1).collect();
            let sum = Op::Reduce {
                op: crate::graph::ReduceOp::Sum,
                axes,
                keepdim: false,
            };
            cx.add(name, sum, &[g])
        });
    }
    out
}
