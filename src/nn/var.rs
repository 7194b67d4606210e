//! [`Var`]: the value that flows through modules, either a concrete tensor (eager execution)
//! or a handle to a node of a graph being traced, like a JAX tracer.
//!
//! Cloning a `Var` clones a handle, not the data, in both forms (eager values share one
//! reference-counted tensor, as PyTorch tensors share storage). In-place calls therefore
//! require the only handle to a value: writing through one handle while another still reads
//! the value would be a hidden write, which [`crate::Error::UnsafeInplace`] refuses.
//!
//! A `Var` belongs to the thread that made it (the handles are `Rc`s); move its tensor
//! ([`Var::into_tensor`]) to share results across threads.

use std::fmt;
use std::rc::Rc;

use super::trace::TracedNode;
use crate::error::{Error, Result};
use crate::graph::{Shape, TensorType};
use crate::tensor::Tensor;

/// A concrete tensor or a traced graph node; see the module docs.
#[derive(Clone)]
pub struct Var {
    pub(crate) repr: Repr,
}

/// The two forms of a [`Var`].
#[derive(Clone)]
pub(crate) enum Repr {
    /// A value computed now.
    Eager(Rc<Tensor>),
    /// A node of a trace in progress.
    Traced(Rc<TracedNode>),
}

impl Var {
    /// A concrete value.
    pub fn new(tensor: Tensor) -> Var {
        Var {
            repr: Repr::Eager(Rc::new(tensor)),
        }
    }

    pub(crate) fn traced(node: TracedNode) -> Var {
        Var::from_node(Rc::new(node))
    }

    /// Another handle to a traced node.
    pub(crate) fn from_node(node: Rc<TracedNode>) -> Var {
        Var {
            repr: Repr::Traced(node),
        }
    }

    /// The element type and shape.
    pub fn ty(&self) -> TensorType {
        match &self.repr {
            Repr::Eager(t) => t.ty(),
            Repr::Traced(node) => node.ty(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.ty().shape
    }

    /// True for a handle to a node of a graph being traced.
    pub fn is_traced(&self) -> bool {
        match &self.repr {
            Repr::Eager(_) => false,
            Repr::Traced(_) => true,
        }
    }

    /// The concrete tensor; [`Error::NotConcrete`] for a traced value.
    pub fn tensor(&self) -> Result<&Tensor> {
        match &self.repr {
            Repr::Eager(t) => Ok(t),
            Repr::Traced(node) => Err(Error::NotConcrete { node: node.name() }),
        }
    }

    /// The concrete tensor, without a copy if this is its only handle.
    pub fn into_tensor(self) -> Result<Tensor> {
        match self.repr {
            Repr::Eager(t) => Ok(Rc::try_unwrap(t).unwrap_or_else(|shared| (*shared).clone())),
            Repr::Traced(node) => Err(Error::NotConcrete { node: node.name() }),
        }
    }

    /// True if no other handle shares this value, so writing into it is invisible elsewhere.
    pub(crate) fn is_unique(&self) -> bool {
        match &self.repr {
            Repr::Eager(t) => Rc::strong_count(t) == 1,
            Repr::Traced(node) => Rc::strong_count(node) == 1,
        }
    }
}

impl From<Tensor> for Var {
    fn from(tensor: Tensor) -> Var {
        Var::new(tensor)
    }
}

impl fmt::Display for Var {
    /// A concrete value prints as its tensor; a traced one as `%fc1: f32[32, 256] (traced)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Eager(t) => write!(f, "{t}"),
            Repr::Traced(node) => write!(f, "%{}: {} (traced)", node.name(), node.ty()),
        }
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Eager(t) => f.debug_tuple("Var::Eager").field(&t.ty()).finish(),
            Repr::Traced(node) => f.debug_tuple("Var::Traced").field(&node.name()).finish(),
        }
    }
}
