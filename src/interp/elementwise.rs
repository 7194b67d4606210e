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
