//! Pooling, the definition ([`crate::graph::pool`]): max over a window's taps inside the input
//! in row-major order (a tap replaces the maximum if greater or NaN), average as the sum of
//! those taps from `+0.0` divided once by the window's count, adaptive average over bins.

use crate::graph::pool::adaptive_bin;
use crate::graph::{Pool, PoolKind, Shape};
use crate::math::Element;

use super::value::Array;

/// `pool` of `x`; `out` is the node's inferred shape.
pub(crate) fn pool<T: Element>(pool: &Pool, x: &Array<T>, out: &Shape) -> Array<T> {
    let s = pool.spatial();
    let in_size = &x.shape.dims()[x.shape.rank() - s..];
    let out_size = &out.dims()[out.rank() - s..];
    let planes: usize = out.dims()[..out.rank() - s].iter().product();
    let in_plane: usize = in_size.iter().product();
    let out_plane: usize = out_size.iter().product();
    let taps: usize = pool.kernel.iter().product();
    let in_strides = Shape::new(in_size).strides();
    let (mut y, mut k) = (vec![0; s], vec![0; s]);
    let mut data = Vec::with_capacity(out.numel());
    for plane in 0..planes {
        let x_plane = &x.data[plane * in_plane..(plane + 1) * in_plane];
        for position in 0..out_plane {
            unravel(position, out_size, &mut y);
            let mut max = T::NEG_INFINITY;
            let mut sum = T::ZERO;
            for tap in 0..taps {
                unravel(tap, &pool.kernel, &mut k);
                let offset = (0..s).try_fold(0, |offset, i| {
                    let at = (y[i] * pool.stride[i] + k[i] * pool.dilation[i])
                        .checked_sub(pool.padding[i])
                        .filter(|&at| at < in_size[i])?;
                    Some(offset + at * in_strides[i])
                });
                if let Some(offset) = offset {
                    let v = x_plane[offset];
                    if v > max || v.is_nan() {
                        max = v;
                    }
                    sum = sum + v;
                }
            }
            data.push(match pool.kind {
                PoolKind::Max => max,
                PoolKind::Avg => sum / T::from_count(divisor(pool, &y, in_size)),
            });
        }
    }
    Array::filled(out.clone(), data)
}

/// The count an average window at output position `y` divides by: its taps inside the input,
/// or (`count_include_pad`) inside the input and its padding.
pub(crate) fn divisor(pool: &Pool, y: &[usize], in_size: &[usize]) -> usize {
    (0..pool.spatial())
        .map(|i| {
            // The window's extent in padded coordinates, clipped as PyTorch clips it.
            let start = y[i] * pool.stride[i];
            let (padding, size) = (pool.padding[i], in_size[i]);
            if pool.count_include_pad {
                let end = (start + pool.kernel[i]).min(size + 2 * padding);
                end - start
            } else {
                let end = (start + pool.kernel[i]).min(size + padding);
                end.saturating_sub(start.max(padding))
            }
        })
        .product()
}

/// Adaptive average pooling of `x` to `out` (its last dimensions the output sizes).
pub(crate) fn adaptive_avg_pool<T: Element>(x: &Array<T>, out: &Shape, spatial: usize) -> Array<T> {
    let in_size = &x.shape.dims()[x.shape.rank() - spatial..];
    let out_size = &out.dims()[out.rank() - spatial..];
    let planes: usize = out.dims()[..out.rank() - spatial].iter().product();
    let in_plane: usize = in_size.iter().product();
    let out_plane: usize = out_size.iter().product();
    let in_strides = Shape::new(in_size).strides();
    let mut y = vec![0; spatial];
    let mut data = Vec::with_capacity(out.numel());
    for plane in 0..planes {
        let x_plane = &x.data[plane * in_plane..(plane + 1) * in_plane];
        for position in 0..out_plane {
            unravel(position, out_size, &mut y);
            let bins: Vec<(usize, usize)> = (0..spatial)
                .map(|i| adaptive_bin(y[i], in_size[i], out_size[i]))
                .collect();
            let extent: Vec<usize> = bins.iter().map(|(a, b)| b - a).collect();
            let count: usize = extent.iter().product();
            let mut sum = T::ZERO;
            let mut k = vec![0; spatial];
            for tap in 0..count {
                unravel(tap, &extent, &mut k);
                let offset: usize = (0..spatial)
                    .map(|i| (bins[i].0 + k[i]) * in_strides[i])
                    .sum();
                sum = sum + x_plane[offset];
            }
            data.push(sum / T::from_count(count));
        }
    }
    Array::filled(out.clone(), data)
}

/// The row-major coordinates of `index` in `dims`, into `coords`.
fn unravel(mut index: usize, dims: &[usize], coords: &mut [usize]) {
    for i in (0..dims.len()).rev() {
        coords[i] = index % dims[i];
        index /= dims[i];
    }
}

/// The input offset (within its plane) of the maximum of `pool`'s window at output position
/// `y`, by the forward's rule, or `None` if no tap is inside the input.
pub(crate) fn window_argmax<T: Element>(
    pool: &Pool,
    x_plane: &[T],
    y: &[usize],
    in_size: &[usize],
) -> Option<usize> {
    let s = pool.spatial();
    let in_strides = Shape::new(in_size).strides();
    let taps: usize = pool.kernel.iter().product();
    let mut k = vec![0; s];
    let (mut max, mut at_max) = (T::NEG_INFINITY, None);
    for tap in 0..taps {
        unravel(tap, &pool.kernel, &mut k);
        let offset = (0..s).try_fold(0, |offset, i| {
            let at = (y[i] * pool.stride[i] + k[i] * pool.dilation[i])
                .checked_sub(pool.padding[i])
                .filter(|&at| at < in_size[i])?;
            Some(offset + at * in_strides[i])
        });
        if let Some(offset) = offset {
            let v = x_plane[offset];
            // The first tap inside starts the search even at -inf, so it is the argmax of an
            // all -inf window, as PyTorch's index is.
            if v > max || v.is_nan() || at_max.is_none() {
                max = v;
                at_max = Some(offset);
            }
        }
    }
    at_max
}

/// The gradient of `pool` ([`crate::graph::Op::PoolGrad`]): `g` the incoming gradient, `x`
/// the pool's input.
pub(crate) fn pool_grad<T: Element>(pool: &Pool, g: &Array<T>, x: &Array<T>) -> Array<T> {
    let s = pool.spatial();
    let in_size = &x.shape.dims()[x.shape.rank() - s..];
    let g_size = &g.shape.dims()[g.shape.rank() - s..];
    let planes: usize = x.shape.dims()[..x.shape.rank() - s].iter().product();
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let (mut pos, mut y) = (vec![0; s], vec![0; s]);
    let mut data = Vec::with_capacity(x.data.len());
    for plane in 0..planes {
        let x_plane = &x.data[plane * in_plane..(plane + 1) * in_plane];
        let g_plane_data = &g.data[plane * g_plane..(plane + 1) * g_plane];
        for position in 0..in_plane {
            unravel(position, in_size, &mut pos);
            let mut acc = T::ZERO;
            for (out_position, &gv) in g_plane_data.iter().enumerate() {
                unravel(out_position, g_size, &mut y);
                // Is pos a tap of window y: y * stride + k * dilation - padding = pos?
                let inside = (0..s).all(|i| {
                    let at = pos[i] + pool.padding[i];
                    let start = y[i] * pool.stride[i];
                    at >= start
                        && (at - start).is_multiple_of(pool.dilation[i])
                        && (at - start) / pool.dilation[i] < pool.kernel[i]
                });
                if !inside {
                    continue;
                }
                match pool.kind {
                    PoolKind::Max => {
                        if window_argmax(pool, x_plane, &y, in_size) == Some(position) {
                            acc = acc + gv;
                        }
                    }
                    PoolKind::Avg => {
                        acc = acc + gv / T::from_count(divisor(pool, &y, in_size));
                    }
                }
            }
            data.push(acc);
        }
    }
    Array::filled(x.shape.clone(), data)
}

/// The gradient of adaptive average pooling ([`crate::graph::Op::AdaptiveAvgPoolGrad`]): `g`
/// the incoming gradient, `x` the pool's input (for its shape).
pub(crate) fn adaptive_avg_pool_grad<T: Element>(
    g: &Array<T>,
    x: &Shape,
    spatial: usize,
) -> Array<T> {
    let in_size = &x.dims()[x.rank() - spatial..];
    let g_size = &g.shape.dims()[g.shape.rank() - spatial..];
    let planes: usize = x.dims()[..x.rank() - spatial].iter().product();
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let (mut pos, mut y) = (vec![0; spatial], vec![0; spatial]);
    let mut data = Vec::with_capacity(x.numel());
    for plane in 0..planes {
        for position in 0..in_plane {
            unravel(position, in_size, &mut pos);
            let mut acc = T::ZERO;
            for out_position in 0..g_plane {
                unravel(out_position, g_size, &mut y);
                let bins: Vec<(usize, usize)> = (0..spatial)
                    .map(|i| adaptive_bin(y[i], in_size[i], g_size[i]))
                    .collect();
                if (0..spatial).all(|i| bins[i].0 <= pos[i] && pos[i] < bins[i].1) {
                    let count: usize = bins.iter().map(|(a, b)| b - a).product();
                    acc = acc + g.data[plane * g_plane + out_position] / T::from_count(count);
                }
            }
            data.push(acc);
        }
    }
    Array::filled(x.clone(), data)
}
