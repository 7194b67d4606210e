//! Pooling (`torch.nn.functional.max_pool1d/2d/3d`, `avg_pool1d/2d/3d`,
//! `adaptive_avg_pool1d/2d/3d`): attributes, shape rules and the windows they read.
//!
//! Each channel of `[N, C, L_0, ..]` (or unbatched `[C, L_0, ..]`) is pooled alone. Output
//! position `y` of a sliding pool reads the window starting at `y * stride - padding`, taps
//! `k * dilation` apart (dilation is max pooling's only):
//! - **max**: over the window's taps inside the input in row-major order, from `-inf`, a tap
//!   replaces the maximum if it is greater or NaN (PyTorch's rule: the first of equal maxima
//!   wins, a NaN always does); the padding is `-inf` and never wins;
//! - **avg**: the sum of the taps inside the input in row-major order from `+0.0`, divided
//!   once by the count of taps inside the input (`count_include_pad = false`) or inside the
//!   input and its padding (`true`, PyTorch's default, where with `ceil_mode` a window's part
//!   past the right padding does not count).
//!
//! The output length is `(L + 2 padding - dilation (k - 1) - 1) / stride + 1`, rounded up
//! with `ceil_mode`, where a last window that would start in the right padding is dropped.
//! Adaptive average pooling to `o` outputs averages bin `i = [floor(i L / o), ceil((i + 1) L
//! / o))` of each dimension, in row-major order from `+0.0`, divided once by its size.

use crate::error::TypeError;
use crate::types::Shape;

/// Max or average.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Max,
    Avg,
}

/// The attributes of a sliding-window pool over `kernel.len()` spatial dimensions (1 to 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pool {
    pub kind: PoolKind,
    /// The window per spatial dimension.
    pub kernel: Vec<usize>,
    /// Per spatial dimension (PyTorch's default: the kernel).
    pub stride: Vec<usize>,
    /// Per spatial dimension, on both sides, at most half the kernel.
    pub padding: Vec<usize>,
    /// Per spatial dimension: 1 for average pooling.
    pub dilation: Vec<usize>,
    /// Round the output length up (a window starting in the right padding is dropped).
    pub ceil_mode: bool,
    /// Average pooling: divide by the window's taps inside input and padding, not only the
    /// input's.
    pub count_include_pad: bool,
}

/// Which channels and spatial sizes a pool of `spatial` dimensions sees in `x`, or the
/// error naming what it accepts: `(batched, spatial sizes)`.
fn pooled_dims<'a>(
    op: &'static str,
    spatial: usize,
    x: &'a Shape,
) -> Result<&'a [usize], TypeError> {
    if (1..=3).contains(&spatial) && (x.rank() == spatial + 1 || x.rank() == spatial + 2) {
        return Ok(&x.dims()[x.rank() - spatial..]);
    }
    Err(TypeError::Pool {
        op,
        reason: format!(
            "expects a {}-D (C, ...) or {}-D (N, C, ...) input, but got a {}-D input",
            spatial + 1,
            spatial + 2,
            x.rank()
        ),
    })
}

impl Pool {
    /// A pool of `kind` with window `kernel`, PyTorch's defaults otherwise (stride = kernel).
    pub fn new(kind: PoolKind, kernel: &[usize]) -> Pool {
        let s = kernel.len();
        Pool {
            kind,
            kernel: kernel.to_vec(),
            stride: kernel.to_vec(),
            padding: vec![0; s],
            dilation: vec![1; s],
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// The number of spatial dimensions.
    pub fn spatial(&self) -> usize {
        self.kernel.len()
    }

    /// The op's name: `max_pool2d`, `avg_pool1d`, ...
    pub fn name(&self) -> &'static str {
        let names = match self.kind {
            PoolKind::Max => ["max_pool1d", "max_pool2d", "max_pool3d"],
            PoolKind::Avg => ["avg_pool1d", "avg_pool2d", "avg_pool3d"],
        };
        names[self.spatial().clamp(1, 3) - 1]
    }

    /// The name of its gradient op: `max_pool2d_grad`, ...
    pub fn grad_name(&self) -> &'static str {
        let names = match self.kind {
            PoolKind::Max => ["max_pool1d_grad", "max_pool2d_grad", "max_pool3d_grad"],
            PoolKind::Avg => ["avg_pool1d_grad", "avg_pool2d_grad", "avg_pool3d_grad"],
        };
        names[self.spatial().clamp(1, 3) - 1]
    }

    /// The output shape for input `x`, or why it does not fit.
    pub fn output_shape(&self, x: &Shape) -> Result<Shape, TypeError> {
        let fail = |reason: String| TypeError::Pool {
            op: self.name(),
            reason,
        };
        let s = self.spatial();
        for (what, values) in [
            ("stride", &self.stride),
            ("padding", &self.padding),
            ("dilation", &self.dilation),
        ] {
            if values.len() != s {
                return Err(fail(format!(
                    "{what} has {} values, but the kernel has {s}",
                    values.len()
                )));
            }
        }
        let size = pooled_dims(self.name(), s, x)?;
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(fail(format!(
                "kernel {:?}, stride {:?} and dilation {:?} have to be at least 1",
                self.kernel, self.stride, self.dilation
            )));
        }
        if self.kind == PoolKind::Avg && self.dilation.iter().any(|&d| d != 1) {
            return Err(fail(format!(
                "average pooling has no dilation, but got {:?}",
                self.dilation
            )));
        }
        if let Some(i) = (0..s).find(|&i| self.padding[i] > self.kernel[i] / 2) {
            return Err(fail(format!(
                "padding {} in spatial dimension {i} is more than half the kernel {}",
                self.padding[i], self.kernel[i]
            )));
        }
        let mut dims = x.dims()[..x.rank() - s].to_vec();
        for (i, &length) in size.iter().enumerate() {
            let padded = (self.padding[i].checked_mul(2)).and_then(|p| length.checked_add(p));
            let reach = (self.kernel[i] - 1)
                .checked_mul(self.dilation[i])
                .and_then(|r| r.checked_add(1));
            let (Some(padded), Some(reach)) = (padded, reach) else {
                return Err(fail(format!(
                    "spatial dimension {i}: sizes past the address space"
                )));
            };
            if reach > padded {
                return Err(fail(format!(
                    "the window reaches {reach} positions in spatial dimension {i}, more than \
                     the padded input's {padded}"
                )));
            }
            let span = padded - reach;
            let mut out = if self.ceil_mode {
                span.div_ceil(self.stride[i]) + 1
            } else {
                span / self.stride[i] + 1
            };
            // With ceil_mode, a last window starting in the right padding is dropped (both
            // sides are at most `padded + stride`, which may pass usize: saturate).
            let last_start = (out - 1).saturating_mul(self.stride[i]);
            if self.ceil_mode && last_start >= length + self.padding[i] {
                out -= 1;
            }
            dims.push(out);
        }
        Ok(Shape::new(dims))
    }
}

/// The output shape of adaptive average pooling of `x` to `output` sizes.
pub fn adaptive_output_shape(output: &[usize], x: &Shape) -> Result<Shape, TypeError> {
    let op = adaptive_name(output.len());
    let size = pooled_dims(op, output.len(), x)?;
    if let Some(i) = (0..output.len())
        .find(|&i| output[i] == 0 && size[i] != 0 || output[i] != 0 && size[i] == 0)
    {
        return Err(TypeError::Pool {
            op,
            reason: format!(
                "cannot pool {} positions into {} in spatial dimension {i}",
                size[i], output[i]
            ),
        });
    }
    // The bins' bounds are computed as i * L / o in 64 bits by compiled code.
    if let Some(i) =
        (0..output.len()).find(|&i| (size[i] as u128) * (output[i] as u128 + 1) >= 1 << 63)
    {
        return Err(TypeError::Pool {
            op,
            reason: format!(
                "pooling {} positions into {} bins in spatial dimension {i} is past the sizes supported",
                size[i], output[i]
            ),
        });
    }
    let mut dims = x.dims()[..x.rank() - output.len()].to_vec();
    dims.extend_from_slice(output);
    Ok(Shape::new(dims))
}

/// `adaptive_avg_pool1d_grad`, `2d` or `3d`.
pub fn adaptive_grad_name(spatial: usize) -> &'static str {
    [
        "adaptive_avg_pool1d_grad",
        "adaptive_avg_pool2d_grad",
        "adaptive_avg_pool3d_grad",
    ][spatial.clamp(1, 3) - 1]
}

/// The type check of a pool gradient (`op`): `g` has to be the pool's output `out` of `x`.
pub fn check_grad(op: &'static str, g: &Shape, out: Shape) -> Result<(), TypeError> {
    if *g == out {
        return Ok(());
    }
    Err(TypeError::Pool {
        op,
        reason: format!("the gradient {g} has to be the pool's output {out}"),
    })
}

/// `adaptive_avg_pool1d`, `2d` or `3d`.
pub fn adaptive_name(spatial: usize) -> &'static str {
    [
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
    ][spatial.clamp(1, 3) - 1]
}

/// Bin `i` of `size` positions pooled into `bins`: `[floor(i size / bins), ceil((i + 1) size
/// / bins))`, in u128 so no product overflows.
pub fn adaptive_bin(i: usize, size: usize, bins: usize) -> (usize, usize) {
    let (i, size, bins) = (i as u128, size as u128, bins as u128);
    let start = i * size / bins;
    let end = ((i + 1) * size).div_ceil(bins);
    (start as usize, end as usize)
}
