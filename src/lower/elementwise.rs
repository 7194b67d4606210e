//! Element-wise ops over whole buffers: unary maps over contiguous data and binary ops that
//! broadcast their operands (NumPy rules) through [`LowerCx::strided_loop`].

use cranelift_codegen::ir::types;

use super::{Buffer, LowerCx, arith, broadcast_strides};
use crate::graph::{BinaryOp, UnaryOp};

/// `out[i] = op(x[i])`.
pub(crate) fn unary(cx: &mut LowerCx, op: UnaryOp, x: &Buffer, out: &Buffer) {
    let (x, out_addr) = (x.addr, out.addr);
    cx.counted_loop(out.shape().numel(), &mut |cx, i| {
        let v = cx.load(types::F32, x, i);
        let y = arith::unary(cx, op, v);
        cx.store(y, out_addr, i);
    });
}

/// `out[c] = op(a[c], b[c])` at every coordinate `c` of the output, operands broadcast.
pub(crate) fn binary(cx: &mut LowerCx, op: BinaryOp, a: &Buffer, b: &Buffer, out: &Buffer) {
    let shape = out.shape();
    let strides = [
        broadcast_strides(a.shape(), shape),
        broadcast_strides(b.shape(), shape),
        shape.strides(),
    ];
    let (a, b, out) = (a.addr, b.addr, out.addr);
    cx.strided_loop(shape.dims(), &strides, &mut |cx, at| {
        let x = cx.load(types::F32, a, at[0]);
        let y = cx.load(types::F32, b, at[1]);
        let z = arith::binary(cx, op, x, y);
        cx.store(z, out, at[2]);
    });
}
