//! `sum`, `mean` and `amax` over axes: for each output element, a fold over the reduced
//! elements in row-major order of their coordinates, as the interpreter folds them:
//! `acc = 0.0; acc = acc + x` (then `/ count` for `mean`), or `acc = -inf; acc = maximum(acc, x)`.
//!
//! Two loop orders give those same folds. A sum or mean over *leading* axes (a bias
//! gradient: `[N, C] -> [C]`) streams rows: blocks of [`BLOCK`] output elements keep their
//! accumulators in vector registers while the loop walks down the rows, so every row is read
//! a cache line at a time and each lane adds its column's elements in row order, exactly as
//! the scalar fold does (lane-wise `fadd` is the scalar IEEE addition); the columns left over
//! after the blocks fold one at a time. Every other reduction walks each output element's
//! reduced elements in turn.

use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::{Buffer, LowerCx, arith};
use crate::graph::infer::reduced_axes;
use crate::graph::{ReduceOp, Shape};

/// Output elements per vector block of the row-streaming loop: four `f32x4` accumulators.
const BLOCK: usize = 16;

/// Lanes of an `f32x4`.
const LANES: usize = 4;

/// Reduces `x` over `axes` into the unit range's elements of `out` (kept dimensions in order;
/// `keepdim` changes nothing about the order).
pub(crate) fn reduce(cx: &mut LowerCx, op: ReduceOp, axes: &[i64], x: &Buffer, out: &Buffer) {
    let axes = reduced_axes(x.shape(), axes).expect("invariant: the axes were inferred");
    let dims = x.shape().dims();
    let leading = axes.iter().enumerate().all(|(i, &axis)| i == axis);
    let adds = matches!(op, ReduceOp::Sum | ReduceOp::Mean);
    if adds && leading && !axes.is_empty() && axes.len() < dims.len() {
        let rows: usize = dims[..axes.len()].iter().product();
        let columns: usize = dims[axes.len()..].iter().product();
        stream_rows(cx, op, (rows, columns), x, out);
    } else {
        per_output(cx, op, &axes, x, out);
    }
}

/// A sum or mean of `x` viewed as `[rows, columns]` over its rows, for the unit range's
/// columns: vector blocks of [`BLOCK`] columns, then the rest one column at a time.
fn stream_rows(
    cx: &mut LowerCx,
    op: ReduceOp,
    (rows, columns): (usize, usize),
    x: &Buffer,
    out: &Buffer,
) {
    let (start, stop) = cx.unit_positions(1, columns);
    let (x, out) = (x.addr, out.addr);
    let width = cx.b.ins().isub(stop, start);
    let blocks = cx.b.ins().udiv_imm_u(width, BLOCK as i64);
    let zero = cx.index(0);
    // Unaligned vector accesses: a block starts at any column.
    let flags = MemFlagsData::new().with_notrap();
    cx.range_loop(zero, blocks, &mut |cx, block| {
        let first = cx.b.ins().imul_imm_u(block, BLOCK as i64);
        let first = cx.b.ins().iadd(start, first);
        let zero = cx.f32(0.0);
        let zeros = cx.b.ins().splat(types::F32X4, zero);
        let accs: Vec<_> = (0..BLOCK / LANES).map(|_| cx.var(zeros)).collect();
        cx.counted_loop(rows, &mut |cx, row| {
            let at = cx.b.ins().imul_imm_u(row, columns as i64);
            let at = cx.b.ins().iadd(at, first);
            let addr = cx.element_addr(x, at, 4);
            for (lane_block, &acc) in accs.iter().enumerate() {
                let offset = (lane_block * LANES * 4) as i32;
                let v = cx.b.ins().load(types::F32X4, flags, addr, offset);
                let folded = cx.b.use_var(acc);
                let folded = cx.b.ins().fadd(folded, v);
                cx.b.def_var(acc, folded);
            }
        });
        let addr = cx.element_addr(out, first, 4);
        for (lane_block, &acc) in accs.iter().enumerate() {
            let result = cx.b.use_var(acc);
            let result = match op {
                ReduceOp::Mean => {
                    let n = cx.f32(rows as f32);
                    let n = cx.b.ins().splat(types::F32X4, n);
                    cx.b.ins().fdiv(result, n)
                }
                ReduceOp::Sum | ReduceOp::Max => result,
            };
            let offset = (lane_block * LANES * 4) as i32;
            cx.b.ins().store(flags, result, addr, offset);
        }
    });
    let done = cx.b.ins().imul_imm_u(blocks, BLOCK as i64);
    let rest = cx.b.ins().iadd(start, done);
    cx.range_loop(rest, stop, &mut |cx, column| {
        let zero = cx.f32(0.0);
        let acc = cx.var(zero);
        cx.counted_loop(rows, &mut |cx, row| {
            let at = cx.b.ins().imul_imm_u(row, columns as i64);
            let at = cx.b.ins().iadd(at, column);
            let v = cx.load(types::F32, x, at);
            let folded = cx.b.use_var(acc);
            let folded = cx.b.ins().fadd(folded, v);
            cx.b.def_var(acc, folded);
        });
        let result = cx.b.use_var(acc);
        let result = finish(cx, op, result, rows);
        cx.store(result, out, column);
    });
}

/// Any reduction, one output element at a time over its reduced elements.
fn per_output(cx: &mut LowerCx, op: ReduceOp, axes: &[usize], x: &Buffer, out: &Buffer) {
    let strides = x.shape().strides();
    let (mut kept, mut kept_strides) = (Vec::new(), Vec::new());
    let (mut reduced, mut reduced_strides) = (Vec::new(), Vec::new());
    for (d, (&dim, &stride)) in x.shape().dims().iter().zip(&strides).enumerate() {
        if axes.contains(&d) {
            reduced.push(dim);
            reduced_strides.push(stride);
        } else {
            kept.push(dim);
            kept_strides.push(stride);
        }
    }
    let count: usize = reduced.iter().product();
    let outer = [kept_strides, Shape::new(kept.clone()).strides()];
    let range = cx.unit_positions(1, out.shape().numel());
    let (x, out) = (x.addr, out.addr);
    cx.strided_range(&kept, &outer, range, &mut |cx, at| {
        let init = match op {
            ReduceOp::Sum | ReduceOp::Mean => cx.f32(0.0),
            ReduceOp::Max => cx.f32(f32::NEG_INFINITY),
        };
        let acc = cx.var(init);
        let base = at[0];
        cx.strided_loop(
            &reduced,
            std::slice::from_ref(&reduced_strides),
            &mut |cx, r| {
                let at = cx.b.ins().iadd(base, r[0]);
                let v = cx.load(types::F32, x, at);
                let folded = cx.b.use_var(acc);
                let folded = fold(cx, op, folded, v);
                cx.b.def_var(acc, folded);
            },
        );
        let result = cx.b.use_var(acc);
        let result = finish(cx, op, result, count);
        cx.store(result, out, at[1]);
    });
}

fn fold(cx: &mut LowerCx, op: ReduceOp, acc: Value, x: Value) -> Value {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => cx.b.ins().fadd(acc, x),
        ReduceOp::Max => arith::maximum(cx, acc, x),
    }
}

/// The folded `acc` of `count` elements as the result: divided by the count for `mean`.
fn finish(cx: &mut LowerCx, op: ReduceOp, acc: Value, count: usize) -> Value {
    match op {
        ReduceOp::Mean => {
            let n = cx.f32(count as f32);
            cx.b.ins().fdiv(acc, n)
        }
        ReduceOp::Sum | ReduceOp::Max => acc,
    }
}
