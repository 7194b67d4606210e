//! The dropout family in train mode, under RNG contract v1 ([`crate::rng::mask`]), bit for
//! bit the interpreter's masks and values. The per-element "apply" is one small function of
//! the keep bit: [`element`] (scalar, keep byte) and [`element_vector`] (four lanes, lane
//! mask), zeroing with the scale or the alpha affine.
//!
//! In a vector kernel ([`super::simd`]: element-wise kinds without broadcast dimensions,
//! among ops with `f32x4` forms) the mask is made in the loop, 128 keep bits per group by the
//! bit-plane early exit ([`super::bitplane`]), and applied by [`element_vector`]. Everywhere
//! else (channel-wise kinds, broadcast masks, kernels with calls) a dropout is lowered in two
//! parts, so that it can sit inside a fused scalar loop ([`super::elementwise`]):
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
//!
//! A dropout mask ([`mask`]) is a kernel of its own that draws the same keep bytes straight
//! into its `bool` output: whole groups, then the lanes of the last, partial group, so it
//! writes exactly the mask's bytes.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, LowerCx, arith, philox, vector_arith};
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
    let d = (graph.node(id).op.drawn_dropout()).expect("invariant: a draw phase is a dropout's");
    assert!(
        draws(d),
        "invariant: only drawing dropouts have a draw phase"
    );
    let keep = cx.scratch_addr(id);
    let input = &graph.node(graph.operands(id)[0]).ty.shape;
    let mask = d
        .mask_shape(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let draw = Draw::start(cx, d);
    let (begin, end) = cx.unit_positions(1, mask.numel().div_ceil(GROUP_SIZE));
    cx.range_loop(begin, end, &mut |cx, g| draw.group(cx, g, GROUP_SIZE, keep));
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

/// The gradient of `d` at one element `g`: `keep ? g * s : +0.0` with the keep byte `kept`
/// drawn exactly as `d`'s own (loaded iff `d` draws) and `s` = [`Dropout::grad_scale`].
pub(crate) fn grad_element(cx: &mut LowerCx, d: &Dropout, g: Value, kept: Option<Value>) -> Value {
    let Some(kept) = kept else {
        assert!(
            !draws(d),
            "invariant: a drawing gradient reads its keep byte"
        );
        return if d.p == 1.0 { cx.f32(0.0) } else { g };
    };
    arith::dropout_zeroing(cx, kept, g, d.grad_scale())
}

/// `d` applied to four elements `x` (f32x4); `mask` is their keep mask (i32x4, all ones =
/// kept), given iff `d` draws. The lanes of [`element`].
pub(crate) fn element_vector(
    cx: &mut LowerCx,
    d: &Dropout,
    x: Value,
    mask: Option<Value>,
) -> Value {
    let Some(mask) = mask else {
        assert!(!draws(d), "invariant: a drawing dropout has a lane mask");
        return if d.p == 1.0 {
            vector_arith::splat_f32(cx, 0.0)
        } else {
            x
        };
    };
    if d.kind.is_alpha() {
        let (a, b, c) = d.alpha_coefficients();
        let (a, b, c) = (
            vector_arith::splat_f32(cx, a),
            vector_arith::splat_f32(cx, b),
            vector_arith::splat_f32(cx, c),
        );
        let product = cx.b.ins().fmul(x, a);
        let kept = cx.b.ins().fadd(product, b);
        vector_arith::select(cx, mask, kept, c)
    } else {
        let scale = vector_arith::splat_f32(cx, d.scale());
        let scaled = cx.b.ins().fmul(x, scale);
        vector_arith::keep_or_zero(cx, mask, scaled)
    }
}

/// The gradient of `d` at four elements `g` (f32x4): `keep ? g * s : +0.0` with the lane mask
/// `mask` (i32x4, given iff `d` draws) made exactly as `d`'s own. The lanes of
/// [`grad_element`].
pub(crate) fn grad_element_vector(
    cx: &mut LowerCx,
    d: &Dropout,
    g: Value,
    mask: Option<Value>,
) -> Value {
    let Some(mask) = mask else {
        assert!(!draws(d), "invariant: a drawing gradient has a lane mask");
        return if d.p == 1.0 {
            vector_arith::splat_f32(cx, 0.0)
        } else {
            g
        };
    };
    let scale = vector_arith::splat_f32(cx, d.grad_scale());
    let scaled = cx.b.ins().fmul(g, scale);
    vector_arith::keep_or_zero(cx, mask, scaled)
}

/// The keep mask of `d` applied to an input of shape `input`, as one byte (0 or 1) per mask
/// element in `out` (a `bool` buffer of the mask shape): the bytes [`draw`] draws, or the
/// constant answer when `d` does not draw (`p = 1` drops all, `p = 0` keeps all).
pub(crate) fn mask(cx: &mut LowerCx, d: &Dropout, input: &Shape, out: &Buffer) {
    let mask = d
        .mask_shape(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    assert_eq!(
        &mask,
        out.shape(),
        "invariant: a mask node has the mask shape"
    );
    let n = mask.numel();
    if !draws(d) {
        let byte = cx.b.ins().iconst(types::I8, i64::from(d.p == 0.0));
        cx.counted_loop(n, &mut |cx, j| cx.store(byte, out.addr, j));
        return;
    }
    let draw = Draw::start(cx, d);
    cx.counted_loop(n / GROUP_SIZE, &mut |cx, g| {
        draw.group(cx, g, GROUP_SIZE, out.addr)
    });
    if !n.is_multiple_of(GROUP_SIZE) {
        let last = cx.index(n / GROUP_SIZE);
        draw.group(cx, last, n % GROUP_SIZE, out.addr);
    }
}

/// What drawing one dropout's groups needs, set up once before the loop over groups.
struct Draw {
    /// The keep threshold `Q`.
    q: i64,
    /// The stack buffer for one group's 128 uniforms.
    uniforms: Value,
    seed: Value,
    step: Value,
    stream: Value,
}

impl Draw {
    fn start(cx: &mut LowerCx, d: &Dropout) -> Draw {
        let q = i64::try_from(keep_threshold(d.p)).expect("invariant: Q <= 2^32");
        let uniforms = cx.stack_buffer((GROUP_SIZE * 4) as u32);
        let (seed, step) = cx.seed_and_step();
        let stream = cx.b.ins().iconst(types::I32, i64::from(d.stream));
        Draw {
            q,
            uniforms,
            seed,
            step,
            stream,
        }
    }

    /// Draws group `g` and stores its first `lanes` keep bytes at `keep[g * 128 + e]`.
    fn group(&self, cx: &mut LowerCx, g: Value, lanes: usize, keep: Value) {
        let (seed, step, stream, uniforms) = (self.seed, self.step, self.stream, self.uniforms);
        philox::emit_group_uniforms(&mut cx.b, seed, stream, step, g, uniforms);
        let first = cx.b.ins().imul_imm_s(g, GROUP_SIZE as i64);
        cx.counted_loop(lanes, &mut |cx, e| {
            let u = cx.load(types::I32, uniforms, e);
            let u = cx.b.ins().uextend(types::I64, u);
            let kept = cx.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, u, self.q);
            let j = cx.b.ins().iadd(first, e);
            cx.store(kept, keep, j);
        });
    }
}
