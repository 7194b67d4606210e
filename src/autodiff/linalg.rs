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

use super::elementwise::sum_to;
use super::{Gradients, Site};
use crate::error::Result;
use crate::graph::{Builder, NodeId, Shape};

/// `[..., m, n] -> [..., n, m]`.
fn swap_last_two(b: &mut Builder, name: &str, x: NodeId) -> Result<NodeId> {
    let rank = b.shape(x).rank();
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    b.transpose(name, x, perm)
}

/// The gradients of `matmul`.
pub(super) fn matmul(b: &mut Builder, at: Site, names: &[Option<String>]) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let out_shape = b.shape(g);
    let mut out = vec![None, None];
    for side in 0..2 {
        let Some(name) = names[side].as_deref() else {
            continue;
        };
        let own = b.shape(x[side]);
        let t = swap_last_two(b, &format!("{name}.t"), x[1 - side])?;
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
        let full = if side == 0 {
            b.matmul(&full_name, g, t)?
        } else {
            b.matmul(&full_name, t, g)?
        };
        out[side] = Some(sum_to(b, name, full, &own)?);
    }
    Ok(out)
}

/// The gradients of `linear` (operands `x = [input, weight(, bias)]`).
pub(super) fn linear(b: &mut Builder, at: Site, names: &[Option<String>]) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let (input, weight) = (x[0], x[1]);
    let x_shape = b.shape(input);
    let g_shape = b.shape(g);
    let (outs, ins) = {
        let w = b.shape(weight);
        (w.dims()[0], w.dims()[1])
    };
    let rows: usize = x_shape.dims()[..x_shape.rank() - 1].iter().product();
    let as_matrix = x_shape.rank() == 2;
    let mut out = vec![None; x.len()];
    // g as [R, out], for the input's and the weight's gradients: itself for a rank-2 input,
    // else a view.
    let needs_rows = names[0].is_some() || names[1].is_some();
    let g2 = if as_matrix || !needs_rows {
        g
    } else {
        let g_name = format!("{}.rows", b.graph()[g].name);
        b.reshape(&g_name, g, &Shape::new([rows, outs]))?
    };
    if let Some(name) = names[0].as_deref() {
        let product_name = if as_matrix {
            name.to_string()
        } else {
            format!("{name}.rows")
        };
        let product = b.matmul(&product_name, g2, weight)?;
        out[0] = Some(if as_matrix {
            product
        } else {
            b.reshape(name, product, &x_shape)?
        });
    }
    if let Some(name) = names[1].as_deref() {
        let gt = b.transpose(&format!("{name}.gt"), g2, vec![1, 0])?;
        let x2 = if as_matrix {
            input
        } else {
            b.reshape(&format!("{name}.x"), input, &Shape::new([rows, ins]))?
        };
        out[1] = Some(b.matmul(name, gt, x2)?);
    }
    if let Some(name) = names.get(2).and_then(|n| n.as_deref()) {
        out[2] = Some(if g_shape.rank() == 1 {
            g
        } else {
            let axes = (0..g_shape.rank() as i64 - 1).collect();
            b.sum(name, g, axes, false)?
        });
    }
    Ok(out)
}
