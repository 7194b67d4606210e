//! The keep bits of a dropout's mask groups under RNG contract v1 ([`crate::rng::mask`]), as
//! generated code gets them: from the rustc-compiled generator ([`crate::rng::planes`]), a
//! run of up to [`RUN_GROUPS`] groups at a time, into a stack buffer the loop then reads group
//! by group. The generator's state ([`Run`]) lives in a second stack buffer (aligned to its
//! cache lines, zeroed once); generated code starts a run (`Import::RunStart`), steps it
//! (`RunStep`: a few more planes of every group) and finishes it (`RunFinish`: the rest, and
//! the bits into the buffer). The vector loop ([`super::simd`]) steps run `r + 1` between the
//! groups of run `r` (software pipelining); draw phases and mask kernels fill a run at once.
//!
//! A group's keep bits are one `i32x4` (bit `v` of lane `w` keeps mask lane `4v + w`), so a
//! vector loop masks vector `v` of a group with one shift and a blend ([`super::simd`]); the
//! draw phases and mask kernels ([`super::dropout`]) turn them into one byte per element.
//!
//! Why calls rather than Philox in Cranelift IR: `p = 0.5` needs one plane per group, but a
//! general `p` about 8 (0.065 Philox blocks per element), and Cranelift's four 32-bit lanes
//! could not make them as fast as memory delivers the data (p = 0.1 ran at 0.37x the scale
//! loop on a Zen 4). The generator runs 8 or 16 groups per instruction with AVX2 or AVX-512F
//! and several independent Philox chains in flight; which kernel is the compile option
//! [`crate::Compiler::isa`] (the host's best by default). Why steps: a run decided
//! whole between two runs of groups is a burst of arithmetic with no memory access, during
//! which the memory stream stalls (p = 0.5 fell from 1.0x to 0.88x the scale loop, p = 0.1
//! stayed at 0.62x); stepped between groups, the two overlap (0.99x and 0.8x).

use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::LowerCx;
use crate::graph::Dropout;
use crate::jit::Import;
use crate::rng::mask::keep_threshold;
use crate::rng::planes::{RUN_BYTES, RUN_GROUPS, Run};

/// One drawing dropout's keep bits in a loop over runs of groups.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planes {
    /// The keep threshold `Q` (`0 ..= 2^32`).
    q: u64,
    stream: u32,
    /// The run's keep words, [`RUN_GROUPS`] groups of 16 bytes.
    buffer: Value,
    /// The generator's state for the run being decided ([`Run`]).
    run: Value,
    /// For a dropout with `sample_steps`: the sample `s` (pointer-sized), drawn at step
    /// `step + s`, and the group numbers' offset `base` (group `g` is group `g - base` of
    /// the sample's mask).
    sample: Option<(Value, Value)>,
}

impl Planes {
    /// Sets up `d`'s keep bits (stack buffers for one run's bits and the generator's state).
    pub(crate) fn new(cx: &mut LowerCx, d: &Dropout) -> Planes {
        let buffer = cx.stack_buffer(RUN_BYTES as u32);
        // The state, aligned to its cache lines (a stack slot is only 16-aligned) and zeroed
        // (a valid `Run`, before the first start).
        let bytes = std::mem::size_of::<Run>();
        let align = std::mem::align_of::<Run>();
        let slot = cx.stack_buffer((bytes + align) as u32);
        let up = cx.b.ins().iadd_imm_u(slot, (align - 1) as i64);
        let run = cx.b.ins().band_imm_u(up, -(align as i64));
        let zero = splat_i32(cx, 0);
        for offset in (0..bytes).step_by(16) {
            cx.b.ins()
                .store(MemFlagsData::trusted(), zero, run, offset as i32);
        }
        Planes {
            q: keep_threshold(d.p),
            stream: d.stream,
            buffer,
            run,
            sample: None,
        }
    }

    /// The keep bits of sample `s` (pointer-sized) of a dropout with `sample_steps`, drawn
    /// at step `step + s` (which the run claimed: it cannot wrap), whose group `g - base` is
    /// asked for as group `g`.
    pub(crate) fn for_sample(&self, s: Value, base: Value) -> Planes {
        Planes {
            sample: Some((s, base)),
            ..*self
        }
    }

    /// True if every group's bits are the same constant (`p = 0` or `p = 1`): nothing to draw.
    fn constant(&self) -> Option<i64> {
        match self.q {
            0 => Some(0),
            q if q >= 1 << 32 => Some(-1),
            _ => None,
        }
    }

    /// Fills the buffer with the keep bits of groups `first .. first + count` (pointer-sized;
    /// `count` at most [`RUN_GROUPS`]) at once.
    pub(crate) fn fill(&self, cx: &mut LowerCx, first: Value, count: Value) {
        self.start_run(cx, first, count);
        self.finish(cx);
    }

    /// Starts deciding groups `first .. first + count` (`count` at most [`RUN_GROUPS`], 0
    /// for nothing): no Philox yet.
    pub(crate) fn start_run(&self, cx: &mut LowerCx, first: Value, count: Value) {
        if self.constant().is_some() {
            return;
        }
        let (seed, step) = cx.seed_and_step();
        let mut step = cx.b.ins().uextend(types::I64, step);
        let mut first = first;
        if let Some((sample, base)) = self.sample {
            step = cx.b.ins().iadd(step, sample);
            first = cx.b.ins().isub(first, base);
        }
        let stream = cx.b.ins().iconst(types::I64, i64::from(self.stream));
        let q = cx.b.ins().iconst(types::I64, self.q as i64);
        let kernel = cx.b.ins().iconst(types::I64, cx.isa as i64);
        let args = [self.run, kernel, seed, stream, step, q, first, count];
        cx.call(Import::RunStart, &args);
    }

    /// Decides a few more planes of the run started last.
    pub(crate) fn step(&self, cx: &mut LowerCx) {
        if self.constant().is_none() {
            cx.call(Import::RunStep, &[self.run]);
        }
    }

    /// Decides the rest of the run started last and writes its keep bits to the buffer.
    pub(crate) fn finish(&self, cx: &mut LowerCx) {
        if self.constant().is_none() {
            cx.call(Import::RunFinish, &[self.run, self.buffer]);
        }
    }

    /// The keep bits (i32x4) of group `i` (pointer-sized) of the run last filled.
    pub(crate) fn load(&self, cx: &mut LowerCx, i: Value) -> Value {
        if let Some(bits) = self.constant() {
            return splat_i32(cx, bits);
        }
        let offset = cx.b.ins().imul_imm_u(i, 16);
        let addr = cx.b.ins().iadd(self.buffer, offset);
        cx.b.ins()
            .load(types::I32X4, MemFlagsData::trusted(), addr, 0)
    }

    /// The keep bit of lane `l` (pointer-sized, `l < 128 * count`) of the run last filled,
    /// as an i8 truth value: bit `e / 4` of word `e % 4` of group `l / 128`, `e = l % 128`.
    pub(crate) fn lane(&self, cx: &mut LowerCx, l: Value) -> Value {
        if let Some(bits) = self.constant() {
            return cx.b.ins().iconst(types::I8, bits & 1);
        }
        // Word index: group * 4 + e % 4 = (l >> 7) * 4 + (l & 3).
        let group = cx.b.ins().ushr_imm_u(l, 7);
        let group_words = cx.b.ins().ishl_imm_u(group, 2);
        let w = cx.b.ins().band_imm_u(l, 3);
        let word_index = cx.b.ins().iadd(group_words, w);
        let word = cx.load(types::I32, self.buffer, word_index);
        let e = cx.b.ins().band_imm_u(l, 127);
        let v = cx.b.ins().ushr_imm_u(e, 2);
        let v = cx.b.ins().ireduce(types::I32, v);
        let moved = cx.b.ins().ushr(word, v);
        let bit = cx.b.ins().band_imm_u(moved, 1);
        cx.b.ins().ireduce(types::I8, bit)
    }
}

/// `for first in (start..stop).step_by(RUN_GROUPS) { body(first, min(RUN_GROUPS, stop - first)) }`
/// over run-time group bounds, the loop every drawing kernel takes its runs from.
pub(crate) fn for_each_run(
    cx: &mut LowerCx,
    start: Value,
    stop: Value,
    body: &mut dyn FnMut(&mut LowerCx, Value, Value),
) {
    let run = cx.index(RUN_GROUPS);
    // Runs start at `start + r * RUN_GROUPS`, r in 0..ceil((stop - start) / RUN_GROUPS).
    let stop = cx.b.ins().umax(stop, start);
    let span = cx.b.ins().isub(stop, start);
    let span = cx.b.ins().iadd_imm_u(span, (RUN_GROUPS - 1) as i64);
    let runs = cx.b.ins().udiv_imm_u(span, RUN_GROUPS as i64);
    let zero = cx.index(0);
    cx.range_loop(zero, runs, &mut |cx, r| {
        let offset = cx.b.ins().imul_imm_u(r, RUN_GROUPS as i64);
        let first = cx.b.ins().iadd(start, offset);
        let left = cx.b.ins().isub(stop, first);
        let count = cx.b.ins().umin(left, run);
        body(cx, first, count);
    });
}

/// The part of a range of groups inside one sample of a dropout with `sample_steps`.
#[derive(Clone, Copy)]
pub(crate) struct SamplePart {
    /// The sample (pointer-sized).
    pub s: Value,
    /// Its first group, `s * per_sample` (global group numbers).
    pub base: Value,
    /// The range's groups inside it, `lo .. hi` (global group numbers).
    pub lo: Value,
    pub hi: Value,
}

/// `body` for each sample of `per_sample` groups that groups `begin .. stop` (pointer-sized)
/// meet: the loop every drawing kernel of a dropout with `sample_steps` takes its samples
/// from.
pub(crate) fn for_each_sample(
    cx: &mut LowerCx,
    (begin, stop): (Value, Value),
    per_sample: usize,
    body: &mut dyn FnMut(&mut LowerCx, SamplePart),
) {
    let stop = cx.b.ins().umax(stop, begin);
    let first = cx.b.ins().udiv_imm_u(begin, per_sample as i64);
    let last = cx.b.ins().iadd_imm_u(stop, (per_sample - 1) as i64);
    let samples_stop = cx.b.ins().udiv_imm_u(last, per_sample as i64);
    cx.range_loop(first, samples_stop, &mut |cx, s| {
        let base = cx.b.ins().imul_imm_u(s, per_sample as i64);
        let next = cx.b.ins().iadd_imm_u(base, per_sample as i64);
        let (lo, hi) = (cx.b.ins().umax(begin, base), cx.b.ins().umin(stop, next));
        body(cx, SamplePart { s, base, lo, hi });
    });
}

/// An i32x4 with every lane `value`.
fn splat_i32(cx: &mut LowerCx, value: i64) -> Value {
    let lane = cx.b.ins().iconst(types::I32, value);
    cx.b.ins().splat(types::I32X4, lane)
}
