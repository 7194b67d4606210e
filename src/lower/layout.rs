//! Data movement: `transpose` copies through permuted strides. (`reshape` moves nothing: the
//! buffer plan gives it its operand's buffer.)

use cranelift_codegen::ir::types;

use super::{Buffer, LowerCx};
use crate::graph::DType;
use crate::plan::ELEMENT_BLOCK;

/// Output dimension `i` is input dimension `perm[i]`, for the unit range's blocks of output
/// elements; `f32` and `i32` alike are copied as 32-bit words, so every bit survives, and
/// `bool` as bytes.
pub(crate) fn transpose(cx: &mut LowerCx, perm: &[usize], x: &Buffer, out: &Buffer) {
    let word = match x.ty.dtype {
        DType::F32 | DType::I32 => types::I32,
        DType::Bool => types::I8,
    };
    let in_strides = x.shape().strides();
    let read: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let strides = [read, out.shape().strides()];
    let (x, out_addr) = (x.addr, out.addr);
    let range = cx.unit_positions(ELEMENT_BLOCK, out.shape().numel());
    cx.strided_range(out.shape().dims(), &strides, range, &mut |cx, at| {
        let value = cx.load(word, x, at[0]);
        cx.store(value, out_addr, at[1]);
    });
}
