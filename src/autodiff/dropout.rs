//! The vector-Jacobian product of the dropout family: `dropout_grad` with the forward
//! dropout's attributes and stream, so it recomputes the very same mask (seed, stream, step)
//! instead of reading a saved one: `keep ? g * s : +0.0`, `s` the keep-scale (zeroing kinds)
//! or the alpha coefficient `a` (alpha kinds). A `dropout_grad` is linear in its operand, so
//! its own gradient is the same op again.

use super::Site;
use crate::error::Result;
use crate::graph::{Builder, Dropout, NodeId, Op};

/// The gradient `name` of the dropout (or dropout gradient) with attributes `d`.
pub(super) fn dropout(b: &mut Builder, d: &Dropout, at: Site, name: &str) -> Result<NodeId> {
    // The gradient has a buffer of its own: an in-place forward dropout says nothing about it.
    let grad = Dropout {
        inplace: false,
        ..d.clone()
    };
    b.node(name, Op::DropoutGrad(grad), &[at.g])
}
