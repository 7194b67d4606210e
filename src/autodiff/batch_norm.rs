//! Vector-Jacobian products of batch normalization, ops of their own whose definition is
//! the interpreter's (`interp::batch_norm`) in the graph's mode (PyTorch's
//! `batch_norm_backward`: through the batch statistics in train mode, the affine map in eval
//! mode):
//!
//! ```text
//! y = batch_norm(x, running_mean, running_var, w, b):
//!     dx = batch_norm_input_grad(g, x, running_mean, running_var, w)
//!     dw = batch_norm_weight_grad(g, x, running_mean, running_var)
//!     db = sum of g over all but the channel dimension
//! ```
//!
//! The running statistics get no gradient (PyTorch updates them outside autograd), and the
//! running-statistic nodes pass none to their operands.

use super::{Gradients, Site};
use crate::error::Result;
use crate::graph::{BatchNorm, Builder, Op};

/// The gradients of a batch normalization (operands `x, running_mean, running_var(, weight,
/// bias)`).
pub(super) fn batch_norm(
    b: &mut Builder,
    bn: &BatchNorm,
    at: Site,
    names: &[Option<String>],
) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let stats = [x[0], x[1], x[2]];
    let mut out = vec![None; x.len()];
    if let Some(name) = names[0].as_deref() {
        let mut operands = vec![g];
        operands.extend(stats);
        operands.extend(bn.affine.then(|| x[3]));
        out[0] = Some(b.node(name, Op::BatchNormInputGrad(bn.clone()), &operands)?);
    }
    if let Some(name) = names.get(3).and_then(|n| n.as_deref()) {
        let op = Op::BatchNormWeightGrad(BatchNorm {
            affine: false,
            ..bn.clone()
        });
        out[3] = Some(b.node(name, op, &[g, stats[0], stats[1], stats[2]])?);
    }
    if let Some(name) = names.get(4).and_then(|n| n.as_deref()) {
        // Every dimension but the channels' (1).
        let rank = b.shape(g).rank() as i64;
        let axes = (0..rank).filter(|&a| a != 1).collect();
        out[4] = Some(b.sum(name, g, axes, false)?);
    }
    Ok(out)
}
