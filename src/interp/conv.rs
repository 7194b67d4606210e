//! Convolution, the definition ([`crate::graph::Conv`]): each output element a sum of
//! products over its group's input channels and the kernel's taps in the weight's row-major
//! order, from `+0.0`, each product and sum one rounding (no FMA), a tap in the padding
//! reading `+0.0`; then the bias, once.

use crate::graph::{Conv, Shape};
use crate::math::Element;

use super::value::Array;

/// `conv` of `x` with `weight` (and `bias`); `out` is the node's inferred shape.
pub(crate) fn conv<T: Element>(
    conv: &Conv,
    x: &Array<T>,
    weight: &Array<T>,
    bias: Option<&Array<T>>,
    out: &Shape,
) -> Array<T> {
    let s = conv.spatial();
    let batched = x.shape.rank() == s + 2;
    let (images, channels) = if batched {
        (x.shape.dims()[0], x.shape.dims()[1])
    } else {
        (1, x.shape.dims()[0])
    };
    let in_size = &x.shape.dims()[x.shape.rank() - s..];
    let out_size = &out.dims()[out.rank() - s..];
    let w = weight.shape.dims();
    let (out_channels, group_channels, kernel) = (w[0], w[1], &w[2..]);
    let per_group = out_channels / conv.groups;
    let in_plane: usize = in_size.iter().product();
    let out_plane: usize = out_size.iter().product();
    let taps: usize = kernel.iter().product();
    let in_strides = Shape::new(in_size).strides();
    let mut data = Vec::with_capacity(out.numel());
    let mut y = vec![0usize; s];
    let mut k = vec![0usize; s];
    for n in 0..images {
        for o in 0..out_channels {
            let g = o / per_group;
            for position in 0..out_plane {
                unravel(position, out_size, &mut y);
                let mut acc = T::ZERO;
                for c in 0..group_channels {
                    let plane = (n * channels + g * group_channels + c) * in_plane;
                    for tap in 0..taps {
                        unravel(tap, kernel, &mut k);
                        let mut offset = Some(0usize);
                        for i in 0..s {
                            // The input coordinate, or none in the padding.
                            let at = (y[i] * conv.stride[i] + k[i] * conv.dilation[i])
                                .checked_sub(conv.padding[i])
                                .filter(|&at| at < in_size[i]);
                            offset = offset.zip(at).map(|(o, at)| o + at * in_strides[i]);
                        }
                        let xv = offset.map_or(T::ZERO, |o| x.data[plane + o]);
                        let wv = weight.data[(o * group_channels + c) * taps + tap];
                        acc = acc + xv * wv;
                    }
                }
                if let Some(b) = bias {
                    acc = acc + b.data[o];
                }
                data.push(acc);
            }
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

/// The gradient of `conv` with respect to its input ([`crate::graph::Op::ConvInputGrad`]):
/// `g` the incoming gradient, `out` the input's shape.
pub(crate) fn conv_input_grad<T: Element>(
    conv: &Conv,
    g: &Array<T>,
    weight: &Array<T>,
    out: &Shape,
) -> Array<T> {
    let s = conv.spatial();
    let batched = out.rank() == s + 2;
    let (images, channels) = if batched {
        (out.dims()[0], out.dims()[1])
    } else {
        (1, out.dims()[0])
    };
    let in_size = &out.dims()[out.rank() - s..];
    let g_size = &g.shape.dims()[g.shape.rank() - s..];
    let w = weight.shape.dims();
    let (out_channels, group_channels, kernel) = (w[0], w[1], &w[2..]);
    let per_group = out_channels / conv.groups;
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let taps: usize = kernel.iter().product();
    let g_strides = Shape::new(g_size).strides();
    let (mut pos, mut k) = (vec![0usize; s], vec![0usize; s]);
    let mut data = Vec::with_capacity(out.numel());
    for n in 0..images {
        for ci in 0..channels {
            let (group, c) = (ci / group_channels, ci % group_channels);
            for position in 0..in_plane {
                unravel(position, in_size, &mut pos);
                // Per tap (row-major) that reaches pos from an output position y: the sum
                // from +0.0 over the group's output channels, added to acc from +0.0 (a
                // product per image on the GEMM, then col2im).
                let mut acc = T::ZERO;
                for tap in 0..taps {
                    unravel(tap, kernel, &mut k);
                    // The output position y with y * stride + k * dilation - padding = pos.
                    let offset = (0..s).try_fold(0, |offset, i| {
                        let at = (pos[i] + conv.padding[i]).checked_sub(k[i] * conv.dilation[i])?;
                        let y = (at % conv.stride[i] == 0).then_some(at / conv.stride[i])?;
                        (y < g_size[i]).then_some(offset + y * g_strides[i])
                    });
                    let Some(offset) = offset else {
                        continue;
                    };
                    let mut inner = T::ZERO;
                    for o in group * per_group..(group + 1) * per_group {
                        let gv = g.data[(n * out_channels + o) * g_plane + offset];
                        let wv = weight.data[(o * group_channels + c) * taps + tap];
                        inner = inner + wv * gv;
                    }
                    acc = acc + inner;
                }
                data.push(acc);
            }
        }
    }
    Array::filled(out.clone(), data)
}

/// The gradient of `conv` with respect to its weight ([`crate::graph::Op::ConvWeightGrad`]):
/// `g` the incoming gradient, `x` the input, `out` the weight's shape.
pub(crate) fn conv_weight_grad<T: Element>(
    conv: &Conv,
    g: &Array<T>,
    x: &Array<T>,
    out: &Shape,
) -> Array<T> {
    let s = conv.spatial();
    let batched = x.shape.rank() == s + 2;
    let (images, channels) = if batched {
        (x.shape.dims()[0], x.shape.dims()[1])
    } else {
        (1, x.shape.dims()[0])
    };
    let in_size = &x.shape.dims()[x.shape.rank() - s..];
    let g_size = &g.shape.dims()[g.shape.rank() - s..];
    let w = out.dims();
    let (out_channels, group_channels, kernel) = (w[0], w[1], &w[2..]);
    let per_group = out_channels / conv.groups;
    let in_plane: usize = in_size.iter().product();
    let g_plane: usize = g_size.iter().product();
    let taps: usize = kernel.iter().product();
    let in_strides = Shape::new(in_size).strides();
    let (mut y, mut k) = (vec![0usize; s], vec![0usize; s]);
    let mut data = Vec::with_capacity(out.numel());
    for o in 0..out_channels {
        let group = o / per_group;
        for c in 0..group_channels {
            for tap in 0..taps {
                unravel(tap, kernel, &mut k);
                // Per image a sum from +0.0 over its positions; the images' sums added in
                // order from +0.0 (one matrix product per image on the GEMM).
                let mut acc = T::ZERO;
                for n in 0..images {
                    let plane = (n * channels + group * group_channels + c) * in_plane;
                    let mut partial = T::ZERO;
                    for position in 0..g_plane {
                        unravel(position, g_size, &mut y);
                        let offset = (0..s).try_fold(0usize, |offset, i| {
                            let at = (y[i] * conv.stride[i] + k[i] * conv.dilation[i])
                                .checked_sub(conv.padding[i])
                                .filter(|&at| at < in_size[i])?;
                            Some(offset + at * in_strides[i])
                        });
                        let xv = offset.map_or(T::ZERO, |o| x.data[plane + o]);
                        let gv = g.data[(n * out_channels + o) * g_plane + position];
                        partial = partial + xv * gv;
                    }
                    acc = acc + partial;
                }
                data.push(acc);
            }
        }
    }
    Array::filled(out.clone(), data)
}
