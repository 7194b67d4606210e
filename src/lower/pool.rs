//! Pooling, for a phase's output elements, each as the interpreter computes it
//! ([`crate::graph::pool`]): the window's taps in row-major order, a tap outside the input
//! skipped (its load goes to the plane's first element, so it never leaves the buffer); max
//! replaces on greater or NaN, average adds and divides once by the window's count (computed
//! per output element as PyTorch clips it), adaptive average walks each bin.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, LowerCx, arith};
use crate::graph::{Pool, PoolKind, Shape};

/// `pool` of `x` into the unit range's elements of `out`.
pub(crate) fn pool(cx: &mut LowerCx, pool: &Pool, x: &Buffer, out: &Buffer) {
    let s = pool.spatial();
    let in_size = x.shape().dims()[x.shape().rank() - s..].to_vec();
    let out_size = out.shape().dims()[out.shape().rank() - s..].to_vec();
    let in_plane: usize = in_size.iter().product();
    let out_plane: usize = out_size.iter().product();
    let taps: usize = pool.kernel.iter().product();
    let in_strides = Shape::new(in_size.clone()).strides();
    let (start, stop) = cx.unit_positions(1, out.shape().numel());
    cx.range_loop(start, stop, &mut |cx, e| {
        let position = cx.b.ins().urem_imm_u(e, out_plane as i64);
        let plane = cx.b.ins().udiv_imm_u(e, out_plane as i64);
        let plane_start = cx.b.ins().imul_imm_u(plane, in_plane as i64);
        let y = unravel(cx, position, &out_size);
        let init = match pool.kind {
            PoolKind::Max => cx.f32(f32::NEG_INFINITY),
            PoolKind::Avg => cx.f32(0.0),
        };
        let acc = cx.var(init);
        if in_plane > 0 {
            cx.counted_loop(taps, &mut |cx, tap| {
                let k = unravel(cx, tap, &pool.kernel);
                let mut inside: Option<Value> = None;
                let mut offset = cx.index(0);
                for i in 0..s {
                    let at = cx.b.ins().imul_imm_u(y[i], pool.stride[i] as i64);
                    let tap_at = cx.b.ins().imul_imm_u(k[i], pool.dilation[i] as i64);
                    let at = cx.b.ins().iadd(at, tap_at);
                    // Below the padding wraps around to a huge index: one unsigned test.
                    let at = cx.b.ins().iadd_imm_u(at, -(pool.padding[i] as i64));
                    let fits =
                        cx.b.ins()
                            .icmp_imm_u(IntCC::UnsignedLessThan, at, in_size[i] as i64);
                    inside = Some(match inside {
                        Some(before) => cx.b.ins().band(before, fits),
                        None => fits,
                    });
                    let step = cx.b.ins().imul_imm_u(at, in_strides[i] as i64);
                    offset = cx.b.ins().iadd(offset, step);
                }
                let inside = inside.expect("invariant: a pool has a spatial dimension");
                let zero = cx.index(0);
                let offset = cx.b.ins().select(inside, offset, zero);
                let index = cx.b.ins().iadd(plane_start, offset);
                let v = cx.load(types::F32, x.addr, index);
                let current = cx.b.use_var(acc);
                let (take, candidate) = match pool.kind {
                    PoolKind::Max => {
                        let greater = cx.b.ins().fcmp(FloatCC::GreaterThan, v, current);
                        let nan = cx.b.ins().fcmp(FloatCC::Unordered, v, v);
                        let replaces = cx.b.ins().bor(greater, nan);
                        (cx.b.ins().band(inside, replaces), v)
                    }
                    PoolKind::Avg => (inside, cx.b.ins().fadd(current, v)),
                };
                let next = arith::select(cx, take, candidate, current);
                cx.b.def_var(acc, next);
            });
        }
        let mut result = cx.b.use_var(acc);
        if pool.kind == PoolKind::Avg {
            let count = divisor(cx, pool, &y, &in_size);
            let count = cx.b.ins().fcvt_from_uint(types::F32, count);
            result = cx.b.ins().fdiv(result, count);
        }
        cx.store(result, out.addr, e);
    });
}

/// The count an average window at output position `y` divides by, as
/// `interp::pool::divisor` computes it.
fn divisor(cx: &mut LowerCx, pool: &Pool, y: &[Value], in_size: &[usize]) -> Value {
    let mut count = cx.index(1);
    for i in 0..pool.spatial() {
        let (padding, size) = (pool.padding[i], in_size[i]);
        let start = cx.b.ins().imul_imm_u(y[i], pool.stride[i] as i64);
        let end = cx.b.ins().iadd_imm_u(start, pool.kernel[i] as i64);
        let extent = if pool.count_include_pad {
            let limit = cx.index(size + 2 * padding);
            let end = cx.b.ins().umin(end, limit);
            cx.b.ins().isub(end, start)
        } else {
            let limit = cx.index(size + padding);
            let end = cx.b.ins().umin(end, limit);
            let first = cx.index(padding);
            let first = cx.b.ins().umax(start, first);
            // end.saturating_sub(first)
            let first = cx.b.ins().umin(first, end);
            cx.b.ins().isub(end, first)
        };
        count = cx.b.ins().imul(count, extent);
    }
    count
}

/// Adaptive average pooling of `x` into the unit range's elements of `out`.
pub(crate) fn adaptive_avg_pool(cx: &mut LowerCx, spatial: usize, x: &Buffer, out: &Buffer) {
    let in_size = x.shape().dims()[x.shape().rank() - spatial..].to_vec();
    let out_size = out.shape().dims()[out.shape().rank() - spatial..].to_vec();
    let in_plane: usize = in_size.iter().product();
    let out_plane: usize = out_size.iter().product();
    let in_strides = Shape::new(in_size.clone()).strides();
    let (start, stop) = cx.unit_positions(1, out.shape().numel());
    cx.range_loop(start, stop, &mut |cx, e| {
        let position = cx.b.ins().urem_imm_u(e, out_plane as i64);
        let plane = cx.b.ins().udiv_imm_u(e, out_plane as i64);
        let plane_start = cx.b.ins().imul_imm_u(plane, in_plane as i64);
        let y = unravel(cx, position, &out_size);
        // Bin i of L positions into o: [floor(i L / o), ceil((i + 1) L / o)); type inference
        // keeps L * (o + 1) within 2^63.
        let bins: Vec<(Value, Value)> = (0..spatial)
            .map(|i| {
                let (size, bins) = (in_size[i] as i64, out_size[i] as i64);
                let low = cx.b.ins().imul_imm_u(y[i], size);
                let low = cx.b.ins().udiv_imm_u(low, bins);
                let next = cx.b.ins().iadd_imm_u(y[i], 1);
                let high = cx.b.ins().imul_imm_u(next, size);
                let high = cx.b.ins().iadd_imm_u(high, bins - 1);
                let high = cx.b.ins().udiv_imm_u(high, bins);
                (low, high)
            })
            .collect();
        let zero = cx.f32(0.0);
        let acc = cx.var(zero);
        walk(cx, &bins, &in_strides, plane_start, &mut |cx, index| {
            let v = cx.load(types::F32, x.addr, index);
            let sum = cx.b.use_var(acc);
            let sum = cx.b.ins().fadd(sum, v);
            cx.b.def_var(acc, sum);
        });
        let mut count = cx.index(1);
        for &(low, high) in &bins {
            let extent = cx.b.ins().isub(high, low);
            count = cx.b.ins().imul(count, extent);
        }
        let count = cx.b.ins().fcvt_from_uint(types::F32, count);
        let sum = cx.b.use_var(acc);
        let mean = cx.b.ins().fdiv(sum, count);
        cx.store(mean, out.addr, e);
    });
}

/// Every element of the box `bins` (per dimension `[low, high)`) in row-major order: `body`
/// with its index, from `base` with strides `strides`.
fn walk(
    cx: &mut LowerCx,
    bins: &[(Value, Value)],
    strides: &[usize],
    base: Value,
    body: &mut dyn FnMut(&mut LowerCx, Value),
) {
    let Some((&(low, high), rest)) = bins.split_first() else {
        body(cx, base);
        return;
    };
    cx.range_loop(low, high, &mut |cx, i| {
        let step = cx.b.ins().imul_imm_u(i, strides[0] as i64);
        let at = cx.b.ins().iadd(base, step);
        walk(cx, rest, &strides[1..], at, body);
    });
}

/// The row-major coordinates of `index` (pointer-sized) in `dims`.
fn unravel(cx: &mut LowerCx, mut index: Value, dims: &[usize]) -> Vec<Value> {
    let mut coords = vec![index; dims.len()];
    for i in (0..dims.len()).rev() {
        coords[i] = cx.b.ins().urem_imm_u(index, dims[i] as i64);
        index = cx.b.ins().udiv_imm_u(index, dims[i] as i64);
    }
    coords
}
