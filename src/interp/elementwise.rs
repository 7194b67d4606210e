//! Element-wise ops over whole arrays: unary maps and broadcasting binary ops. The scalar
//! arithmetic itself lives in [`crate::math`].

use crate::graph::{BinaryOp, Shape, UnaryOp};
use crate::math::{self, Element};

use super::layout::broadcast_offsets;
use super::value::Array;

/// `op` applied to every element.
pub(crate) fn unary<T: Element>(op: UnaryOp, x: &Array<T>) -> Array<T> {
    let data = x.data.iter().map(|&v| math::unary(op, v)).collect();
    Array::filled(x.shape.clone(), data)
}

/// `op` on the operands broadcast to `out` (the node's inferred shape): output element `i`
/// reads each operand at its broadcast coordinates.
pub(crate) fn binary<T: Element>(
    op: BinaryOp,
    a: &Array<T>,
    b: &Array<T>,
    out: &Shape,
) -> Array<T> {
    let data = broadcast_offsets(&a.shape, out)
        .zip(broadcast_offsets(&b.shape, out))
        .map(|(i, j)| math::binary(op, a.data[i], b.data[j]))
        .collect();
    Array::filled(out.clone(), data)
}

/// `cond ? a : b` element by element, the three broadcast to `out`.
pub(crate) fn select<T: Element>(
    cond: &Array<bool>,
    a: &Array<T>,
    b: &Array<T>,
    out: &Shape,
) -> Array<T> {
    let data = (broadcast_offsets(&cond.shape, out))
        .zip(broadcast_offsets(&a.shape, out))
        .zip(broadcast_offsets(&b.shape, out))
        .map(|((c, i), j)| if cond.data[c] { a.data[i] } else { b.data[j] })
        .collect();
    Array::filled(out.clone(), data)
}

/// `torch.ones(*shape, dtype=bool).tril(diagonal)` into `out` (`shape`'s elements):
/// `[..., i, j]` holds iff `j <= i + diagonal`.
pub(crate) fn tril(shape: &Shape, diagonal: i64, out: &mut [bool]) {
    let dims = shape.dims();
    let columns = dims[dims.len() - 1].max(1);
    let rows = dims[dims.len() - 2].max(1);
    for (k, kept) in out.iter_mut().enumerate() {
        let (i, j) = ((k / columns) % rows, k % columns);
        *kept = (j as i128) <= i as i128 + i128::from(diagonal);
    }
}
