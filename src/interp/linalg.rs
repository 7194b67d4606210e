//! `matmul` and `linear`: sums of products in a fixed order.
//!
//! Every output element is `acc = 0.0; for k ascending: acc = acc + a[k] * b[k]` in the float
//! type, one rounding for the product and one for the sum (no FMA). The JIT may block and
//! vectorise over output elements, but each element's chain of additions must be this one.

use crate::graph::Shape;
use crate::math::Element;

use super::layout::StridedOffsets;
use super::value::Array;

/// `torch.matmul` for rank >= 2 operands, each given with whether its last two dimensions
/// are swapped first; `out` is the node's inferred shape `[broadcast batch..., m, n]`.
pub(crate) fn matmul<T: Element>(
    (a, transpose_a): (&Array<T>, bool),
    (b, transpose_b): (&Array<T>, bool),
    out: &Shape,
) -> Array<T> {
    let rank = out.rank();
    let (m, n) = (out.dims()[rank - 2], out.dims()[rank - 1]);
    let a_dims = a.shape.dims();
    let k = a_dims[a_dims.len() - if transpose_a { 2 } else { 1 }];
    // Element (i, kk) of a's matrix, and (kk, j) of b's, as offsets from the matrix's start.
    let (a_row, a_col) = if transpose_a { (1, m) } else { (k, 1) };
    let (b_row, b_col) = if transpose_b { (1, k) } else { (n, 1) };
    let batch = Shape::new(&out.dims()[..rank - 2]);
    let a_batches = batch_offsets(&a.shape, &batch, m * k);
    let b_batches = batch_offsets(&b.shape, &batch, k * n);
    let mut data = vec![T::ZERO; out.numel()];
    let outputs = data.chunks_mut((m * n).max(1));
    for ((a0, b0), c) in a_batches.zip(b_batches).zip(outputs) {
        let (a, b) = (&a.data[a0..a0 + m * k], &b.data[b0..b0 + k * n]);
        for i in 0..m {
            // Row i of c accumulates over kk ascending; each c[i][j] still sees exactly the
            // chain 0.0 + a[i][0] b[0][j] + a[i][1] b[1][j] + ..., read row-wise for the cache.
            let row = &mut c[i * n..(i + 1) * n];
            for kk in 0..k {
                let aik = a[i * a_row + kk * a_col];
                if b_col == 1 {
                    for (acc, &bkj) in row.iter_mut().zip(&b[kk * b_row..kk * b_row + n]) {
                        *acc = *acc + aik * bkj;
                    }
                } else {
                    for (j, acc) in row.iter_mut().enumerate() {
                        *acc = *acc + aik * b[kk * b_row + j * b_col];
                    }
                }
            }
        }
    }
    Array::filled(out.clone(), data)
}

/// The offset of each batch's matrix in an operand whose batch dimensions broadcast to
/// `batch`, where one matrix holds `matrix` elements.
fn batch_offsets(operand: &Shape, batch: &Shape, matrix: usize) -> StridedOffsets {
    let own = Shape::new(&operand.dims()[..operand.rank() - 2]);
    let strides: Vec<usize> = own
        .broadcast_strides(batch)
        .into_iter()
        .map(|s| s * matrix)
        .collect();
    StridedOffsets::new(batch.dims(), &strides)
}

/// `y = x · Wᵀ (+ b)` with `x: [..., in]`, `W: [out, in]`, `b: [out]`: each output is the dot
/// product (ascending, from 0.0) and then, once, `+ b[o]`.
pub(crate) fn linear<T: Element>(
    x: &Array<T>,
    weight: &Array<T>,
    bias: Option<&Array<T>>,
    out: &Shape,
) -> Array<T> {
    let (outs, ins) = (weight.shape.dims()[0], weight.shape.dims()[1]);
    let x_dims = x.shape.dims();
    let rows: usize = x_dims[..x_dims.len() - 1].iter().product();
    let mut data = Vec::with_capacity(out.numel());
    for r in 0..rows {
        let xr = &x.data[r * ins..(r + 1) * ins];
        for o in 0..outs {
            let wo = &weight.data[o * ins..(o + 1) * ins];
            let mut acc = T::ZERO;
            for (&xv, &wv) in xr.iter().zip(wo) {
                acc = acc + xv * wv;
            }
            if let Some(b) = bias {
                acc = acc + b.data[o];
            }
            data.push(acc);
        }
    }
    Array::filled(out.clone(), data)
}
