//! How each op carries a leading dimension of Monte Carlo samples: the op facts behind
//! [`crate::passes::batch_samples()`] (which rewrites a graph to compute N samples at once) and
//! `plan::samples` (which runs the per-sample kernels of such a graph a chunk of samples at a
//! time). The two matches here are the only places that list ops for samples.

use super::Op;
use super::dropout::Dropout;

/// How a node of a graph of samples reads its operands, for [`batched`] and [`separable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operands {
    /// Operands broadcast against each other (element-wise ops, products, `expand`): a
    /// per-sample operand is brought to the output's rank, its samples in dimension 0.
    Broadcast,
    /// Operand 0 alone may vary by sample; the others (a linear's weight and bias) may not.
    FirstOnly,
    /// One operand, of any rank, with its samples in dimension 0.
    Single,
}

/// `op` for values with a leading dimension of `samples`, given its operand 0's rank before
/// batching (`rank`), and how it reads its operands; or why no sample dimension passes it.
/// The op computes sample `s` of its value from sample `s` of its operands with exactly the
/// operations the original computes, so every sample is the original's value.
pub fn batched(op: &Op, samples: usize, rank: usize) -> Result<(Op, Operands), &'static str> {
    // A valid axis of a rank-`rank` operand, moved past the sample dimension.
    let shift = |axis: i64| {
        if axis < 0 {
            axis + rank as i64 + 1
        } else {
            axis + 1
        }
    };
    Ok(match op {
        Op::Unary(_) | Op::Binary(_) | Op::MatMul { .. } | Op::Where => {
            (op.clone(), Operands::Broadcast)
        }
        Op::Expand { shape } => {
            let shape = [samples].into_iter().chain(shape.iter().copied()).collect();
            (Op::Expand { shape }, Operands::Broadcast)
        }
        Op::Linear { .. } => (op.clone(), Operands::FirstOnly),
        Op::Reshape { shape } => {
            let shape = [samples as i64].into_iter().chain(shape.iter().copied());
            (
                Op::Reshape {
                    shape: shape.collect(),
                },
                Operands::Single,
            )
        }
        Op::Transpose { perm } => {
            let perm = [0].into_iter().chain(perm.iter().map(|&d| d + 1)).collect();
            (Op::Transpose { perm }, Operands::Single)
        }
        Op::Reduce { op, axes, keepdim } => {
            let axes: Vec<i64> = if axes.is_empty() {
                (1..=rank as i64).collect()
            } else {
                axes.iter().map(|&a| shift(a)).collect()
            };
            if axes.is_empty() {
                return Err("it reduces a scalar over no axis");
            }
            let op = Op::Reduce {
                op: *op,
                axes,
                keepdim: *keepdim,
            };
            (op, Operands::Single)
        }
        Op::Softmax { axis } => (Op::Softmax { axis: shift(*axis) }, Operands::Single),
        Op::LogSoftmax { axis } => (Op::LogSoftmax { axis: shift(*axis) }, Operands::Single),
        Op::Dropout(d) => (Op::Dropout(sampled(d)?), Operands::Single),
        Op::DropoutMask(d) => (Op::DropoutMask(sampled(d)?), Operands::Single),
        // Unbatched, (C, ...) with the samples in front is a batch of images; batched, a
        // second batch dimension does not fit.
        Op::Conv(c) if rank == c.spatial() + 1 => (op.clone(), Operands::FirstOnly),
        Op::Pool(p) if rank == p.spatial() + 1 => (op.clone(), Operands::Single),
        Op::AdaptiveAvgPool { output } if rank == output.len() + 1 => {
            (op.clone(), Operands::Single)
        }
        Op::Conv(_) | Op::Pool(_) | Op::AdaptiveAvgPool { .. } => {
            return Err("a batched (N, C, ...) input has no room for a dimension of samples");
        }
        Op::CrossEntropy => {
            return Err(
                "a loss takes logits of rank 2 at most; batch the forward graph without it",
            );
        }
        Op::DropoutGrad(_)
        | Op::CrossEntropyGrad
        | Op::ConvInputGrad(_)
        | Op::ConvWeightGrad(_)
        | Op::PoolGrad(_)
        | Op::AdaptiveAvgPoolGrad { .. } => {
            return Err("gradients are not drawn in Monte Carlo samples");
        }
        // Its channels are dimension 1 of [N, C, ...]: a dimension of samples in front would
        // take their place.
        Op::BatchNorm(_) | Op::BatchNormRunning(_) => {
            return Err("batch norm's (N, C, ...) input has no room for a dimension of samples");
        }
        Op::BatchNormInputGrad(_) | Op::BatchNormWeightGrad(_) => {
            return Err("gradients are not drawn in Monte Carlo samples");
        }
        // Samples of indices in front look up rows of the one table.
        Op::Embedding(_) => (op.clone(), Operands::FirstOnly),
        Op::EmbeddingGrad(_) => {
            return Err("gradients are not drawn in Monte Carlo samples");
        }
        // Each row is normalized over the last dimensions alone: samples in front are rows.
        Op::LayerNorm(_) => (op.clone(), Operands::FirstOnly),
        Op::LayerNormInputGrad(_) | Op::LayerNormWeightGrad(_) => {
            return Err("gradients are not drawn in Monte Carlo samples");
        }
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Tril { .. } => {
            return Err("a leaf reads no operand");
        }
    })
}

/// The dropout drawing each sample at a step of its own.
fn sampled(d: &Dropout) -> Result<Dropout, &'static str> {
    if d.sample_steps {
        return Err("it draws samples already");
    }
    Ok(Dropout {
        sample_steps: true,
        ..d.clone()
    })
}

/// For a node of a graph of `samples` whose value has them in dimension 0: how it reads its
/// operands if it computes its sample `s` from sample `s` of them alone, or `None` if it
/// mixes samples (a reduction, softmax or transpose over dimension 0, a loss). `rank` is its
/// operand 0's rank; per-sample operands are checked by the caller as [`Operands`] says.
pub fn separable(op: &Op, rank: usize) -> Option<Operands> {
    let not_samples = |axis: i64| axis != 0 && axis != -(rank as i64);
    match op {
        Op::Unary(_) | Op::Binary(_) | Op::MatMul { .. } | Op::Expand { .. } | Op::Where => {
            Some(Operands::Broadcast)
        }
        Op::Linear { .. } => Some(Operands::FirstOnly),
        // Batched (N, C, ...): image n from image n alone; unbatched, dimension 0 is the
        // channels, which a convolution mixes and a pool does not.
        Op::Conv(c) => (rank == c.spatial() + 2).then_some(Operands::FirstOnly),
        Op::Pool(_) | Op::AdaptiveAvgPool { .. } => Some(Operands::Single),
        // Gradients are no part of a graph of samples (batch_samples refuses them); a weight
        // gradient sums over the images.
        Op::ConvInputGrad(_)
        | Op::ConvWeightGrad(_)
        | Op::PoolGrad(_)
        | Op::AdaptiveAvgPoolGrad { .. } => None,
        Op::Dropout(_) | Op::DropoutGrad(_) | Op::DropoutMask(_) | Op::Reshape { .. } => {
            Some(Operands::Single)
        }
        Op::Transpose { perm } => (perm.first() == Some(&0)).then_some(Operands::Single),
        Op::Reduce { axes, .. } => {
            (!axes.is_empty() && axes.iter().all(|&a| not_samples(a))).then_some(Operands::Single)
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            not_samples(*axis).then_some(Operands::Single)
        }
        // Train-mode statistics are over the whole batch (and the compiler rewrites every
        // batch-norm node before planning).
        Op::CrossEntropy
        | Op::CrossEntropyGrad
        | Op::BatchNorm(_)
        | Op::BatchNormRunning(_)
        | Op::BatchNormInputGrad(_)
        | Op::BatchNormWeightGrad(_) => None,
        Op::LayerNorm(_) => Some(Operands::FirstOnly),
        Op::Embedding(_) => Some(Operands::FirstOnly),
        // A table gradient sums over every position.
        Op::EmbeddingGrad(_) => None,
        // A weight gradient sums over the rows.
        Op::LayerNormInputGrad(_) | Op::LayerNormWeightGrad(_) => None,
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Tril { .. } => {
            Some(Operands::Single)
        }
    }
}
