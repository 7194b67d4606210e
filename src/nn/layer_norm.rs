//! [`LayerNorm`]: `torch.nn.LayerNorm(normalized_shape)`, normalizing over the last
//! dimensions with a learned per-element weight (ones) and bias (zeros); the op's definition
//! is [`crate::graph::layer_norm`]. It has no running statistics, so train and eval mode
//! compute the same.

use std::fmt;

use super::eager::parametric_forward;
use super::module::{Module, fmt_module, python_float};
use super::var::Var;
use crate::error::{Error, Result, TypeError};
use crate::graph::{Op, TensorType, layer_norm};
use crate::runtime::ParameterStore;
use crate::tensor::Tensor;

/// `nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)`: parameters
/// `weight` and `bias` of the normalized shape (if affine; the bias optional).
pub struct LayerNorm {
    op: layer_norm::LayerNorm,
    params: ParameterStore,
}

impl LayerNorm {
    /// A layer norm over trailing dimensions `normalized_shape` with PyTorch's defaults: eps
    /// 1e-5, a weight (ones) and a bias (zeros).
    pub fn new(normalized_shape: &[usize]) -> Result<LayerNorm> {
        LayerNorm::with_options(normalized_shape, layer_norm::DEFAULT_EPS, true, true)
    }

    /// A layer norm with PyTorch's options: `elementwise_affine` gives it a weight, and then
    /// `bias` a bias.
    pub fn with_options(
        normalized_shape: &[usize],
        eps: f64,
        elementwise_affine: bool,
        bias: bool,
    ) -> Result<LayerNorm> {
        let op = layer_norm::LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            weight: elementwise_affine,
            bias: elementwise_affine && bias,
        };
        let invalid = |reason: String| Error::Module {
            module: "LayerNorm".to_string(),
            detail: TypeError::LayerNorm {
                op: "layer_norm",
                reason,
            },
        };
        if normalized_shape.is_empty() {
            return Err(invalid(
                "normalized_shape has to name at least one dimension, but is []".to_string(),
            ));
        }
        let ty = TensorType::f32(normalized_shape.to_vec());
        let mut params = ParameterStore::new();
        if op.weight {
            // Zeros first: the size is checked and the memory had before the ones are written.
            let mut ones = Tensor::zeros(&ty)?;
            ones.as_f32_mut()
                .expect("invariant: an f32 tensor")
                .fill(1.0);
            params.insert("weight", ones);
        }
        if op.bias {
            params.insert("bias", Tensor::zeros(&ty)?);
        }
        Ok(LayerNorm { op, params })
    }

    /// The normalized trailing dimensions.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.op.normalized_shape
    }

    /// The weight (ones at first), if the module is affine.
    pub fn weight(&self) -> Option<&Tensor> {
        self.params.get("weight")
    }

    /// The bias (zeros at first), if the module has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.params.get("bias")
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Var) -> Result<Var> {
        let parameters = (self.local_parameters().into_iter())
            .map(|(name, t)| (name, t.ty()))
            .collect();
        parametric_forward(
            self,
            Op::LayerNorm(self.op.clone()),
            x,
            &self.params,
            parameters,
        )
    }

    fn local_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        let mut parameters = Vec::new();
        parameters.extend(self.weight().map(|w| ("weight", w)));
        parameters.extend(self.bias().map(|b| ("bias", b)));
        parameters
    }

    fn extra_repr(&self) -> String {
        let dims: Vec<String> = self
            .op
            .normalized_shape
            .iter()
            .map(usize::to_string)
            .collect();
        let tuple = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let python = |on: bool| if on { "True" } else { "False" };
        format!(
            "{tuple}, eps={}, elementwise_affine={}",
            python_float(self.op.eps),
            python(self.op.weight)
        )
    }
}

impl fmt::Display for LayerNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

impl fmt::Debug for LayerNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
