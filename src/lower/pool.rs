//! Pooling, for a phase's output elements, each as the interpreter computes it
//! ([`crate::graph::pool`]): the window's taps in row-major order, a tap outside the input
//! skipped (its load goes to the plane's first element, so it never leaves the buffer); max
//! replaces on greater or NaN, average adds and divides once by the window's count (computed
//! per output element as PyTorch clips it), adaptive average walks each bin.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::window::{Window, unravel};
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
    let window = Window::new(&pool.stride, &pool.dilation, &pool.padding, &in_size);
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
                let (inside, offset) = window.tap(cx, &y, &k);
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
        let bins: Vec<(Value, Value)> = (0..spatial)
            .map(|i| adaptive_bin(cx, y[i], in_size[i], out_size[i]))
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

/// Bin `i` (pointer-sized) of `size` positions pooled into `bins`: `[floor(i size / bins),
/// ceil((i + 1) size / bins))`, as `graph::pool::adaptive_bin` (type inference keeps
/// `size * (bins + 1)` within 2^63).
fn adaptive_bin(cx: &mut LowerCx, i: Value, size: usize, bins: usize) -> (Value, Value) {
    let (size, bins) = (size as i64, bins as i64);
    let low = cx.b.ins().imul_imm_u(i, size);
    let low = cx.b.ins().udiv_imm_u(low, bins);
    let next = cx.b.ins().iadd_imm_u(i, 1);
    let high = cx.b.ins().imul_imm_u(next, size);
    let high = cx.b.ins().iadd_imm_u(high, bins - 1);
    (low, cx.b.ins().udiv_imm_u(high, bins))
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

/// The offset (in its plane) of the maximum of the window at output position `y`, by the
/// forward's rule (the first tap inside starts the search), as `interp::pool::window_argmax`.
fn window_argmax(
    cx: &mut LowerCx,
    pool: &Pool,
    (x, plane_start): (&Buffer, Value),
    y: &[Value],
    in_size: &[usize],
) -> Value {
    let taps: usize = pool.kernel.iter().product();
    let window = Window::new(&pool.stride, &pool.dilation, &pool.padding, in_size);
    let neg = cx.f32(f32::NEG_INFINITY);
    let max = cx.var(neg);
    // No tap yet: all ones, an offset no plane reaches.
    let none = cx.b.ins().iconst(cx.ptr, -1);
    let at_max = cx.var(none);
    cx.counted_loop(taps, &mut |cx, tap| {
        let k = unravel(cx, tap, &pool.kernel);
        let (inside, offset) = window.tap(cx, y, &k);
        let index = cx.b.ins().iadd(plane_start, offset);
        let v = cx.load(types::F32, x.addr, index);
        let current = cx.b.use_var(max);
        let current_at = cx.b.use_var(at_max);
        let greater = cx.b.ins().fcmp(FloatCC::GreaterThan, v, current);
        let nan = cx.b.ins().fcmp(FloatCC::Unordered, v, v);
        let first = cx.b.ins().icmp_imm_u(IntCC::Equal, current_at, -1);
        let replaces = cx.b.ins().bor(greater, nan);
        let replaces = cx.b.ins().bor(replaces, first);
        let replaces = cx.b.ins().band(inside, replaces);
        let next = arith::select(cx, replaces, v, current);
        cx.b.def_var(max, next);
        let next_at = cx.b.ins().select(replaces, offset, current_at);
        cx.b.def_var(at_max, next_at);
    });
    cx.b.use_var(at_max)
}

/// The gradient of `pool` ([`crate::graph::Op::PoolGrad`]) into the unit range's elements of
/// `out` (the input's shape), as the interpreter sums it: for each input element, the output
/// positions whose window holds it, in row-major order (only the box that can).
pub(crate) fn pool_grad(cx: &mut LowerCx, pool: &Pool, (g, x): (&Buffer, &Buffer), out: &Buffer) {
    let s = pool.spatial();
    let in_size = x.shape().dims()[x.shape().rank() - s..].to_vec();
    let g_size = g.shape().dims()[g.shape().rank() - s..].to_vec();
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let g_strides = Shape::new(g_size.clone()).strides();
    let (start, stop) = cx.unit_positions(1, out.shape().numel());
    cx.range_loop(start, stop, &mut |cx, e| {
        let position = cx.b.ins().urem_imm_u(e, in_plane as i64);
        let plane = cx.b.ins().udiv_imm_u(e, in_plane as i64);
        let plane_start = cx.b.ins().imul_imm_u(plane, in_plane as i64);
        let g_start = cx.b.ins().imul_imm_u(plane, g_plane as i64);
        let pos = unravel(cx, position, &in_size);
        // The windows y that can hold pos: y * stride in [pos + p - (k - 1) d, pos + p].
        let bounds: Vec<(Value, Value)> = (0..s)
            .map(|i| {
                let target = cx.b.ins().iadd_imm_u(pos[i], pool.padding[i] as i64);
                let reach = ((pool.kernel[i] - 1) * pool.dilation[i]) as i64;
                let stride = pool.stride[i] as i64;
                let ahead =
                    cx.b.ins()
                        .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, target, reach);
                let from = cx.b.ins().iadd_imm_u(target, stride - 1 - reach);
                let from = cx.b.ins().udiv_imm_u(from, stride);
                let zero = cx.index(0);
                let low = cx.b.ins().select(ahead, from, zero);
                let high = cx.b.ins().udiv_imm_u(target, stride);
                let high = cx.b.ins().iadd_imm_u(high, 1);
                let limit = cx.index(g_size[i]);
                let high = cx.b.ins().umin(high, limit);
                (low, high)
            })
            .collect();
        let zero = cx.f32(0.0);
        let acc = cx.var(zero);
        walk_coords(cx, &bounds, &mut Vec::new(), &mut |cx, y| {
            // A tap of window y: (pos + p - y * stride) a multiple of the dilation.
            let mut inside: Option<Value> = None;
            let mut g_offset = cx.index(0);
            for i in 0..s {
                let step = cx.b.ins().imul_imm_u(y[i], g_strides[i] as i64);
                g_offset = cx.b.ins().iadd(g_offset, step);
                if pool.dilation[i] == 1 {
                    continue;
                }
                let target = cx.b.ins().iadd_imm_u(pos[i], pool.padding[i] as i64);
                let start = cx.b.ins().imul_imm_u(y[i], pool.stride[i] as i64);
                let at = cx.b.ins().isub(target, start);
                let rest = cx.b.ins().urem_imm_u(at, pool.dilation[i] as i64);
                let here = cx.b.ins().icmp_imm_u(IntCC::Equal, rest, 0);
                inside = Some(match inside {
                    Some(before) => cx.b.ins().band(before, here),
                    None => here,
                });
            }
            let g_index = cx.b.ins().iadd(g_start, g_offset);
            let gv = cx.load(types::F32, g.addr, g_index);
            let (take, value) = match pool.kind {
                PoolKind::Max => {
                    let at_max = window_argmax(cx, pool, (x, plane_start), y, &in_size);
                    let mine = cx.b.ins().icmp(IntCC::Equal, at_max, position);
                    (mine, gv)
                }
                PoolKind::Avg => {
                    let count = divisor(cx, pool, y, &in_size);
                    let count = cx.b.ins().fcvt_from_uint(types::F32, count);
                    let one = cx.b.ins().iconst(types::I8, 1);
                    (one, cx.b.ins().fdiv(gv, count))
                }
            };
            let take = match inside {
                Some(inside) => cx.b.ins().band(inside, take),
                None => take,
            };
            let sum = cx.b.use_var(acc);
            let added = cx.b.ins().fadd(sum, value);
            let next = arith::select(cx, take, added, sum);
            cx.b.def_var(acc, next);
        });
        let result = cx.b.use_var(acc);
        cx.store(result, out.addr, e);
    });
}

/// The gradient of adaptive average pooling ([`crate::graph::Op::AdaptiveAvgPoolGrad`]) into
/// the unit range's elements of `out`: for each input element, every bin (row-major) holding
/// it adds `g / size`.
pub(crate) fn adaptive_avg_pool_grad(cx: &mut LowerCx, spatial: usize, g: &Buffer, out: &Buffer) {
    let in_size = out.shape().dims()[out.shape().rank() - spatial..].to_vec();
    let g_size = g.shape().dims()[g.shape().rank() - spatial..].to_vec();
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let (start, stop) = cx.unit_positions(1, out.shape().numel());
    cx.range_loop(start, stop, &mut |cx, e| {
        let position = cx.b.ins().urem_imm_u(e, in_plane as i64);
        let plane = cx.b.ins().udiv_imm_u(e, in_plane as i64);
        let g_start = cx.b.ins().imul_imm_u(plane, g_plane as i64);
        let pos = unravel(cx, position, &in_size);
        let zero = cx.f32(0.0);
        let acc = cx.var(zero);
        cx.counted_loop(g_plane, &mut |cx, out_position| {
            let y = unravel(cx, out_position, &g_size);
            let mut inside: Option<Value> = None;
            let mut count = cx.index(1);
            for i in 0..spatial {
                let (low, high) = adaptive_bin(cx, y[i], in_size[i], g_size[i]);
                let above =
                    cx.b.ins()
                        .icmp(IntCC::UnsignedGreaterThanOrEqual, pos[i], low);
                let below = cx.b.ins().icmp(IntCC::UnsignedLessThan, pos[i], high);
                let here = cx.b.ins().band(above, below);
                inside = Some(match inside {
                    Some(before) => cx.b.ins().band(before, here),
                    None => here,
                });
                let extent = cx.b.ins().isub(high, low);
                count = cx.b.ins().imul(count, extent);
            }
            let inside = inside.expect("invariant: a pool has a spatial dimension");
            let g_index = cx.b.ins().iadd(g_start, out_position);
            let gv = cx.load(types::F32, g.addr, g_index);
            let count = cx.b.ins().fcvt_from_uint(types::F32, count);
            let share = cx.b.ins().fdiv(gv, count);
            let sum = cx.b.use_var(acc);
            let added = cx.b.ins().fadd(sum, share);
            let next = arith::select(cx, inside, added, sum);
            cx.b.def_var(acc, next);
        });
        let result = cx.b.use_var(acc);
        cx.store(result, out.addr, e);
    });
}

/// Every coordinate of the box `bounds` (per dimension `[low, high)`) in row-major order.
fn walk_coords(
    cx: &mut LowerCx,
    bounds: &[(Value, Value)],
    coords: &mut Vec<Value>,
    body: &mut dyn FnMut(&mut LowerCx, &[Value]),
) {
    let Some((&(low, high), rest)) = bounds.split_first() else {
        body(cx, coords);
        return;
    };
    cx.range_loop(low, high, &mut |cx, i| {
        coords.push(i);
        walk_coords(cx, rest, coords, body);
        coords.pop();
    });
}
