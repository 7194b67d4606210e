//! `softmax`, `log_softmax` and `cross_entropy`, in the interpreter's order per row:
//!
//! ```text
//! m = maximum over the row, from -inf       e_i = exp(x_i - m)       s = 0.0 + e_0 + e_1 + ...
//! softmax y_i = e_i / s      log_softmax y_i = (x_i - m) - log(s)
//! cross_entropy loss = -(0.0 + logp[0][t_0] + logp[1][t_1] + ...) / (N as f32)
//! ```
//! `softmax` and `log_softmax` compute the unit range's rows ([`crate::plan::phase`]);
//! `cross_entropy` is one unit, since its mean sums in one fixed order. A phase before it
//! checks the targets (by rows, [`check_targets`]) against `0..C` and returns an error code
//! naming the node, the batch index and the target from the first one outside: the logits
//! are never read out of bounds.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, LowerCx, arith};
use crate::graph::Shape;

/// `y_i = exp(x_i - m) / s` along `axis`.
pub(crate) fn softmax(cx: &mut LowerCx, axis: i64, x: &Buffer, out: &Buffer) {
    along_axis(cx, axis, x, out, &|cx, v, m, s| {
        let shifted = cx.b.ins().fsub(v, m);
        let e = arith::exp(cx, shifted);
        cx.b.ins().fdiv(e, s)
    });
}

/// `y_i = (x_i - m) - log(s)` along `axis`.
pub(crate) fn log_softmax(cx: &mut LowerCx, axis: i64, x: &Buffer, out: &Buffer) {
    along_axis(cx, axis, x, out, &|cx, v, m, s| {
        log_probability(cx, v, m, s)
    });
}

/// `(x - m) - log(s)`.
fn log_probability(cx: &mut LowerCx, x: Value, m: Value, s: Value) -> Value {
    let shifted = cx.b.ins().fsub(x, m);
    let log_s = arith::log(cx, s);
    cx.b.ins().fsub(shifted, log_s)
}

type RowMap<'f> = &'f dyn Fn(&mut LowerCx, Value, Value, Value) -> Value;

/// `(outer, len, inner)` of a shape around `axis` ([`Shape::around_axis`]).
fn split_at_axis(axis: i64, shape: &Shape) -> (usize, usize, usize) {
    (shape.around_axis(axis)).expect("invariant: the axis was inferred")
}

/// Applies `f(x_i, m, s)` to every element of the unit range's rows, with the statistics of
/// its row along `axis`.
fn along_axis(cx: &mut LowerCx, axis: i64, x: &Buffer, out: &Buffer, f: RowMap) {
    let (outer, len, inner) = split_at_axis(axis, x.shape());
    let (x, out) = (x.addr, out.addr);
    let rows = [vec![len * inner, 1]];
    let range = cx.unit_positions(1, outer * inner);
    cx.strided_range(&[outer, inner], &rows, range, &mut |cx, base| {
        let base = base[0];
        let (m, s) = row_stats(cx, x, base, len, inner);
        cx.strided_loop(&[len], &[vec![inner]], &mut |cx, k| {
            let at = cx.b.ins().iadd(base, k[0]);
            let v = cx.load(types::F32, x, at);
            let y = f(cx, v, m, s);
            cx.store(y, out, at);
        });
    });
}

/// `(m, s)` of the row of `len` elements starting at `base`, `stride` apart.
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
    cx.strided_loop(&[len], &row, &mut |cx, k| {
        let at = cx.b.ins().iadd(base, k[0]);
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
