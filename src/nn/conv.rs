//! [`ConvNd`]: `nn.Conv1d/2d/3d` with PyTorch's default initialisation.

use std::fmt;

use super::eager::parametric_forward;
use super::module::{Module, fmt_module};
use super::var::Var;
use crate::error::{Error, Result};
use crate::graph::{Conv, Op, TensorType};
use crate::rng::Generator;
use crate::runtime::ParameterStore;
use crate::tensor::Tensor;

/// `nn.Conv1d`, `nn.Conv2d` or `nn.Conv3d` (by the kernel's length): weight
/// `[out, in / groups, kernel...]` and bias `[out]` in the module's own store, zero padding.
pub struct ConvNd {
    conv: Conv,
    in_channels: usize,
    kernel: Vec<usize>,
    params: ParameterStore,
}

impl ConvNd {
    /// A convolution from `in_channels` to `out_channels` with window `kernel` (1 to 3
    /// dimensions), stride 1, no padding, one group, initialised as PyTorch does
    /// (`kaiming_uniform(a = sqrt 5)` for the weight, which is uniform in `±1/sqrt(fan_in)`,
    /// and the bias in the same bound, `fan_in = in_channels / groups * prod(kernel)`), the
    /// weight drawn first. Set the other attributes with [`ConvNd::stride`], ... before its
    /// first call.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: &[usize],
        generator: &mut Generator,
    ) -> Result<ConvNd> {
        ConvNd::with_groups(in_channels, out_channels, kernel, 1, generator)
    }

    /// [`ConvNd::new`] with `groups` channel groups (`groups = in_channels`: depthwise).
    pub fn with_groups(
        in_channels: usize,
        out_channels: usize,
        kernel: &[usize],
        groups: usize,
        generator: &mut Generator,
    ) -> Result<ConvNd> {
        let invalid = |reason: String| Error::Module {
            module: format!("Conv{}d", kernel.len()),
            detail: crate::error::TypeError::Conv { op: "conv", reason },
        };
        if !(1..=3).contains(&kernel.len()) || groups == 0 {
            return Err(invalid(format!(
                "a kernel of 1 to 3 dimensions and at least one group, but got {kernel:?} and {groups}"
            )));
        }
        if !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
            return Err(invalid(format!(
                "{in_channels} input and {out_channels} output channels have to be divisible by groups = {groups}"
            )));
        }
        let mut w = vec![out_channels, in_channels / groups];
        w.extend_from_slice(kernel);
        let fan_in: usize = w[1..].iter().product();
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let weight = generator.uniform(w, -bound, bound)?;
        let bias = generator.uniform([out_channels], -bound, bound)?;
        let mut conv = Conv::new(kernel.len(), true);
        conv.groups = groups;
        let mut params = ParameterStore::new();
        params.insert("weight", weight);
        params.insert("bias", bias);
        Ok(ConvNd {
            conv,
            in_channels,
            kernel: kernel.to_vec(),
            params,
        })
    }

    /// Sets the stride (one value per spatial dimension).
    pub fn stride(mut self, stride: &[usize]) -> ConvNd {
        self.conv.stride = stride.to_vec();
        self
    }

    /// Sets symmetric zero padding (one value per spatial dimension).
    pub fn padding(mut self, padding: &[usize]) -> ConvNd {
        self.conv.padding = padding.to_vec();
        self.conv.padding_end = padding.to_vec();
        self
    }

    /// PyTorch's `padding = "same"` (stride 1): the output as long as the input.
    pub fn padding_same(mut self) -> ConvNd {
        let same = Conv::same(&self.kernel, &self.conv.dilation, true);
        self.conv.padding = same.padding;
        self.conv.padding_end = same.padding_end;
        self
    }

    /// Sets the dilation (one value per spatial dimension).
    pub fn dilation(mut self, dilation: &[usize]) -> ConvNd {
        self.conv.dilation = dilation.to_vec();
        self
    }

    /// The weight, `[out, in / groups, kernel...]`.
    pub fn weight(&self) -> &Tensor {
        self.params
            .get("weight")
            .expect("invariant: ConvNd has a weight")
    }

    /// The bias, `[out]`.
    pub fn bias(&self) -> &Tensor {
        self.params
            .get("bias")
            .expect("invariant: ConvNd has a bias")
    }

    fn parameter_types(&self) -> [(&'static str, TensorType); 2] {
        [("weight", self.weight().ty()), ("bias", self.bias().ty())]
    }
}

impl Module for ConvNd {
    fn forward(&self, x: &Var) -> Result<Var> {
        let parameters = self.parameter_types().to_vec();
        parametric_forward(
            self,
            Op::Conv(self.conv.clone()),
            x,
            &self.params,
            parameters,
        )
    }

    fn local_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("weight", self.weight()), ("bias", self.bias())]
    }

    fn name(&self) -> String {
        format!("Conv{}d", self.kernel.len())
    }

    fn extra_repr(&self) -> String {
        let tuple = |v: &[usize]| {
            let items: Vec<String> = v.iter().map(usize::to_string).collect();
            if v.len() == 1 {
                format!("({},)", items[0])
            } else {
                format!("({})", items.join(", "))
            }
        };
        let mut repr = format!(
            "{}, {}, kernel_size={}, stride={}",
            self.in_channels,
            self.weight().shape().dims()[0],
            tuple(&self.kernel),
            tuple(&self.conv.stride)
        );
        if self.conv.padding.iter().any(|&p| p != 0) || self.conv.padding_end != self.conv.padding {
            if self.conv.padding_end == self.conv.padding {
                repr += &format!(", padding={}", tuple(&self.conv.padding));
            } else {
                repr += ", padding=same";
            }
        }
        if self.conv.dilation.iter().any(|&d| d != 1) {
            repr += &format!(", dilation={}", tuple(&self.conv.dilation));
        }
        if self.conv.groups != 1 {
            repr += &format!(", groups={}", self.conv.groups);
        }
        repr
    }
}

impl fmt::Display for ConvNd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

impl fmt::Debug for ConvNd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
