//! `softmax`, `log_softmax` and `cross_entropy`, in the interpreter's order per row:
//!
//! ```text
//! m = maximum over the row, from -inf       e_i = exp(x_i - m)       s = 0.0 + e_0 + e_1 + ...
//! softmax y_i = e_i / s      log_softmax y_i = (x_i - m) - log(s)
//! cross_entropy loss = -(0.0 + logp[0][t_0] + logp[1][t_1] + ...) / (N as f32)
//! ```
//! Along a contiguous row (the last axis) `exp(x_i - m)` is computed four elements at a time
//! ([`super::transcendental`]'s vector `exp`, the interpreter's bits lane by lane) and the
//! lanes are added to `s` one by one in index order; `y` is written four at a time.
//! `softmax` and `log_softmax` compute the unit range's rows ([`crate::plan::phase`]);
//! `cross_entropy` is one unit, since its mean sums in one fixed order. A phase before it
//! checks the targets (by rows, [`check_targets`]) against `0..C` and returns an error code
//! naming the node, the batch index and the target from the first one outside: the logits
//! are never read out of bounds.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::transcendental::{self, Lanes};
use super::{Buffer, LowerCx, arith};
use crate::graph::Shape;

/// `y_i = exp(x_i - m) / s` along `axis`; four elements at a time along a contiguous row.
pub(crate) fn softmax(cx: &mut LowerCx, axis: i64, x: &Buffer, out: &Buffer) {
    along_axis(cx, axis, x, out, &|cx, lanes, v, m, s| {
        let shifted = cx.b.ins().fsub(v, m);
        let e = transcendental::exp(cx, lanes, shifted);
        cx.b.ins().fdiv(e, s)
    });
}

/// `y_i = (x_i - m) - log(s)` along `axis`.
pub(crate) fn log_softmax(cx: &mut LowerCx, axis: i64, x: &Buffer, out: &Buffer) {
    let log_s = |cx: &mut LowerCx, s: Value| arith::log(cx, s);
    along_axis_with(cx, axis, x, out, &log_s, &|cx, _, v, m, log_s| {
        let shifted = cx.b.ins().fsub(v, m);
        cx.b.ins().fsub(shifted, log_s)
    });
}

/// `(x - m) - log(s)`.
fn log_probability(cx: &mut LowerCx, x: Value, m: Value, s: Value) -> Value {
    let shifted = cx.b.ins().fsub(x, m);
    let log_s = arith::log(cx, s);
    cx.b.ins().fsub(shifted, log_s)
}

/// `f(lanes, x_i, m, t)` with `t` the row's statistic after [`along_axis_with`]'s `per_row`;
/// `x_i`, `m` and `t` have `lanes` lanes.
type RowMap<'f> = &'f dyn Fn(&mut LowerCx, Lanes, Value, Value, Value) -> Value;

/// `(outer, len, inner)` of a shape around `axis` ([`Shape::around_axis`]).
fn split_at_axis(axis: i64, shape: &Shape) -> (usize, usize, usize) {
    (shape.around_axis(axis)).expect("invariant: the axis was inferred")
}

/// Applies `f(x_i, m, s)` to every element of the unit range's rows, with the statistics of
/// its row along `axis`.
fn along_axis(cx: &mut LowerCx, axis: i64, x: &Buffer, out: &Buffer, f: RowMap) {
    along_axis_with(cx, axis, x, out, &|_, s| s, f);
}

/// Applies `f(x_i, m, per_row(s))` to every element of the unit range's rows, with the
/// statistics of its row along `axis`; a contiguous row (`axis` the last) four elements at a
/// time and its last `len % 4` one by one, the same operations lane by lane.
fn along_axis_with(
    cx: &mut LowerCx,
    axis: i64,
    x: &Buffer,
    out: &Buffer,
    per_row: &dyn Fn(&mut LowerCx, Value) -> Value,
    f: RowMap,
) {
    let (outer, len, inner) = split_at_axis(axis, x.shape());
    let (x, out) = (x.addr, out.addr);
    let rows = [vec![len * inner, 1]];
    let range = cx.unit_positions(1, outer * inner);
    cx.strided_range(&[outer, inner], &rows, range, &mut |cx, base| {
        let base = base[0];
        let (m, s) = row_stats(cx, x, base, len, inner);
        let t = per_row(cx, s);
        let scalar_from = if inner == 1 { len / LANES * LANES } else { 0 };
        if scalar_from > 0 {
            let (m4, t4) = (splat(cx, m), splat(cx, t));
            cx.counted_loop(len / LANES, &mut |cx, k| {
                let at = cx.b.ins().imul_imm_s(k, LANES as i64);
                let at = cx.b.ins().iadd(base, at);
                let v = load_lanes(cx, x, at);
                let y = f(cx, Lanes::Four, v, m4, t4);
                store_lanes(cx, y, out, at);
            });
        }
        cx.counted_loop(len - scalar_from, &mut |cx, k| {
            let k = after(cx, k, scalar_from);
            let offset = cx.b.ins().imul_imm_s(k, inner as i64);
            let at = cx.b.ins().iadd(base, offset);
            let v = cx.load(types::F32, x, at);
            let y = f(cx, Lanes::One, v, m, t);
            cx.store(y, out, at);
        });
    });
}

/// `k + first`, the index of a row's element `first` or more along (just `k` from 0).
fn after(cx: &mut LowerCx, k: Value, first: usize) -> Value {
    if first == 0 {
        k
    } else {
        cx.b.ins().iadd_imm_s(k, first as i64)
    }
}

/// Lanes of the rows' vector loops.
const LANES: usize = 4;

/// Flags of a vector access: in bounds, but buffers are only 4-byte aligned.
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// `x` in four lanes.
fn splat(cx: &mut LowerCx, x: Value) -> Value {
    cx.b.ins().splat(types::F32X4, x)
}

/// Elements `at..at + 4` of `base`, an f32x4.
fn load_lanes(cx: &mut LowerCx, base: Value, at: Value) -> Value {
    let addr = cx.element_addr(base, at, 4);
    cx.b.ins().load(types::F32X4, vector_flags(), addr, 0)
}

/// Stores `value` (f32x4) as elements `at..at + 4` of `base`.
fn store_lanes(cx: &mut LowerCx, value: Value, base: Value, at: Value) {
    let addr = cx.element_addr(base, at, 4);
    cx.b.ins().store(vector_flags(), value, addr, 0);
}

/// `(m, s)` of the row of `len` elements starting at `base`, `stride` apart. A contiguous
/// row computes its `exp(x_i - m)` four at a time, then adds the four lanes to `s` in index
/// order, as the interpreter does.
fn row_stats(cx: &mut LowerCx, x: Value, base: Value, len: usize, stride: usize) -> (Value, Value) {
    let row = [vec![stride]];
    let neg_inf = cx.f32(f32::NEG_INFINITY);
    let m = cx.var(neg_inf);
    cx.strided_loop(&[len], &row, &mut |cx, k| {
        let at = cx.b.ins().iadd(base, k[0]);
        let v = cx.load(types::F32, x, at);
        let acc = cx.b.use_var(m);
        let acc = arith::maximum(cx, acc, v);
        cx.b.def_var(m, acc);
    });
    let m = cx.b.use_var(m);
    let zero = cx.f32(0.0);
    let s = cx.var(zero);
    let scalar_from = if stride == 1 { len / LANES * LANES } else { 0 };
    if scalar_from > 0 {
        let m4 = splat(cx, m);
        cx.counted_loop(len / LANES, &mut |cx, k| {
            let at = cx.b.ins().imul_imm_s(k, LANES as i64);
            let at = cx.b.ins().iadd(base, at);
            let v = load_lanes(cx, x, at);
            let shifted = cx.b.ins().fsub(v, m4);
            let e = transcendental::exp(cx, Lanes::Four, shifted);
            let mut acc = cx.b.use_var(s);
            for lane in 0..LANES as u8 {
                let e_lane = cx.b.ins().extractlane(e, lane);
                acc = cx.b.ins().fadd(acc, e_lane);
            }
            cx.b.def_var(s, acc);
        });
    }
    cx.counted_loop(len - scalar_from, &mut |cx, k| {
        let k = after(cx, k, scalar_from);
        let offset = cx.b.ins().imul_imm_s(k, stride as i64);
        let at = cx.b.ins().iadd(base, offset);
        let v = cx.load(types::F32, x, at);
        let shifted = cx.b.ins().fsub(v, m);
        let e = arith::exp(cx, shifted);
        let acc = cx.b.use_var(s);
        let acc = cx.b.ins().fadd(acc, e);
        cx.b.def_var(s, acc);
    });
    (m, cx.b.use_var(s))
}

/// The mean negative log-likelihood of `targets` (`[N]` or `[]`, checked by
/// [`super::indexed::check_indices`]) under `log_softmax(logits)` by row (`[N, C]` or `[C]`).
pub(crate) fn cross_entropy(cx: &mut LowerCx, logits: &Buffer, targets: &Buffer, out: &Buffer) {
    let classes = class_count(logits);
    let rows = targets.shape().numel();
    let (x, t, out) = (logits.addr, targets.addr, out.addr);
    let zero = cx.f32(0.0);
    let total = cx.var(zero);
    cx.counted_loop(rows, &mut |cx, r| {
        let base = cx.b.ins().imul_imm_s(r, classes as i64);
        let (m, s) = row_stats(cx, x, base, classes, 1);
        let target = cx.load(types::I32, t, r);
        let target = cx.b.ins().uextend(cx.ptr, target);
        let at = cx.b.ins().iadd(base, target);
        let v = cx.load(types::F32, x, at);
        let picked = log_probability(cx, v, m, s);
        let acc = cx.b.use_var(total);
        let acc = cx.b.ins().fadd(acc, picked);
        cx.b.def_var(total, acc);
    });
    let total = cx.b.use_var(total);
    let negated = cx.b.ins().fneg(total);
    let n = cx.f32(rows as f32);
    let loss = cx.b.ins().fdiv(negated, n);
    let zero = cx.index(0);
    cx.store(loss, out, zero);
}

/// The gradient of `cross_entropy` with respect to the logits, for the unit range's rows:
/// `w = g / N`, then `y_i = ((exp(x_i - m) / s) - (i == t ? 1 : 0)) * w`, the interpreter's
/// order. No target check is needed: a target only selects which class subtracts one.
pub(crate) fn cross_entropy_grad(
    cx: &mut LowerCx,
    logits: &Buffer,
    targets: &Buffer,
    g: &Buffer,
    out: &Buffer,
) {
    let classes = class_count(logits);
    let rows = targets.shape().numel();
    let (x, t, out) = (logits.addr, targets.addr, out.addr);
    let zero_index = cx.index(0);
    let g = cx.load(types::F32, g.addr, zero_index);
    let n = cx.f32(rows as f32);
    let w = cx.b.ins().fdiv(g, n);
    let (zero, one) = (cx.f32(0.0), cx.f32(1.0));
    let (begin, end) = cx.unit_positions(1, rows);
    cx.range_loop(begin, end, &mut |cx, r| {
        let base = cx.b.ins().imul_imm_s(r, classes as i64);
        let (m, s) = row_stats(cx, x, base, classes, 1);
        let target = cx.load(types::I32, t, r);
        let target = cx.b.ins().sextend(cx.ptr, target);
        cx.counted_loop(classes, &mut |cx, k| {
            let at = cx.b.ins().iadd(base, k);
            let v = cx.load(types::F32, x, at);
            let shifted = cx.b.ins().fsub(v, m);
            let e = arith::exp(cx, shifted);
            let p = cx.b.ins().fdiv(e, s);
            let is_target = cx.b.ins().icmp(IntCC::Equal, k, target);
            let onehot = arith::select(cx, is_target, one, zero);
            let d = cx.b.ins().fsub(p, onehot);
            let y = cx.b.ins().fmul(d, w);
            cx.store(y, out, at);
        });
    });
}

/// The class count `C` of logits `[N, C]` or `[C]`.
fn class_count(logits: &Buffer) -> usize {
    *logits
        .shape()
        .dims()
        .last()
        .expect("invariant: logits have rank 1 or 2")
}
