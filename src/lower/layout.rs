//! Data movement: `transpose` copies through permuted strides. (`reshape` moves nothing: the
//! buffer plan gives it its operand's buffer.)

use cranelift_codegen::ir::types;

use super::{Buffer, ELEMENT_BLOCK, LowerCx};

/// Output dimension `i` is input dimension `perm[i]`, for the unit range's blocks of output
/// elements; `f32` and `i32` alike are copied as
/// 32-bit words, so every bit survives.
pub(crate) fn transpose(cx: &mut LowerCx, perm: &[usize], x: &Buffer, out: &Buffer) {
    let in_strides = x.shape().strides();
    let read: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let strides = [read, out.shape().strides()];
    let (x, out_addr) = (x.addr, out.addr);
    let range = cx.unit_positions(ELEMENT_BLOCK, out.shape().numel());
    cx.strided_range(out.shape().dims(), &strides, range, &mut |cx, at| {
        let word = cx.load(types::I32, x, at[0]);
        cx.store(word, out_addr, at[1]);
    });
}
