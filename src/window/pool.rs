//! Max pooling ([`crate::graph::Op::Pool`] of kind max) and its gradient, plane by plane: the
//! window's taps in row-major order, a tap outside the input skipped; the maximum replaces
//! on greater or NaN (so the first NaN wins and stays), and the gradient goes to the element
//! the first tap inside starts the search from and each replacement moves on (the forward's
//! argmax), as the interpreter defines it.

use std::hint::select_unpredictable;

use super::{Dims, Geometry};
use crate::math;

/// A plane's windows: where each one's taps read.
struct Windows<'d> {
    dims: &'d Dims,
    /// The taps' offsets from the first one's, in row-major order, for a window with every
    /// tap inside the input.
    offsets: Vec<usize>,
}

impl<'d> Windows<'d> {
    fn new(dims: &'d Dims) -> Windows<'d> {
        let [i1, i2] = [dims.in_size[1], dims.in_size[2]];
        let d = dims.dilation;
        let mut offsets = Vec::with_capacity(dims.kernel.iter().product());
        for k0 in 0..dims.kernel[0] {
            for k1 in 0..dims.kernel[1] {
                for k2 in 0..dims.kernel[2] {
                    offsets.push((k0 * d[0] * i1 + k1 * d[1]) * i2 + k2 * d[2]);
                }
            }
        }
        Windows { dims, offsets }
    }

    /// The offset of the first tap of the window at `y` if every tap is inside the input
    /// (then tap `t` reads at that plus `offsets[t]`).
    fn interior(&self, y: [usize; 3]) -> Option<usize> {
        let dims = self.dims;
        let mut first = 0;
        for (d, &y) in y.iter().enumerate() {
            let start = (y * dims.stride[d]).checked_sub(dims.padding[d])?;
            let last = start + (dims.kernel[d].max(1) - 1) * dims.dilation[d];
            if last >= dims.in_size[d] {
                return None;
            }
            first = first * dims.in_size[d] + start;
        }
        Some(first)
    }

    /// The taps of the window at `y` (`first` its [`Windows::interior`]) in row-major
    /// order: `visit` with each one's offset in the plane (the ones outside the input
    /// skipped).
    fn taps(&self, y: [usize; 3], first: Option<usize>, mut visit: impl FnMut(usize)) {
        match first {
            Some(first) => self.offsets.iter().for_each(|&o| visit(first + o)),
            None => taps(self.dims, y, visit),
        }
    }
}

/// The taps of the window at output coordinates `y` inside the input, in row-major order:
/// `visit` with each one's offset in the plane.
fn taps(dims: &Dims, y: [usize; 3], mut visit: impl FnMut(usize)) {
    let [i1, i2] = [dims.in_size[1], dims.in_size[2]];
    for k0 in 0..dims.kernel[0] {
        let Some(z0) = dims.source(0, y[0], k0) else {
            continue;
        };
        for k1 in 0..dims.kernel[1] {
            let Some(z1) = dims.source(1, y[1], k1) else {
                continue;
            };
            let row = (z0 * i1 + z1) * i2;
            for k2 in 0..dims.kernel[2] {
                if let Some(z2) = dims.source(2, y[2], k2) {
                    visit(row + z2);
                }
            }
        }
    }
}

/// Every window of a plane in row-major order: `visit` with its index, its output
/// coordinates and, if every tap is inside the input, its first tap's offset. Without
/// padding and with no window past the input's end (the common case) every window is
/// inside, and its offset is a running sum.
fn each_window(windows: &Windows, mut visit: impl FnMut(usize, [usize; 3], Option<usize>)) {
    let dims = windows.dims;
    let [o0, o1, o2] = dims.out_size;
    let all_inside = (0..3).all(|d| {
        dims.padding[d] == 0
            && (dims.out_size[d] == 0
                || (dims.out_size[d] - 1) * dims.stride[d]
                    + (dims.kernel[d].max(1) - 1) * dims.dilation[d]
                    < dims.in_size[d])
    });
    let [i1, i2] = [dims.in_size[1], dims.in_size[2]];
    let mut position = 0;
    for y0 in 0..o0 {
        for y1 in 0..o1 {
            let row = (y0 * dims.stride[0] * i1 + y1 * dims.stride[1]) * i2;
            for y2 in 0..o2 {
                let y = [y0, y1, y2];
                let first = if all_inside {
                    Some(row + y2 * dims.stride[2])
                } else {
                    windows.interior(y)
                };
                visit(position, y, first);
                position += 1;
            }
        }
    }
}

/// The offset of the maximum of `plane`'s window at `y` (the first tap inside starts the
/// search, greater or NaN replaces), or `None` if no tap is inside.
fn argmax(windows: &Windows, plane: &[f32], y: [usize; 3], first: Option<usize>) -> Option<usize> {
    if let (Some(first), Some((&o, rest))) = (first, windows.offsets.split_first()) {
        // Every tap inside: a branch-free scan (which tap wins is data, not a pattern; the
        // maximum's bits select as an integer, which compiles to a conditional move).
        let (mut at, mut max) = (first + o, plane[first + o].to_bits());
        for &o in rest {
            let v = plane[first + o];
            let replaces = v > f32::from_bits(max) || v.is_nan();
            at = select_unpredictable(replaces, first + o, at);
            max = select_unpredictable(replaces, v.to_bits(), max);
        }
        return Some(at);
    }
    let mut best: Option<(usize, f32)> = None;
    windows.taps(y, None, |at| {
        let v = plane[at];
        if best.is_none_or(|(_, max)| v > max || v.is_nan()) {
            best = Some((at, v));
        }
    });
    best.map(|(at, _)| at)
}

/// Max pooling of planes `p_start .. p_stop` of `x` into `out`: each output the maximum of
/// its window from `-inf`. With `keep` (not null) a channel dropout follows in the same
/// pass: plane `p`'s outputs become `keep[p] ? max * scale : +0.0`, the dropout's definition
/// ([`crate::math::dropout_zeroing`]).
///
/// # Safety
/// `geometry` is valid; `x` holds those planes of the input size and `out` of the output
/// size, not overlapping; `keep`, unless null, holds a byte (0 or 1) per plane.
pub unsafe extern "C" fn dropjit_max_pool(
    geometry: *const Geometry,
    x: *const f32,
    out: *mut f32,
    p_start: usize,
    p_stop: usize,
    keep: *const u8,
    scale: f32,
) {
    // SAFETY: the caller's contract.
    let dims = unsafe { (*geometry).dims() };
    let (in_plane, out_plane) = (dims.in_plane(), dims.out_plane());
    let windows = Windows::new(&dims);
    for p in p_start..p_stop {
        // SAFETY: plane `p` of each buffer is inside it (the caller's contract).
        let (plane, result) = unsafe {
            (
                std::slice::from_raw_parts(x.add(p * in_plane), in_plane),
                std::slice::from_raw_parts_mut(out.add(p * out_plane), out_plane),
            )
        };
        // SAFETY: plane `p` has a keep byte (the caller's contract).
        let kept = (!keep.is_null()).then(|| unsafe { *keep.add(p) } != 0);
        if kept == Some(false) {
            result.fill(0.0);
            continue;
        }
        each_window(&windows, |position, y, first| {
            // Branch-free, the bits selected as an integer (a conditional move).
            let mut max = f32::NEG_INFINITY.to_bits();
            windows.taps(y, first, |at| {
                let v = plane[at];
                let replaces = v > f32::from_bits(max) || v.is_nan();
                max = select_unpredictable(replaces, v.to_bits(), max);
            });
            let max = f32::from_bits(max);
            result[position] = if kept.is_some() { max * scale } else { max };
        });
    }
}

/// The gradient of max pooling for planes `p_start .. p_stop`: each plane of `out` (the
/// input's size) zeroed, then every output position's gradient `g` in row-major order added
/// to its window's argmax in `x`. An input element thus sums the gradients of the windows
/// whose maximum it is, in the windows' order from `+0.0`: the interpreter's sum. With `pre`
/// (not null) the ReLU gradient that reads it follows plane by plane, while the plane is in
/// cache: `relu[i] = relu_grad(out[i], pre[i])` ([`crate::math::relu_grad`]); `relu` may be
/// `out` itself (the pooling gradient needed by nothing else).
///
/// # Safety
/// As [`dropjit_max_pool`]'s, with `g` holding the planes of the output size and `out`, and
/// unless `pre` is null `pre` and `relu`, of the input size; `relu` is `out` or overlaps
/// nothing.
#[allow(clippy::too_many_arguments)] // the flat C ABI generated code calls
pub unsafe extern "C" fn dropjit_max_pool_grad(
    geometry: *const Geometry,
    g: *const f32,
    x: *const f32,
    out: *mut f32,
    p_start: usize,
    p_stop: usize,
    pre: *const f32,
    relu: *mut f32,
) {
    // SAFETY: the caller's contract.
    let dims = unsafe { (*geometry).dims() };
    let (in_plane, out_plane) = (dims.in_plane(), dims.out_plane());
    let windows = Windows::new(&dims);
    for p in p_start..p_stop {
        // SAFETY: plane `p` of each buffer is inside it (the caller's contract).
        let (plane, grads, result) = unsafe {
            (
                std::slice::from_raw_parts(x.add(p * in_plane), in_plane),
                std::slice::from_raw_parts(g.add(p * out_plane), out_plane),
                std::slice::from_raw_parts_mut(out.add(p * in_plane), in_plane),
            )
        };
        result.fill(0.0);
        each_window(&windows, |position, y, first| {
            if let Some(at) = argmax(&windows, plane, y, first) {
                result[at] += grads[position];
            }
        });
        if pre.is_null() {
            continue;
        }
        // SAFETY: plane `p` of `pre` is inside it (the caller's contract).
        let pre = unsafe { std::slice::from_raw_parts(pre.add(p * in_plane), in_plane) };
        if std::ptr::eq(relu, out) {
            for (r, &x) in result.iter_mut().zip(pre) {
                *r = math::relu_grad(*r, x);
            }
        } else {
            // SAFETY: plane `p` of `relu` is inside it and overlaps nothing (the contract).
            let relu = unsafe { std::slice::from_raw_parts_mut(relu.add(p * in_plane), in_plane) };
            for ((r, &v), &x) in relu.iter_mut().zip(result.iter()).zip(pre) {
                *r = math::relu_grad(v, x);
            }
        }
    }
}
