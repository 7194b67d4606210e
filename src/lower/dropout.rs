//! The dropout family in train mode, under RNG contract v1 ([`crate::rng::mask`]), bit for
//! bit the interpreter's masks and values.
//!
//! Two loops:
//! 1. over the mask's groups of 128 elements: the Philox emitter ([`super::philox`]) writes
//!    the group's 128 uniforms `U` to a stack buffer, and each becomes one keep byte
//!    `U < Q` in the node's scratch buffer (rounded up to whole groups, so always in bounds);
//! 2. over the input: each element reads the keep byte at its mask index (row-major in the
//!    mask shape, broadcast coordinates set to 0, i.e. stride 0) and becomes
//!    `keep ? x * scale : +0.0`, or `keep ? (x * a) + b : c` for the alpha kinds.
//!
//! `p = 1` stores `+0.0` everywhere without drawing. `p = 0` and eval mode are removed by
//! `passes::eliminate_dropout`; should one reach lowering, it is lowered as the copy it is.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, types};

use super::{Buffer, LowerCx, arith, philox};
use crate::graph::{Dropout, NodeId, Shape};
use crate::rng::mask::{GROUP_SIZE, keep_threshold};

/// Bytes of keep mask the scratch buffer of a dropout with this mask shape needs.
pub(crate) fn scratch_bytes(mask: &Shape) -> usize {
    mask.numel().div_ceil(GROUP_SIZE) * GROUP_SIZE
}

/// `d` applied to `x` in train mode.
pub(crate) fn dropout(cx: &mut LowerCx, id: NodeId, d: &Dropout, x: &Buffer, out: &Buffer) {
    let numel = x.shape().numel();
    let (x_addr, out_addr) = (x.addr, out.addr);
    if d.p == 0.0 {
        // Identity: copy the bits.
        cx.counted_loop(numel, &mut |cx, i| {
            let word = cx.load(types::I32, x_addr, i);
            cx.store(word, out_addr, i);
        });
        return;
    }
    if d.p == 1.0 {
        cx.counted_loop(numel, &mut |cx, i| {
            let zero = cx.f32(0.0);
            cx.store(zero, out_addr, i);
        });
        return;
    }
    let mask = d
        .mask_shape(x.shape())
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let keep = cx.scratch_addr(id);
    draw_keep_bytes(cx, d, &mask, keep);
    let mask_strides: Vec<usize> = (mask.dims().iter().zip(mask.strides()))
        .map(|(&dim, stride)| if dim == 1 { 0 } else { stride })
        .collect();
    let strides = [x.shape().strides(), mask_strides];
    let alpha = d.kind.is_alpha().then(|| d.alpha_coefficients());
    let scale = d.scale();
    cx.strided_loop(x.shape().dims(), &strides, &mut |cx, at| {
        let v = cx.load(types::F32, x_addr, at[0]);
        let kept = cx.load(types::I8, keep, at[1]);
        let y = match alpha {
            Some(coefficients) => arith::dropout_alpha(cx, kept, v, coefficients),
            None => arith::dropout_zeroing(cx, kept, v, scale),
        };
        cx.store(y, out_addr, at[0]);
    });
}

/// Fills `keep[j] = U(j) < Q` for every mask element `j` (whole groups).
fn draw_keep_bytes(
    cx: &mut LowerCx,
    d: &Dropout,
    mask: &Shape,
    keep: cranelift_codegen::ir::Value,
) {
    let groups = mask.numel().div_ceil(GROUP_SIZE);
    let q = i64::try_from(keep_threshold(d.p)).expect("invariant: Q <= 2^32");
    let uniforms = cx.stack_buffer((GROUP_SIZE * 4) as u32);
    let (seed, step) = cx.seed_and_step();
    let stream = cx.b.ins().iconst(types::I32, i64::from(d.stream));
    cx.counted_loop(groups, &mut |cx, g| {
        philox::emit_group_uniforms(&mut cx.b, seed, stream, step, g, uniforms);
        let first = cx.b.ins().imul_imm_s(g, GROUP_SIZE as i64);
        cx.counted_loop(GROUP_SIZE, &mut |cx, e| {
            let u = cx.load(types::I32, uniforms, e);
            let u = cx.b.ins().uextend(types::I64, u);
            let kept = cx.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, u, q);
            let j = cx.b.ins().iadd(first, e);
            cx.store(kept, keep, j);
        });
    });
}
