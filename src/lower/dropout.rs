//! The dropout family in train mode, under RNG contract v1 ([`crate::rng::mask`]), bit for
//! bit the interpreter's masks and values. A dropout is lowered in two parts, so that it can
//! sit inside a fused element-wise loop ([`super::elementwise`]):
//! 1. [`draw_phase`], a phase before the kernel's loop ([`super::phase`]): a loop over the
//!    unit range's mask groups of 128 elements, where the Philox emitter ([`super::philox`])
//!    writes the group's 128 uniforms `U` to a stack buffer and each becomes one keep byte
//!    `U < Q` in the node's scratch buffer (rounded up to whole groups, so always in bounds);
//! 2. [`element`], in the loop's body ([`keep`] finds the bytes): the element reads the keep
//!    byte at its mask index
//!    (row-major in the mask shape, broadcast coordinates set to 0, i.e. stride 0) and becomes
//!    `keep ? x * scale : +0.0`, or `keep ? (x * a) + b : c` for the alpha kinds.
//!
//! `p = 1` is `+0.0` everywhere without drawing. `p = 0` and eval mode are removed by
//! `passes::eliminate_dropout`; should one reach lowering, it is the identity it is.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{LowerCx, arith, philox};
use crate::graph::{Dropout, Graph, NodeId, Shape};
use crate::rng::mask::{GROUP_SIZE, keep_threshold};

/// Bytes of keep mask the scratch buffer of a dropout with this mask shape needs.
pub(crate) fn scratch_bytes(mask: &Shape) -> usize {
    mask.numel().div_ceil(GROUP_SIZE) * GROUP_SIZE
}

/// True if `d` draws a mask: `0 < p < 1`.
pub(crate) fn draws(d: &Dropout) -> bool {
    d.p > 0.0 && d.p < 1.0
}

/// A drawn keep mask: the scratch buffer's address and the strides that map a coordinate of
/// the dropout's input to its mask index.
pub(crate) struct Keep {
    pub addr: Value,
    pub strides: Vec<usize>,
}

/// The keep bytes of the dropout `id` (`d`, applied to an input of shape `input`), drawn by
/// its draw phase, if it draws at all.
pub(crate) fn keep(cx: &mut LowerCx, id: NodeId, d: &Dropout, input: &Shape) -> Option<Keep> {
    if !draws(d) {
        return None;
    }
    let mask = d
        .mask_shape(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let addr = cx.scratch_addr(id);
    let strides = (mask.dims().iter().zip(mask.strides()))
        .map(|(&dim, stride)| if dim == 1 { 0 } else { stride })
        .collect();
    Some(Keep { addr, strides })
}

/// The draw phase of the dropout `id`: fills `keep[j] = U(j) < Q` for every mask element `j`
/// of the unit range's groups (whole groups).
pub(crate) fn draw_phase(cx: &mut LowerCx, graph: &Graph, id: NodeId) {
    let d = (graph.node(id).op.as_dropout()).expect("invariant: a draw phase is a dropout's");
    assert!(
        draws(d),
        "invariant: only drawing dropouts have a draw phase"
    );
    let keep = cx.scratch_addr(id);
    let q = i64::try_from(keep_threshold(d.p)).expect("invariant: Q <= 2^32");
    let uniforms = cx.stack_buffer((GROUP_SIZE * 4) as u32);
    let (seed, step) = cx.seed_and_step();
    let stream = cx.b.ins().iconst(types::I32, i64::from(d.stream));
    let input = &graph.node(graph.operands(id)[0]).ty.shape;
    let mask = d
        .mask_shape(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let (begin, end) = cx.unit_positions(1, mask.numel().div_ceil(GROUP_SIZE));
    cx.range_loop(begin, end, &mut |cx, g| {
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

/// `d` applied to one element `x`; `kept` is its keep byte (i8), loaded iff `d` draws.
pub(crate) fn element(cx: &mut LowerCx, d: &Dropout, x: Value, kept: Option<Value>) -> Value {
    let Some(kept) = kept else {
        assert!(
            !draws(d),
            "invariant: a drawing dropout reads its keep byte"
        );
        // p = 1 drops everything (even NaN) to +0.0; p = 0 keeps the input's bits.
        return if d.p == 1.0 { cx.f32(0.0) } else { x };
    };
    if d.kind.is_alpha() {
        arith::dropout_alpha(cx, kept, x, d.alpha_coefficients())
    } else {
        arith::dropout_zeroing(cx, kept, x, d.scale())
    }
}
