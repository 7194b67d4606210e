//! Layer normalization (`torch.nn.functional.layer_norm`): its attributes, its shape rule and
//! its definition.
//!
//! An input `x: [..., *normalized_shape]` is normalized over its last
//! `k = normalized_shape.len()` dimensions: each of its `rows` (the product of the leading
//! dimensions) is the `n = prod(normalized_shape)` elements `xs` in row-major order, with
//!
//! ```text
//! first = (0 + xs[0] + xs[1] + ...) / n
//! mean  = first + (0 + (xs[0] - first) + (xs[1] - first) + ...) / n
//! c[i]  = xs[i] - mean
//! var   = (0 + c[0] * c[0] + c[1] * c[1] + ...) / n        (biased, as PyTorch)
//! rstd  = 1 / sqrt(var + eps)
//! y[i]  = c[i] * rstd * weight[i] + bias[i]                (left to right)
//! ```
//!
//! each operation one f32 rounding (no FMA), `eps` rounded to f32. The mean is corrected once
//! (the corrected two-pass algorithm): `first` alone carries the rounding of `n` additions, so
//! a row of equal values would have `c != 0` and normalize to noise scaled by `rstd` (up to
//! `1 / sqrt(eps)`), where PyTorch's Welford moments give exactly the bias; with the
//! correction such a row's mean is its value and `y = bias`. Without `weight` (PyTorch's
//! `elementwise_affine = False`) `y = c * rstd`, and with a weight but no bias (`bias = False`)
//! `y = c * rstd * weight`. The mode does not matter: layer norm has no running statistics.
//!
//! The gradients (PyTorch's `layer_norm_backward`), with `xhat = c * rstd` and
//! `gw = g * weight` (`g` without a weight), per row:
//!
//! ```text
//! dx = (gw - (0 + gw[0] + ...) / n - xhat * ((0 + gw[0] * xhat[0] + ...) / n)) * rstd
//! dweight[i] = 0 + g[row 0][i] * xhat[row 0][i] + g[row 1][i] * xhat[row 1][i] + ...
//! dbias[i]   = a `sum` of g over the leading dimensions
//! ```
//!
//! The interpreter computes exactly these operations; the compiler's
//! `passes::expand_layer_norm` rewrites each layer-norm node into the same operations as
//! ordinary nodes (`sum` over the last `k` axes with `keepdim`, element-wise
//! `sub mul div add sqrt`), so compiled code computes the same bits.

use crate::error::TypeError;
use crate::types::Shape;

/// PyTorch's default `eps`.
pub const DEFAULT_EPS: f64 = 1e-5;

/// The attributes of a layer normalization (and of its gradients).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    /// The trailing dimensions normalized over (PyTorch's `normalized_shape`).
    pub normalized_shape: Vec<usize>,
    /// Added to the variance before its square root (PyTorch: `1e-5`).
    pub eps: f64,
    /// An operand `weight: normalized_shape` multiplies the normalized value
    /// (`elementwise_affine = True`).
    pub weight: bool,
    /// An operand `bias: normalized_shape` is added after the weight (only with a weight).
    pub bias: bool,
}

impl LayerNorm {
    /// PyTorch's defaults over `normalized_shape`: `eps = 1e-5`, a weight and a bias.
    pub fn new(normalized_shape: &[usize]) -> LayerNorm {
        LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps: DEFAULT_EPS,
            weight: true,
            bias: true,
        }
    }

    /// `eps` rounded to f32, as the definition adds it.
    pub fn eps_f32(&self) -> f32 {
        self.eps as f32
    }

    /// The number of trailing dimensions normalized over.
    pub fn rank(&self) -> usize {
        self.normalized_shape.len()
    }

    /// The axes normalized over in an input of rank `rank` (the last [`LayerNorm::rank`]).
    pub fn axes(&self, rank: usize) -> Vec<i64> {
        (rank - self.rank()..rank).map(|a| a as i64).collect()
    }

    /// The elements of one row: `prod(normalized_shape)`.
    pub fn row_len(&self) -> usize {
        self.normalized_shape.iter().product()
    }

    /// Checks the attributes and that `x` ends in `normalized_shape`, with PyTorch's message.
    pub fn check_input(&self, op: &'static str, x: &Shape) -> Result<(), TypeError> {
        let fail = |reason: String| Err(TypeError::LayerNorm { op, reason });
        if self.normalized_shape.is_empty() {
            return fail("normalized_shape has to name at least one dimension, but is []".into());
        }
        if self.bias && !self.weight {
            return fail("a bias needs a weight (elementwise_affine)".into());
        }
        let dims = x.dims();
        let k = self.rank();
        if dims.len() < k || dims[dims.len() - k..] != self.normalized_shape[..] {
            return fail(format!(
                "given normalized_shape = {:?}, the input has to be [*, {}], but is {x}",
                self.normalized_shape,
                list(&self.normalized_shape)
            ));
        }
        Ok(())
    }

    /// Checks that `value` (named `what`) has `normalized_shape`.
    pub fn check_affine(
        &self,
        op: &'static str,
        what: &str,
        value: &Shape,
    ) -> Result<(), TypeError> {
        if value.dims() != self.normalized_shape {
            return Err(TypeError::LayerNorm {
                op,
                reason: format!(
                    "{what} has to be [{}] (the normalized shape), but is {value}",
                    list(&self.normalized_shape)
                ),
            });
        }
        Ok(())
    }
}

/// `a, b, c`.
fn list(dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
    dims.join(", ")
}
