//! The parameter store: named parameter values that live outside compiled graphs, so a
//! train-mode and an eval-mode compilation of one model read the same buffers, and a training
//! step can update them in place between runs.

use std::collections::BTreeMap;

use crate::graph::{Graph, Leaf};
use crate::tensor::Tensor;

/// Parameter values by node name. A run borrows the store; entries that a graph does not use
/// are ignored, so one store serves every graph of a model.
#[derive(Clone, Debug, Default)]
pub struct ParameterStore {
    values: BTreeMap<String, Tensor>,
}

impl ParameterStore {
    /// An empty store.
    pub fn new() -> ParameterStore {
        ParameterStore::default()
    }

    /// Splits interpreter-style values (every input and parameter by name, as
    /// [`crate::interp::run`] takes them) into a compiled graph's inputs and a store holding
    /// the values that name parameters of `graph`.
    pub fn split(
        graph: &Graph,
        values: BTreeMap<String, Tensor>,
    ) -> (BTreeMap<String, Tensor>, ParameterStore) {
        let (params, inputs) = values.into_iter().partition(|(name, _)| {
            (graph.find(name)).is_some_and(|id| graph[id].op.leaf() == Some(Leaf::Parameter))
        });
        (inputs, ParameterStore { values: params })
    }

    /// Sets the value of `name`, returning the previous one.
    pub fn insert(&mut self, name: impl Into<String>, value: Tensor) -> Option<Tensor> {
        self.values.insert(name.into(), value)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.values.get(name)
    }

    /// The value of `name`, to update in place.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.values.get_mut(name)
    }

    /// Removes and returns the value of `name`.
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        self.values.remove(name)
    }

    /// Every entry in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl FromIterator<(String, Tensor)> for ParameterStore {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> ParameterStore {
        ParameterStore {
            values: iter.into_iter().collect(),
        }
    }
}
