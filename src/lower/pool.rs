//! Pooling, each output as the interpreter computes it ([`crate::graph::pool`]): max pooling
//! and its gradient plane by plane in the rustc-compiled kernels of [`crate::window::pool`];
//! average pooling here for a phase's output elements, the window's taps in row-major order,
//! a tap outside the input skipped (its load goes to the plane's first element, so it never
//! leaves the buffer), added and divided once by the window's count (computed per output
//! element as PyTorch clips it); adaptive average walks each bin; the average gradients
//! scatter plane by plane.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::window::{Window, store_geometry, unravel};
use super::{Buffer, LowerCx, arith};
use crate::graph::{Pool, PoolKind, Shape};
use crate::jit::Import;
use crate::window;

/// The geometry of `pool`'s window from `x` to `out` (their planes) for a window kernel.
fn geometry(pool: &Pool, x: &Buffer, out: &Buffer) -> (window::Geometry, usize) {
    let s = pool.spatial();
    let in_size = &x.shape().dims()[x.shape().rank() - s..];
    let out_size = &out.shape().dims()[out.shape().rank() - s..];
    // Counted from the leading dimensions: a plane may be empty.
    let planes: usize = x.shape().dims()[..x.shape().rank() - s].iter().product();
    let steps = (&pool.stride[..], &pool.dilation[..], &pool.padding[..]);
    let geometry = window::Geometry::new(planes, in_size, out_size, &pool.kernel, steps);
    (geometry, planes)
}

/// `pool` of `x` into `out`: max pooling for the unit range's planes (a window kernel),
/// average pooling for its output elements.
pub(crate) fn pool(cx: &mut LowerCx, pool: &Pool, x: &Buffer, out: &Buffer) {
    if pool.kind == PoolKind::Max {
        let null = cx.index(0);
        max_pool(cx, pool, x, out, (null, 1.0));
        return;
    }
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
        let zero = cx.f32(0.0);
        let acc = cx.var(zero);
        if in_plane > 0 {
            cx.counted_loop(taps, &mut |cx, tap| {
                let k = unravel(cx, tap, &pool.kernel);
                let (inside, offset) = window.tap(cx, &y, &k);
                let index = cx.b.ins().iadd(plane_start, offset);
                let v = cx.load(types::F32, x.addr, index);
                let current = cx.b.use_var(acc);
                let sum = cx.b.ins().fadd(current, v);
                let next = arith::select(cx, inside, sum, current);
                cx.b.def_var(acc, next);
            });
        }
        let sum = cx.b.use_var(acc);
        let count = divisor(cx, pool, &y, &in_size);
        let count = cx.b.ins().fcvt_from_uint(types::F32, count);
        let result = cx.b.ins().fdiv(sum, count);
        cx.store(result, out.addr, e);
    });
}

/// Max pooling of `x` into `out` for the unit range's planes, followed in the same pass by a
/// channel dropout with keep bytes at `keep` (one per plane; null for none) and `scale`
/// (the epilogue `plan::fusion` fuses, rule 5).
pub(crate) fn max_pool(
    cx: &mut LowerCx,
    pool: &Pool,
    x: &Buffer,
    out: &Buffer,
    (keep, scale): (Value, f32),
) {
    let (geometry, planes) = geometry(pool, x, out);
    let words = store_geometry(cx, &geometry);
    let (start, stop) = cx.unit_positions(1, planes);
    let scale = cx.f32(scale);
    cx.call(
        Import::MaxPool,
        &[words, x.addr, out.addr, start, stop, keep, scale],
    );
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

/// The gradient of `pool` ([`crate::graph::Op::PoolGrad`]) for the unit range's planes of
/// `out` (the input's shape): each plane zeroed, then every output position's gradient in
/// row-major order added to the elements that took it (max: the window's argmax, in a window
/// kernel; average: each tap inside, `g / count`). An input element thus sums its windows'
/// shares in the windows' row-major order from `+0.0`: the interpreter's sum, bit for bit.
pub(crate) fn pool_grad(
    cx: &mut LowerCx,
    pool: &Pool,
    (g, x): (&Buffer, &Buffer),
    out: &Buffer,
    relu: Option<(&Buffer, &Buffer)>,
) {
    if pool.kind == PoolKind::Max {
        let (geometry, planes) = geometry(pool, x, g);
        let words = store_geometry(cx, &geometry);
        let (start, stop) = cx.unit_positions(1, planes);
        let null = cx.index(0);
        let (pre, relu) = relu.map_or((null, null), |(pre, relu)| (pre.addr, relu.addr));
        let args = [words, g.addr, x.addr, out.addr, start, stop, pre, relu];
        cx.call(Import::MaxPoolGrad, &args);
        return;
    }
    assert!(
        relu.is_none(),
        "invariant: only a max pool's gradient takes a ReLU gradient"
    );
    let s = pool.spatial();
    let in_size = x.shape().dims()[x.shape().rank() - s..].to_vec();
    let g_size = g.shape().dims()[g.shape().rank() - s..].to_vec();
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let taps: usize = pool.kernel.iter().product();
    let window = Window::new(&pool.stride, &pool.dilation, &pool.padding, &in_size);
    zeroed_planes(
        cx,
        out,
        (in_plane, g_plane),
        &mut |cx, plane_start, g_start| {
            cx.counted_loop(g_plane, &mut |cx, position| {
                let y = unravel(cx, position, &g_size);
                let g_index = cx.b.ins().iadd(g_start, position);
                let gv = cx.load(types::F32, g.addr, g_index);
                let count = divisor(cx, pool, &y, &in_size);
                let count = cx.b.ins().fcvt_from_uint(types::F32, count);
                let share = cx.b.ins().fdiv(gv, count);
                cx.counted_loop(taps, &mut |cx, tap| {
                    let k = unravel(cx, tap, &pool.kernel);
                    let (inside, offset) = window.tap(cx, &y, &k);
                    add_if(cx, inside, out, plane_start, offset, share);
                });
            });
        },
    );
}

/// The unit range's planes of a pooling gradient `out` (`in_plane` elements each, its
/// gradient's `g_plane`), each zeroed and then handed to `body` with the offsets of its first
/// element and of its gradient's first.
fn zeroed_planes(
    cx: &mut LowerCx,
    out: &Buffer,
    (in_plane, g_plane): (usize, usize),
    body: &mut dyn FnMut(&mut LowerCx, Value, Value),
) {
    let planes = out.shape().numel().checked_div(in_plane).unwrap_or(0);
    let (start, stop) = cx.unit_positions(1, planes);
    cx.range_loop(start, stop, &mut |cx, plane| {
        let plane_start = cx.b.ins().imul_imm_u(plane, in_plane as i64);
        let g_start = cx.b.ins().imul_imm_u(plane, g_plane as i64);
        let zero = cx.f32(0.0);
        cx.counted_loop(in_plane, &mut |cx, i| {
            let at = cx.b.ins().iadd(plane_start, i);
            cx.store(zero, out.addr, at);
        });
        body(cx, plane_start, g_start);
    });
}

/// `out[plane_start + offset] += value` if `take` (an i8 truth value); the element is read
/// and written back either way (`offset` is inside the plane).
fn add_if(
    cx: &mut LowerCx,
    take: Value,
    out: &Buffer,
    plane_start: Value,
    offset: Value,
    value: Value,
) {
    let index = cx.b.ins().iadd(plane_start, offset);
    let acc = cx.load(types::F32, out.addr, index);
    let sum = cx.b.ins().fadd(acc, value);
    let next = arith::select(cx, take, sum, acc);
    cx.store(next, out.addr, index);
}

/// The gradient of adaptive average pooling ([`crate::graph::Op::AdaptiveAvgPoolGrad`]) for
/// the unit range's planes of `out`: each plane zeroed, then every bin in row-major order
/// adds `g / size` to each of its elements (the interpreter's order for each element).
pub(crate) fn adaptive_avg_pool_grad(cx: &mut LowerCx, spatial: usize, g: &Buffer, out: &Buffer) {
    let in_size = out.shape().dims()[out.shape().rank() - spatial..].to_vec();
    let g_size = g.shape().dims()[g.shape().rank() - spatial..].to_vec();
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let in_strides = Shape::new(in_size.clone()).strides();
    zeroed_planes(
        cx,
        out,
        (in_plane, g_plane),
        &mut |cx, plane_start, g_start| {
            cx.counted_loop(g_plane, &mut |cx, position| {
                let y = unravel(cx, position, &g_size);
                let mut count = cx.index(1);
                let bins: Vec<(Value, Value)> = (0..spatial)
                    .map(|i| {
                        let (low, high) = adaptive_bin(cx, y[i], in_size[i], g_size[i]);
                        let extent = cx.b.ins().isub(high, low);
                        count = cx.b.ins().imul(count, extent);
                        (low, high)
                    })
                    .collect();
                let g_index = cx.b.ins().iadd(g_start, position);
                let gv = cx.load(types::F32, g.addr, g_index);
                let count = cx.b.ins().fcvt_from_uint(types::F32, count);
                let share = cx.b.ins().fdiv(gv, count);
                walk(cx, &bins, &in_strides, plane_start, &mut |cx, index| {
                    let acc = cx.load(types::F32, out.addr, index);
                    let sum = cx.b.ins().fadd(acc, share);
                    cx.store(sum, out.addr, index);
                });
            });
        },
    );
}
