//! Vector-Jacobian products of convolutions and pools, each an op of its own whose definition
//! is the interpreter's (`interp::conv`, `interp::pool`):
//!
//! ```text
//! conv   y = conv(x, W) + b:  dx = conv_input_grad(g, W, x),  dW = conv_weight_grad(g, x, W),
//!                             db = sum of g over all but the channel dimension
//! pool   y = pool(x):         dx = pool_grad(g, x)   (max: to each window's maximum alone)
//! adaptive average pool:      dx = adaptive_avg_pool_grad(g, x)
//! ```

use super::{Gradients, Site};
use crate::error::Result;
use crate::graph::{Builder, Conv, Op, Pool};

/// The gradients of a convolution (operands `x = [input, weight(, bias)]`).
pub(super) fn conv(
    b: &mut Builder,
    conv: &Conv,
    at: Site,
    names: &[Option<String>],
) -> Result<Gradients> {
    let Site { x, g, .. } = at;
    let (input, weight) = (x[0], x[1]);
    let grad_conv = Conv {
        bias: false,
        ..conv.clone()
    };
    let mut out = vec![None; x.len()];
    if let Some(name) = names[0].as_deref() {
        let op = Op::ConvInputGrad(grad_conv.clone());
        out[0] = Some(b.node(name, op, &[g, weight, input])?);
    }
    if let Some(name) = names[1].as_deref() {
        let op = Op::ConvWeightGrad(grad_conv);
        out[1] = Some(b.node(name, op, &[g, input, weight])?);
    }
    if let Some(name) = names.get(2).and_then(|n| n.as_deref()) {
        // Every dimension but the channels': (N, C, ...) or (C, ...).
        let rank = b.shape(g).rank();
        let channel = rank - conv.spatial() - 1;
        let axes = (0..rank as i64).filter(|&a| a != channel as i64).collect();
        out[2] = Some(b.sum(name, g, axes, false)?);
    }
    Ok(out)
}

/// The gradient of a pool with respect to its input.
pub(super) fn pool(
    b: &mut Builder,
    pool: &Pool,
    at: Site,
    name: &str,
) -> Result<crate::graph::NodeId> {
    b.node(name, Op::PoolGrad(pool.clone()), &[at.g, at.x[0]])
}

/// The gradient of adaptive average pooling with respect to its input.
pub(super) fn adaptive_avg_pool(
    b: &mut Builder,
    output: &[usize],
    at: Site,
    name: &str,
) -> Result<crate::graph::NodeId> {
    let op = Op::AdaptiveAvgPoolGrad {
        output: output.to_vec(),
    };
    b.node(name, op, &[at.g, at.x[0]])
}
