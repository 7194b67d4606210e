//! Ops that read by i32 indices: the index check (a phase before the op: cross-entropy's
//! targets, an embedding's indices), the embedding gather and its scatter-add gradient, in the
//! interpreter's order ([`crate::graph::embedding`]).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, types};

use super::{Buffer, LowerCx};
use crate::graph::NodeId;

/// The index check of node `id`: returns its error code with the position and the value of
/// the first index of the unit range outside `0..bound`.
pub(crate) fn check_indices(cx: &mut LowerCx, id: NodeId, bound: usize, indices: &Buffer) {
    let t = indices.addr;
    let range = cx.unit_positions(1, indices.shape().numel());
    cx.range_loop(range.0, range.1, &mut |cx, r| {
        let index = cx.load(types::I32, t, r);
        // Unsigned, so a negative index is out of range too.
        let outside =
            (cx.b.ins()).icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, index, bound as i64);
        let wide = cx.b.ins().sextend(types::I64, index);
        cx.fail_if(outside, id, [r, wide]);
    });
}

/// `embedding(indices, weight)`: row `indices[p]` of the table at each position (indices
/// checked by [`check_indices`]).
pub(crate) fn embedding(cx: &mut LowerCx, indices: &Buffer, weight: &Buffer, out: &Buffer) {
    let dim = weight.shape().dims()[1];
    let (t, w, y) = (indices.addr, weight.addr, out.addr);
    cx.counted_loop(indices.shape().numel(), &mut |cx, p| {
        let index = cx.load(types::I32, t, p);
        let index = cx.b.ins().uextend(cx.ptr, index);
        let from = cx.b.ins().imul_imm_u(index, dim as i64);
        let to = cx.b.ins().imul_imm_u(p, dim as i64);
        cx.counted_loop(dim, &mut |cx, j| {
            let (src, dst) = (cx.b.ins().iadd(from, j), cx.b.ins().iadd(to, j));
            let v = cx.load(types::F32, w, src);
            cx.store(v, y, dst);
        });
    });
}

/// `embedding_grad(g, indices)`: zeros, then `row indices[p] += g[p]` in position order, the
/// row `padding` skipped (indices checked by [`check_indices`]).
pub(crate) fn embedding_grad(
    cx: &mut LowerCx,
    g: &Buffer,
    indices: &Buffer,
    padding: Option<usize>,
    out: &Buffer,
) {
    let dim = *out
        .shape()
        .dims()
        .last()
        .expect("invariant: the table is [num, dim]");
    let (g, t, y) = (g.addr, indices.addr, out.addr);
    let zero = cx.f32(0.0);
    cx.counted_loop(out.shape().numel(), &mut |cx, i| cx.store(zero, y, i));
    cx.counted_loop(indices.shape().numel(), &mut |cx, p| {
        let index = cx.load(types::I32, t, p);
        let index = cx.b.ins().uextend(cx.ptr, index);
        let add = cx.b.create_block();
        let next = cx.b.create_block();
        match padding {
            Some(row) => {
                let skip = cx.b.ins().icmp_imm_u(IntCC::Equal, index, row as i64);
                cx.b.ins().brif(skip, next, &[], add, &[]);
            }
            None => {
                cx.b.ins().jump(add, &[]);
            }
        }
        cx.b.switch_to_block(add);
        cx.b.seal_block(add);
        let to = cx.b.ins().imul_imm_u(index, dim as i64);
        let from = cx.b.ins().imul_imm_u(p, dim as i64);
        cx.counted_loop(dim, &mut |cx, j| {
            let (src, dst) = (cx.b.ins().iadd(from, j), cx.b.ins().iadd(to, j));
            let v = cx.load(types::F32, g, src);
            let acc = cx.load(types::F32, y, dst);
            let sum = cx.b.ins().fadd(acc, v);
            cx.store(sum, y, dst);
        });
        cx.b.ins().jump(next, &[]);
        cx.b.switch_to_block(next);
        cx.b.seal_block(next);
    });
}
