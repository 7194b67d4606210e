//! [`Loss`]: the losses a training step can add to a traced forward graph.

use std::fmt;

use crate::error::{Error, Result, TypeError};
use crate::graph::{Builder, NodeId, Op, TensorType};

/// A loss over a model's output `y` and the targets, reduced by the mean as PyTorch's
/// defaults do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loss {
    /// `torch.nn.functional.cross_entropy(y, targets)`: `y` holds logits `[N, C]`, the
    /// targets are `i32` class indices `[N]` in `0..C`.
    CrossEntropy,
    /// `torch.nn.functional.mse_loss(y, targets)`: `mean((y - targets)^2)` over every element,
    /// targets of `y`'s type.
    Mse,
}

impl Loss {
    /// The name in messages and cache keys: `cross_entropy` or `mse`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        }
    }

    /// Adds with `b` an input `targets` of type `targets` and the loss of `y` against it,
    /// named `loss` (`loss.diff`, `loss.square` for its parts). A target type that does not
    /// fit is a type error naming the node
    /// (`cross_entropy loss: operand 1 has to be i32, but is f32`).
    pub fn add(self, b: &mut Builder, y: NodeId, targets: &TensorType) -> Result<NodeId> {
        let t = b.input("targets", targets.clone())?;
        match self {
            Loss::CrossEntropy => b.node("loss", Op::CrossEntropy, &[y, t]),
            Loss::Mse => {
                let diff = b.sub("loss.diff", y, t)?;
                let y_ty = &b.graph()[y].ty;
                if b.graph()[diff].ty != *y_ty {
                    // Broadcasting would average over a larger tensor than y; PyTorch warns
                    // and broadcasts, we refuse.
                    return Err(Error::Type {
                        node: "loss.diff".into(),
                        op: "sub",
                        detail: TypeError::Targets {
                            logits: y_ty.shape.clone(),
                            targets: targets.shape.clone(),
                        },
                    });
                }
                let square = b.mul("loss.square", diff, diff)?;
                b.mean("loss", square, Vec::new(), false)
            }
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
