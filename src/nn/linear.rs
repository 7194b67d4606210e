//! [`Linear`]: `y = x · Wᵀ + b` with PyTorch's default initialisation.

use std::fmt;

use super::eager::parametric_forward;
use super::module::{Module, fmt_module};
use super::var::Var;
use crate::error::{Error, Result};
use crate::graph::{Op, TensorType};
use crate::rng::Generator;
use crate::runtime::ParameterStore;
use crate::tensor::Tensor;

/// `nn.Linear(in_features, out_features)`: weight `[out, in]` and bias `[out]`, held in the
/// module's own [`ParameterStore`] (as `weight` and `bias`) so eager calls run on them without
/// a copy.
pub struct Linear {
    in_features: usize,
    out_features: usize,
    params: ParameterStore,
}

impl Linear {
    /// A layer with weight and bias uniform in `±1/sqrt(in_features)` (PyTorch's default),
    /// weight drawn first, each from a fresh host stream of `generator`; fails if the memory
    /// for them cannot be had.
    pub fn new(
        in_features: usize,
        out_features: usize,
        generator: &mut Generator,
    ) -> Result<Linear> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let weight = generator.uniform([out_features, in_features], -bound, bound)?;
        let bias = generator.uniform([out_features], -bound, bound)?;
        Linear::from_parameters(weight, bias)
    }

    /// A layer with the given weight `[out, in]` and bias `[out]`; [`Error::Module`] if the
    /// shapes do not match.
    pub fn from_parameters(weight: Tensor, bias: Tensor) -> Result<Linear> {
        let dims = weight.shape().dims().to_vec();
        let detail = match *dims.as_slice() {
            [out, _] if bias.shape().dims() == [out] => None,
            [out, _] => Some(crate::error::TypeError::LinearBias {
                bias: bias.shape().clone(),
                out,
            }),
            _ => Some(crate::error::TypeError::Rank {
                what: "weight",
                expected: "a 2-D [out, in]",
                shape: weight.shape().clone(),
            }),
        };
        if let Some(detail) = detail {
            return Err(Error::Module {
                module: "Linear".to_string(),
                detail,
            });
        }
        let mut params = ParameterStore::new();
        params.insert("weight", weight);
        params.insert("bias", bias);
        Ok(Linear {
            in_features: dims[1],
            out_features: dims[0],
            params,
        })
    }

    /// The input width.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// The output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The weight, `[out_features, in_features]`.
    pub fn weight(&self) -> &Tensor {
        self.params
            .get("weight")
            .expect("invariant: Linear has a weight")
    }

    /// The bias, `[out_features]`.
    pub fn bias(&self) -> &Tensor {
        self.params
            .get("bias")
            .expect("invariant: Linear has a bias")
    }

    fn parameter_types(&self) -> [(&'static str, TensorType); 2] {
        [("weight", self.weight().ty()), ("bias", self.bias().ty())]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Var) -> Result<Var> {
        let parameters = self.parameter_types().to_vec();
        parametric_forward(self, Op::Linear { bias: true }, x, &self.params, parameters)
    }

    fn local_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("weight", self.weight()), ("bias", self.bias())]
    }

    fn extra_repr(&self) -> String {
        format!(
            "in_features={}, out_features={}, bias=true",
            self.in_features, self.out_features
        )
    }
}

impl fmt::Display for Linear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

impl fmt::Debug for Linear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
