//! [`CompiledStep`]: a compiled update graph with its buffers, run again and again on one
//! parameter store.
//!
//! Parameters and optimizer state are updated **by swapping buffers**: the compiled graph
//! writes each new value into a preallocated output tensor ([`CompiledGraph::run_into`]),
//! and the step then swaps that tensor with the store's entry (`std::mem::swap` of two
//! `Tensor`s, three pointers each). The store then holds the new values and the step holds
//! the old buffers, which the next run overwrites: no parameter is copied and no
//! parameter-sized buffer is allocated after the first run. (Inputs are copied into the
//! step's own input tensors, and the compiled graph allocates its arena of intermediates per
//! run.)

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::optim::{Optimizer, SCALAR_PREFIX, Updated};
use crate::rng::Generator;
use crate::runtime::{CompiledGraph, ParameterStore};
use crate::tensor::Tensor;

/// A compiled graph whose outputs are some results (a loss) followed by new values of store
/// entries ([`crate::optim::add_updates`]), with the buffers its runs reuse.
pub struct CompiledStep {
    compiled: Arc<CompiledGraph>,
    inputs: BTreeMap<String, Tensor>,
    outputs: Vec<(String, Tensor)>,
    updated: Vec<Updated>,
    /// The position of the first update among the outputs; earlier ones are results.
    first_update: usize,
}

impl CompiledStep {
    /// Wraps `compiled`, whose outputs have to end with the `updated` entries' outputs in
    /// order (as [`crate::optim::add_updates`] adds them); [`Error::OutputMismatch`] names
    /// the first that does not.
    pub fn new(compiled: Arc<CompiledGraph>, updated: Vec<Updated>) -> Result<CompiledStep> {
        let graph = compiled.graph();
        let outputs: Vec<(String, Tensor)> = (graph.outputs().iter())
            .map(|o| Ok((o.name.clone(), Tensor::zeros(&graph[o.node].ty)?)))
            .collect::<Result<_>>()?;
        let first_update = outputs.len().saturating_sub(updated.len());
        for (k, update) in updated.iter().enumerate() {
            let index = first_update + k;
            let got = outputs.get(index).map(|(name, _)| name.as_str());
            if got != Some(update.output.as_str()) {
                return Err(Error::OutputMismatch {
                    index,
                    expected: format!("the update of {}", update.entry),
                    got: got.unwrap_or("nothing").to_string(),
                });
            }
        }
        Ok(CompiledStep {
            compiled,
            inputs: BTreeMap::new(),
            outputs,
            updated,
            first_update,
        })
    }

    /// The compiled graph.
    pub fn compiled(&self) -> &CompiledGraph {
        &self.compiled
    }

    /// The store entries each run updates, with the outputs holding their new values.
    pub fn updated(&self) -> &[Updated] {
        &self.updated
    }

    /// Runs one step: binds `feed` (the graph's inputs other than the optimizer's scalars)
    /// and `optimizer`'s scalars for its next step, runs the graph on `store` (claiming one
    /// generator step in train mode), swaps every new value into `store` and counts the
    /// optimizer's step. Returns the results before the updates (the loss).
    ///
    /// `store` has to hold every parameter and state entry
    /// ([`crate::optim::init_state`]). On an error the store and the optimizer are unchanged.
    pub fn run(
        &mut self,
        generator: &mut Generator,
        store: &mut ParameterStore,
        optimizer: &mut dyn Optimizer,
        feed: &[(&str, &Tensor)],
    ) -> Result<&[(String, Tensor)]> {
        for &(name, value) in feed {
            self.bind(name, value);
        }
        for (name, value) in optimizer.step_scalars(optimizer.steps()) {
            self.bind(&format!("{SCALAR_PREFIX}{name}"), &Tensor::scalar(value));
        }
        (self.compiled).run_into(generator, &self.inputs, store, &mut self.outputs)?;
        for (update, (_, value)) in self
            .updated
            .iter()
            .zip(&mut self.outputs[self.first_update..])
        {
            let entry = (store.get_mut(&update.entry))
                .expect("invariant: the run checked that the store holds every parameter");
            std::mem::swap(entry, value);
        }
        optimizer.set_steps(optimizer.steps() + 1);
        Ok(&self.outputs[..self.first_update])
    }

    /// Binds an input: shares `value`'s buffer (a reference count, no copy; a wrong type is
    /// reported by the run, naming the input).
    fn bind(&mut self, name: &str, value: &Tensor) {
        match self.inputs.get_mut(name) {
            Some(bound) => *bound = value.clone(),
            None => {
                self.inputs.insert(name.to_string(), value.clone());
            }
        }
    }
}
