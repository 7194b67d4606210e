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
