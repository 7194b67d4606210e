//! Convolution (`torch.nn.functional.conv1d/2d/3d`): its attributes and its shape rule.
//!
//! With input `x: [N, C, L_0, ..]` (or unbatched `[C, L_0, ..]`), weight
//! `w: [O, C / groups, k_0, ..]` and optional bias `b: [O]`, output channel `o` of group
//! `g = o / (O / groups)` at output position `y` is
//!
//! ```text
//! acc = +0.0
//! for c in 0..C/groups, for each kernel position k (row-major):
//!     acc = acc + x[n, g * C/groups + c, y * stride + k * dilation - padding] * w[o, c, k]
//! out = acc (+ b[o])
//! ```
//!
//! in that order, each `+` and `*` one f32 rounding (no FMA), where `x` at a position in the
//! padding is `+0.0` (and still multiplied: a NaN or infinite weight makes the sum NaN, as
//! an im2col product does). The output length of a spatial dimension is
//! `(L + padding + padding_end - dilation * (k - 1) - 1) / stride + 1`; PyTorch's symmetric
//! `padding` is `padding_end = padding`, and its `"same"` (stride 1) puts the odd extra
//! padding at the end. `padding_mode` is zeros only.

use crate::error::TypeError;
use crate::types::Shape;

/// The attributes of a convolution over `stride.len()` spatial dimensions (1 to 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv {
    /// Per spatial dimension: the step between output positions (at least 1).
    pub stride: Vec<usize>,
    /// Per spatial dimension: zeros before the input.
    pub padding: Vec<usize>,
    /// Per spatial dimension: zeros after the input (PyTorch: `padding`, or for `"same"` one
    /// more where the total is odd).
    pub padding_end: Vec<usize>,
    /// Per spatial dimension: the step between kernel taps (at least 1).
    pub dilation: Vec<usize>,
    /// Channel groups: `C` and `O` split into `groups` parts, each output group seeing its
    /// input group only (`groups = C` is a depthwise convolution).
    pub groups: usize,
    /// A bias operand `[O]` is added last.
    pub bias: bool,
}

/// The most spatial dimensions a convolution takes.
pub const MAX_SPATIAL: usize = 3;

impl Conv {
    /// A convolution over `spatial` dimensions with stride 1, no padding, dilation 1, one group.
    pub fn new(spatial: usize, bias: bool) -> Conv {
        Conv {
            stride: vec![1; spatial],
            padding: vec![0; spatial],
            padding_end: vec![0; spatial],
            dilation: vec![1; spatial],
            groups: 1,
            bias,
        }
    }

    /// PyTorch's `padding = "same"`: the output as long as the input (stride 1 only), the
    /// total padding `dilation * (k - 1)` split with the odd one at the end.
    pub fn same(kernel: &[usize], dilation: &[usize], bias: bool) -> Conv {
        let total: Vec<usize> = (kernel.iter().zip(dilation))
            .map(|(&k, &d)| d.saturating_mul(k.saturating_sub(1)))
            .collect();
        Conv {
            padding: total.iter().map(|t| t / 2).collect(),
            padding_end: total.iter().map(|t| t - t / 2).collect(),
            dilation: dilation.to_vec(),
            ..Conv::new(kernel.len(), bias)
        }
    }

    /// The number of spatial dimensions.
    pub fn spatial(&self) -> usize {
        self.stride.len()
    }

    /// The op's name: `conv1d`, `conv2d` or `conv3d`.
    pub fn name(&self) -> &'static str {
        match self.spatial() {
            1 => "conv1d",
            2 => "conv2d",
            _ => "conv3d",
        }
    }

    /// The name of its input gradient op: `conv2d_input_grad`, ...
    pub fn input_grad_name(&self) -> &'static str {
        [
            "conv1d_input_grad",
            "conv2d_input_grad",
            "conv3d_input_grad",
        ][self.spatial().clamp(1, 3) - 1]
    }

    /// The name of its weight gradient op: `conv2d_weight_grad`, ...
    pub fn weight_grad_name(&self) -> &'static str {
        [
            "conv1d_weight_grad",
            "conv2d_weight_grad",
            "conv3d_weight_grad",
        ][self.spatial().clamp(1, 3) - 1]
    }

    /// The type check of a gradient op (`name`): `g` has to be the output of this
    /// convolution of `x` with `w` (no bias: a gradient op's `bias` is false).
    pub fn check_grad(
        &self,
        name: &'static str,
        g: &Shape,
        x: &Shape,
        w: &Shape,
    ) -> Result<(), TypeError> {
        let out = self.output_shape(x, w)?;
        if self.bias || *g != out {
            return Err(TypeError::Conv {
                op: name,
                reason: format!(
                    "the gradient {g} has to be the convolution's output {out} (of input {x} and \
                     weight {w}), with no bias"
                ),
            });
        }
        Ok(())
    }

    /// The output shape for input `x` and weight `w`, or why they do not fit.
    pub fn output_shape(&self, x: &Shape, w: &Shape) -> Result<Shape, TypeError> {
        let fail = |reason: String| TypeError::Conv {
            op: self.name(),
            reason,
        };
        let s = self.spatial();
        for (what, values) in [
            ("padding", &self.padding),
            ("padding_end", &self.padding_end),
            ("dilation", &self.dilation),
        ] {
            if values.len() != s {
                return Err(fail(format!(
                    "{what} has {} values, but stride has {s}",
                    values.len()
                )));
            }
        }
        if s == 0 || s > MAX_SPATIAL {
            return Err(fail(format!(
                "{s} spatial dimensions (1 to 3 are supported)"
            )));
        }
        if self.stride.contains(&0) || self.dilation.contains(&0) || self.groups == 0 {
            return Err(fail(format!(
                "stride {:?}, dilation {:?} and groups {} have to be at least 1",
                self.stride, self.dilation, self.groups
            )));
        }
        let batched = match x.rank() {
            r if r == s + 2 => true,
            r if r == s + 1 => false,
            r => {
                return Err(fail(format!(
                    "expects a {}-D (C, ...) or {}-D (N, C, ...) input, but got a {r}-D input",
                    s + 1,
                    s + 2
                )));
            }
        };
        if w.rank() != s + 2 {
            return Err(fail(format!(
                "expects a {}-D weight (out_channels, in_channels / groups, kernel...), but got {w}",
                s + 2
            )));
        }
        let xd = x.dims();
        let (channels, spatial) = if batched {
            (xd[1], &xd[2..])
        } else {
            (xd[0], &xd[1..])
        };
        let (out_channels, group_channels, kernel) = (w.dims()[0], w.dims()[1], &w.dims()[2..]);
        if !channels.is_multiple_of(self.groups) || !out_channels.is_multiple_of(self.groups) {
            return Err(fail(format!(
                "{channels} input and {out_channels} output channels have to be divisible by groups = {}",
                self.groups
            )));
        }
        if channels / self.groups != group_channels {
            return Err(fail(format!(
                "the input {x} has {channels} channels, but the weight {w} expects {} \
                 (in_channels / groups = {group_channels}, groups = {})",
                group_channels * self.groups,
                self.groups
            )));
        }
        let mut dims = Vec::with_capacity(x.rank());
        if batched {
            dims.push(xd[0]);
        }
        dims.push(out_channels);
        for i in 0..s {
            let padded = spatial[i]
                .checked_add(self.padding[i])
                .and_then(|l| l.checked_add(self.padding_end[i]));
            let reach = kernel[i]
                .checked_sub(1)
                .and_then(|k| k.checked_mul(self.dilation[i]))
                .and_then(|k| k.checked_add(1));
            match (padded, reach) {
                (Some(padded), Some(reach)) if reach <= padded => {
                    dims.push((padded - reach) / self.stride[i] + 1);
                }
                (Some(padded), Some(reach)) => {
                    return Err(fail(format!(
                        "the kernel reaches {reach} positions in spatial dimension {i}, more \
                         than the padded input's {padded}"
                    )));
                }
                _ => {
                    return Err(fail(format!(
                        "spatial dimension {i}: an empty kernel, or sizes past the address space"
                    )));
                }
            }
        }
        Ok(Shape::new(dims))
    }
}
