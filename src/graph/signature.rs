//! A graph's signature: the leaves a run binds by name (inputs and parameters), and the one
//! check that a run's values fit them, which the interpreter and compiled graphs share.

use super::{Graph, Leaf};
use crate::error::{Error, Result};
use crate::tensor::check_length;
use crate::types::TensorType;

/// What the check needs of a bound value: its type and how many elements it holds.
pub(crate) struct Bound {
    /// The value's type.
    pub ty: TensorType,
    /// Its elements, which have to be as many as its shape says.
    pub len: usize,
}

impl Graph {
    /// Checks that every input and parameter has a value (`value_of(leaf, name)`) of its
    /// declared type holding as many elements as its shape; the leaves in topological order,
    /// the first failure returned ([`Error::MissingValue`], [`Error::ValueType`],
    /// [`Error::DataLength`]).
    pub(crate) fn check_bindings(
        &self,
        value_of: impl Fn(Leaf, &str) -> Option<Bound>,
    ) -> Result<()> {
        for id in self.topo_order() {
            let node = &self[id];
            let Some(leaf) = node.op.leaf().filter(|l| l.is_bound()) else {
                continue;
            };
            let what = leaf.name();
            let Some(value) = value_of(leaf, &node.name) else {
                return Err(Error::MissingValue {
                    what,
                    name: node.name.clone(),
                });
            };
            if value.ty != node.ty {
                return Err(Error::ValueType {
                    what,
                    name: node.name.clone(),
                    expected: node.ty.to_string(),
                    got: value.ty.to_string(),
                });
            }
            check_length(&value.ty.shape, value.len)?;
        }
        Ok(())
    }
}
