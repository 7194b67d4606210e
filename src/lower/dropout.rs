//! The dropout family's masks in train mode, under RNG contract v1 ([`crate::rng::mask`]), bit
//! for bit the interpreter's. Applying a keep bit to an element is one small function of it:
//! `super::arith` (scalar, keep byte) and `super::vector_arith` (four lanes, lane mask), zeroing
//! with the scale or the alpha affine.
//!
//! In a vector kernel ([`super::simd`]: element-wise kinds without broadcast dimensions,
//! among ops with `f32x4` forms) the mask is made in the loop, 128 keep bits per group by the
//! generator ([`super::bitplane`]). Everywhere else (channel-wise kinds, broadcast
//! masks, kernels with calls) a dropout is lowered in two parts, so that it can sit inside a
//! fused scalar loop ([`super::elementwise`]):
//! 1. [`draw_phase`], a phase before the kernel's loop ([`crate::plan::phase`]): a loop over the
//!    unit range's mask groups of 128 elements, in runs whose keep bits come from one call of
//!    the generator ([`super::bitplane`]), each bit becoming one keep byte in the node's
//!    scratch buffer (rounded up to whole groups, so always in bounds);
//! 2. in the loop's body ([`keep`] finds the bytes), the element reads the keep byte at its
//!    mask index (row-major in the mask shape, broadcast coordinates set to 0, i.e. stride 0)
//!    and becomes `keep ? x * scale : +0.0`, or `keep ? (x * a) + b : c` for the alpha kinds.
//!
//! `p = 1` is `+0.0` everywhere without drawing. `p = 0` and eval mode are removed by
//! `passes::eliminate_dropout`; should one reach lowering, it is the identity it is.
//!
//! A dropout with `sample_steps` draws sample after sample, each at its own step
//! ([`Planes::for_sample`]), and each sample's keep bytes start a group of their own in the
//! scratch buffer (its dimension-0 stride is the sample's whole groups).
//!
//! A dropout mask ([`mask`]) is a kernel of its own that draws the same keep bytes straight
//! into its `bool` output: whole groups, then the lanes of the last, partial group, so it
//! writes exactly the mask's bytes.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::bitplane::{self, Planes};
use super::{Buffer, LowerCx};
use crate::graph::{Dropout, Graph, NodeId, Shape};
use crate::rng::mask::{GROUP_SIZE, drawn_groups, groups_per_sample};

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
    let mut strides: Vec<usize> = (mask.dims().iter().zip(mask.strides()))
        .map(|(&dim, stride)| if dim == 1 { 0 } else { stride })
        .collect();
    if d.sample_steps && mask.dims()[0] > 1 {
        // Each sample's keep bytes start a group of their own (see `draw_phase`).
        let samples = (d.mask_samples(input))
            .expect("invariant: the node's type was inferred, so its attributes fit its input");
        strides[0] = groups_per_sample(samples) * GROUP_SIZE;
    }
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
    let planes = Planes::new(cx, d);
    let (begin, end) = cx.unit_positions(1, drawn_groups(d, input));
    if !d.sample_steps {
        draw_groups(cx, &planes, begin, end, keep);
        return;
    }
    // Units are the groups of every sample, each sample's starting at `s * per_sample`
    // groups: the unit range's part of each sample it meets, at that sample's step.
    let samples = (d.mask_samples(input))
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let per_sample = groups_per_sample(samples);
    if per_sample == 0 {
        // Empty samples: nothing to draw (and no unit to run).
        return;
    }
    bitplane::for_each_sample(cx, (begin, end), per_sample, &mut |cx, part| {
        // The sample's own group numbers, and its keep bytes.
        let lo = cx.b.ins().isub(part.lo, part.base);
        let hi = cx.b.ins().isub(part.hi, part.base);
        let bytes = cx.b.ins().imul_imm_u(part.base, GROUP_SIZE as i64);
        let sample_keep = cx.b.ins().iadd(keep, bytes);
        let zero = cx.index(0);
        draw_groups(cx, &planes.for_sample(part.s, zero), lo, hi, sample_keep);
    });
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
    let planes = Planes::new(cx, d);
    if !d.sample_steps {
        draw_mask(cx, &planes, n, out.addr);
        return;
    }
    // Sample after sample, each at its own step, packed as the mask shape is.
    let samples = (d.mask_samples(input))
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    cx.counted_loop(samples.samples, &mut |cx, s| {
        let offset = cx.b.ins().imul_imm_u(s, samples.per_sample as i64);
        let sample_out = cx.b.ins().iadd(out.addr, offset);
        let zero = cx.index(0);
        draw_mask(
            cx,
            &planes.for_sample(s, zero),
            samples.per_sample,
            sample_out,
        );
    });
}

/// Draws the `n` keep bytes of one mask (or one sample's) into `out`, exactly those bytes:
/// whole groups, then the lanes of the last, partial group.
fn draw_mask(cx: &mut LowerCx, planes: &Planes, n: usize, out: Value) {
    let (zero, full) = (cx.index(0), cx.index(n / GROUP_SIZE));
    draw_groups(cx, planes, zero, full, out);
    if !n.is_multiple_of(GROUP_SIZE) {
        // The partial group: only its own bytes.
        let one = cx.index(1);
        planes.fill(cx, full, one);
        let base = cx.index(n / GROUP_SIZE * GROUP_SIZE);
        cx.counted_loop(n % GROUP_SIZE, &mut |cx, l| {
            let kept = planes.lane(cx, l);
            let j = cx.b.ins().iadd(base, l);
            cx.store(kept, out, j);
        });
    }
}

/// Draws the keep bytes of mask groups `[start, stop)` (pointer-sized), whole groups:
/// `keep[g * 128 + e]` for every lane `e` of each, one generator call per run of groups.
fn draw_groups(cx: &mut LowerCx, planes: &Planes, start: Value, stop: Value, keep: Value) {
    bitplane::for_each_run(cx, start, stop, &mut |cx, first, count| {
        planes.fill(cx, first, count);
        let base = cx.b.ins().imul_imm_u(first, GROUP_SIZE as i64);
        let lanes = cx.b.ins().imul_imm_u(count, GROUP_SIZE as i64);
        let zero = cx.index(0);
        cx.range_loop(zero, lanes, &mut |cx, l| {
            let kept = planes.lane(cx, l);
            let j = cx.b.ins().iadd(base, l);
            cx.store(kept, keep, j);
        });
    });
}
