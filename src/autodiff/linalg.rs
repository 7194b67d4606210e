//! Vector-Jacobian products of `matmul` and `linear` (PyTorch's formulas):
//!
//! ```text
//! matmul  y = a @ b:         da = sum_to(g @ bᵀ, a),  db = sum_to(aᵀ @ g, b)
//! linear  y = x · Wᵀ + b:    dx = g @ W,  dW = gᵀ @ x,  db = sum of g over all but the last dim
//! ```
//! (`ᵀ` swaps the last two dimensions; `linear` views `x` and `g` as matrices `[R, in]` and
//! `[R, out]`, views that cost nothing.) No transpose is materialized: every `ᵀ` is a flag of
//! the gradient's `matmul` (`transpose_a`, `transpose_b`), which the GEMM reads as strides, and
//! the gradients of a `matmul` that has flags itself follow from the same formulas (for
//! `y = aᵀ @ b`, `da = (g @ bᵀ)ᵀ = b @ gᵀ`).

use super::elementwise::sum_to;
use super::{Gradients, Site};
use crate::error::Result;
use crate::graph::{Builder, Shape};

/// The gradients of `matmul`, `C = op_a(A) · op_b(B)` with `op` a swap of the last two
/// dimensions where the op's flag says: each is a product of the incoming gradient and the
/// other operand, with the flags that read both in place (no transposed copies), summed over
/// the batch dimensions the operand was broadcast along.
pub(super) fn matmul(
    b: &mut Builder,
    at: Site,
    names: &[Option<String>],
    (transpose_a, transpose_b): (bool, bool),
) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let out_shape = b.shape(g);
    let mut out = vec![None, None];
    for side in 0..2 {
        let Some(name) = names[side].as_deref() else {
            continue;
        };
        let own = b.shape(x[side]);
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
        // dA = dC · op_b(B)ᵀ, or its transpose op_b(B) · dCᵀ when A is read transposed;
        // dB = op_a(A)ᵀ · dC, or dCᵀ · op_a(A).
        let (operands, flags) = match (side, transpose_a, transpose_b) {
            (0, false, tb) => ((g, x[1]), (false, !tb)),
            (0, true, tb) => ((x[1], g), (tb, true)),
            (_, ta, false) => ((x[0], g), (!ta, false)),
            (_, ta, true) => ((g, x[0]), (true, ta)),
        };
        let full = b.matmul_transposed(&full_name, operands, flags)?;
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
        let x2 = if as_matrix {
            input
        } else {
            b.reshape(&format!("{name}.x"), input, &Shape::new([rows, ins]))?
        };
        // gᵀ · x, reading g transposed in place.
        out[1] = Some(b.matmul_transposed(name, (g2, x2), (true, false))?);
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

/// The gradient of an embedding lookup (operands `indices, weight`) with respect to its table:
/// the scatter-add of `g` by the indices (`embedding_grad`, the padding row zero).
pub(super) fn embedding(
    b: &mut Builder,
    e: &crate::graph::Embedding,
    at: Site,
    names: &[Option<String>],
) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let mut out = vec![None; x.len()];
    if let Some(name) = names.get(1).and_then(|n| n.as_deref()) {
        let op = crate::graph::Op::EmbeddingGrad(crate::graph::EmbeddingGrad {
            num_embeddings: b.shape(x[1]).dims()[0],
            padding_idx: e.padding_idx,
        });
        out[1] = Some(b.node(name, op, &[g, x[0]])?);
    }
    Ok(out)
}
