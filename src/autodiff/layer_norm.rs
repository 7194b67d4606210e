//! Vector-Jacobian products of layer normalization, ops of their own whose definition is the
//! interpreter's (`interp::layer_norm`, PyTorch's `layer_norm_backward`):
//!
//! ```text
//! y = layer_norm(x, w, b):
//!     dx = layer_norm_input_grad(g, x, w)
//!     dw = layer_norm_weight_grad(g, x)
//!     db = sum of g over the leading (not normalized) dimensions
//! ```

use super::{Gradients, Site};
use crate::error::Result;
use crate::graph::{Builder, LayerNorm, Op};

/// The gradients of a layer normalization (operands `x(, weight(, bias))`).
pub(super) fn layer_norm(
    b: &mut Builder,
    ln: &LayerNorm,
    at: Site,
    names: &[Option<String>],
) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let mut out = vec![None; x.len()];
    if let Some(name) = names[0].as_deref() {
        let mut operands = vec![g, x[0]];
        operands.extend(ln.weight.then(|| x[1]));
        // The gradients' attributes say only what their operands are: a weight, no bias.
        let grad = LayerNorm {
            bias: false,
            ..ln.clone()
        };
        out[0] = Some(b.node(name, Op::LayerNormInputGrad(grad), &operands)?);
    }
    if let Some(name) = names.get(1).and_then(|n| n.as_deref()) {
        let grad = LayerNorm {
            weight: false,
            bias: false,
            ..ln.clone()
        };
        out[1] = Some(b.node(name, Op::LayerNormWeightGrad(grad), &[g, x[0]])?);
    }
    if let Some(name) = names.get(2).and_then(|n| n.as_deref()) {
        // The leading dimensions; with none, the bias's gradient is `g` itself (a `sum` over
        // no axes would sum over every axis).
        let leading = b.shape(g).rank() - ln.rank();
        out[2] = Some(if leading == 0 {
            b.reshape(
                name,
                g,
                &crate::graph::Shape::new(ln.normalized_shape.clone()),
            )?
        } else {
            b.sum(name, g, (0..leading as i64).collect(), false)?
        });
    }
    Ok(out)
}
