//! The dropout family's masks in train mode, under RNG contract v1 ([`crate::rng::mask`]), bit
//! for bit the interpreter's. Applying a keep bit to an element is one small function of it:
//! `super::arith` (scalar, keep byte) and `super::vector_arith` (four lanes, lane mask), zeroing
//! with the scale or the alpha affine.
//!
//! In a vector kernel ([`super::simd`]: element-wise kinds without broadcast dimensions,
//! among ops with `f32x4` forms) the mask is made in the loop, 128 keep bits per group by the
//! bit-plane early exit ([`super::bitplane`]). Everywhere else (channel-wise kinds, broadcast
//! masks, kernels with calls) a dropout is lowered in two parts, so that it can sit inside a
//! fused scalar loop ([`super::elementwise`]):
//! 1. [`draw_phase`], a phase before the kernel's loop ([`crate::plan::phase`]): a loop over the
//!    unit range's mask groups of 128 elements, where the Philox emitter ([`super::philox`])
//!    writes the group's 128 uniforms `U` to a stack buffer and each becomes one keep byte
//!    `U < Q` in the node's scratch buffer (rounded up to whole groups, so always in bounds);
//! 2. in the loop's body ([`keep`] finds the bytes), the element reads the keep byte at its
//!    mask index (row-major in the mask shape, broadcast coordinates set to 0, i.e. stride 0)
//!    and becomes `keep ? x * scale : +0.0`, or `keep ? (x * a) + b : c` for the alpha kinds.
//!
//! `p = 1` is `+0.0` everywhere without drawing. `p = 0` and eval mode are removed by
//! `passes::eliminate_dropout`; should one reach lowering, it is the identity it is.
//!
//! A dropout mask ([`mask`]) is a kernel of its own that draws the same keep bytes straight
//! into its `bool` output: whole groups, then the lanes of the last, partial group, so it
//! writes exactly the mask's bytes.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, LowerCx, philox};
use crate::graph::{Dropout, Graph, NodeId, Shape};
use crate::rng::mask::{GROUP_SIZE, keep_threshold};

/// A drawn keep mask: the scratch buffer's address and the strides that map a coordinate of
/// the dropout's input to its mask index.
pub(crate) struct Keep {
    pub addr: Value,
    pub strides: Vec<usize>,
}

/// The keep bytes of the dropout `id` (`d`, applied to an input of shape `input`), drawn by
/// its draw phase, if it draws at all.
pub(crate) fn keep(cx: &mut LowerCx, id: NodeId, d: &Dropout, input: &Shape) -> Option<Keep> {
    if !d.is_random() {
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
    let d = (graph[id].op.drawn_dropout()).expect("invariant: a draw phase is a dropout's");
    assert!(
        d.is_random(),
        "invariant: only drawing dropouts have a draw phase"
    );
    let keep = cx.scratch_addr(id);
    let input = &graph[graph.operands_of(id)[0]].ty.shape;
    let len = d
        .read_mask_len(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let draw = Draw::start(cx, d);
    let (begin, end) = cx.unit_positions(1, len.div_ceil(GROUP_SIZE));
    cx.range_loop(begin, end, &mut |cx, g| draw.group(cx, g, GROUP_SIZE, keep));
}

/// The keep mask of `d` applied to an input of shape `input`, as one byte (0 or 1) per mask
/// element in `out` (a `bool` buffer of the mask shape): the bytes a draw phase draws, or the
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
    if !d.is_random() {
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
