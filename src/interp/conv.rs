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
