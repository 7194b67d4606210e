//! Running a compiled graph: check the values, claim a step, fill the address table, run the
//! generated phases (on one thread or several, [`super::threads`]), turn their status into a
//! typed error, and fill the outputs that were not written in place (a leaf's buffer is
//! shared, not copied).
//!
//! The hot path allocates nothing: the arena and the table live in a reused
//! [`super::workspace`], and values that fit are checked without allocating (the checks that
//! name a failure run only when something does not fit). So `run_into` with preallocated
//! outputs, on one thread, allocates nothing and never waits on a lock.
//!
//! A graph whose in-place dropouts write over graph inputs runs only through
//! [`CompiledGraph::run_mut`], which borrows the inputs mutably; `run` and `run_into` refuse
//! it before claiming a step, so the caller's tensors are never written behind a shared
//! borrow.

use std::collections::BTreeMap;

use super::workspace::Workspace;
use super::{CompiledGraph, ParameterStore, bind};
use crate::error::{Error, Result};
use crate::graph::{DType, Leaf, Mode, Op, Shape};
use crate::jit::Status;
use crate::plan::memory::Home;
use crate::rng::Generator;
use crate::tensor::{Tensor, TensorData};

impl CompiledGraph {
    /// Runs the graph once and returns its outputs in declaration order. `inputs` binds every
    /// input by node name, `params` every parameter (it may hold more). A train- or mc-mode
    /// graph claims one step from `generator` per run (one per sample for a graph of
    /// [`crate::passes::batch_samples()`]), exactly like the interpreter
    /// ([`crate::interp::run`]); an eval-mode one does not touch it. A run rejected before
    /// execution claims no step.
    ///
    /// Errors: [`Error::UnknownNode`], [`Error::NotBindable`] or [`Error::ParameterAsInput`]
    /// for an input binding that names no input, [`Error::MissingValue`],
    /// [`Error::ValueType`], [`Error::StepsExhausted`], [`Error::TargetOutOfRange`], [`Error::IndexOutOfRange`], and
    /// [`Error::InputOverwritten`] for a graph that writes over an input (use
    /// [`CompiledGraph::run_mut`]).
    pub fn run(
        &self,
        generator: &mut Generator,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
    ) -> Result<Vec<(String, Tensor)>> {
        bind::check_values(&self.source, inputs, params)?;
        self.refuse_input_writes()?;
        let mut outputs = self.fresh_outputs()?;
        let addresses = |name: &str| read_only(&inputs[name]);
        self.execute(generator, &addresses, params, &mut outputs)?;
        self.copy_outputs(inputs, params, &mut outputs);
        Ok(outputs)
    }

    /// Like [`CompiledGraph::run`], for graphs whose in-place dropouts write over inputs
    /// ([`CompiledGraph::overwritten_inputs`]): those inputs hold the dropouts' results
    /// afterwards (partial results after a run-time error; untouched after an error found
    /// before execution). Other inputs are only read, so it runs any graph.
    pub fn run_mut(
        &self,
        generator: &mut Generator,
        inputs: &mut BTreeMap<String, Tensor>,
        params: &ParameterStore,
    ) -> Result<Vec<(String, Tensor)>> {
        bind::check_values(&self.source, inputs, params)?;
        let mut outputs = self.fresh_outputs()?;
        let written = self.overwritten_inputs();
        // The caller's other tensors that share an overwritten input's buffer keep their values.
        for name in &written {
            let value = inputs.get_mut(*name);
            value
                .expect("invariant: the values were checked")
                .unshare(true)?;
        }
        let addresses: BTreeMap<&str, *mut u8> = (inputs.iter_mut())
            .map(|(name, value)| {
                let address = if written.contains(&name.as_str()) {
                    writable(value)
                } else {
                    read_only(value)
                };
                (name.as_str(), address)
            })
            .collect();
        let addresses = |name: &str| addresses[name];
        self.execute(generator, &addresses, params, &mut outputs)?;
        self.copy_outputs(inputs, params, &mut outputs);
        Ok(outputs)
    }

    /// Like [`CompiledGraph::run`], writing into `outputs`, which must look like what `run`
    /// returns (same names and types in order; [`Error::OutputMismatch`] otherwise), e.g.
    /// the result of an earlier run. After a run-time error the outputs hold partial results.
    pub fn run_into(
        &self,
        generator: &mut Generator,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
        outputs: &mut [(String, Tensor)],
    ) -> Result<()> {
        // The checks that name the first failure allocate; a run whose values fit skips them.
        if !self.values_fit(inputs, params) {
            bind::check_values(&self.source, inputs, params)?;
        }
        if !self.outputs_fit(outputs) {
            bind::check_outputs(&self.program.graph, outputs)?;
        }
        self.refuse_input_writes()?;
        let addresses = |name: &str| read_only(&inputs[name]);
        self.execute(generator, &addresses, params, outputs)?;
        self.copy_outputs(inputs, params, outputs);
        Ok(())
    }

    /// The inputs a run writes over (in-place dropouts of graph inputs), in topological
    /// order: graphs with any need [`CompiledGraph::run_mut`].
    pub fn overwritten_inputs(&self) -> Vec<&str> {
        (self.program.memory.written_inputs.iter())
            .map(|w| self.program.graph[w.input].name.as_str())
            .collect()
    }

    fn refuse_input_writes(&self) -> Result<()> {
        match self.program.memory.written_inputs.first() {
            None => Ok(()),
            Some(write) => {
                let dropout = &self.program.graph[write.dropout];
                Err(Error::InputOverwritten {
                    input: self.program.graph[write.input].name.clone(),
                    node: dropout.name.clone(),
                    op: dropout.op.name(),
                })
            }
        }
    }

    fn fresh_outputs(&self) -> Result<Vec<(String, Tensor)>> {
        (self.program.graph.outputs().iter())
            .map(|o| {
                Ok((
                    o.name.clone(),
                    Tensor::zeros(&self.program.graph[o.node].ty)?,
                ))
            })
            .collect()
    }

    /// The run after the checks: `inputs` holds each input's buffer address by name.
    fn execute(
        &self,
        generator: &mut Generator,
        inputs: &dyn Fn(&str) -> *mut u8,
        params: &ParameterStore,
        outputs: &mut [(String, Tensor)],
    ) -> Result<()> {
        // Memory first: a run refused for want of it claims no step.
        let mut lent = self.workspace.lend()?;
        // Generated code writes these outputs whole: one that shares its buffer (a clone,
        // or a leaf handed out by a run) gets a fresh one, so no other tensor sees the writes.
        for slot in &self.program.memory.slots {
            if let Home::Output(k) = slot.home {
                outputs[k].1.unshare(false)?;
            }
        }
        let step = match self.mode {
            Mode::Train | Mode::Mc => generator.claim_run(self.program.steps_per_run)?,
            Mode::Eval => 0,
        };
        let workspace = lent.get();
        self.fill_table(workspace, inputs, params, outputs);
        let (table, seed) = (&workspace.table, generator.seed());
        let work = (&self.program.phases[..], &self.program.calls[..]);
        let status = (self.threads).run(&self.jit, work, table, seed, step);
        if status.code != 0 {
            return Err(self.runtime_error(status));
        }
        Ok(())
    }

    /// Fills the workspace's table with one buffer address per slot of the plan (as
    /// integers, so that threads may share it), in the workspace's arena.
    fn fill_table(
        &self,
        workspace: &mut Workspace,
        inputs: &dyn Fn(&str) -> *mut u8,
        params: &ParameterStore,
        outputs: &mut [(String, Tensor)],
    ) {
        let arena_base = workspace.arena.as_mut_ptr().cast::<u8>();
        let table = &mut workspace.table;
        table.clear();
        for slot in &self.program.memory.slots {
            let node = &self.program.graph[slot.owner()];
            let address = match &slot.home {
                Home::Input => inputs(node.name.as_str()),
                Home::Parameter => read_only(
                    params
                        .get(&node.name)
                        .expect("invariant: parameters were checked"),
                ),
                Home::Constant => read_only(constant(&node.op)),
                Home::Output(k) => writable(&mut outputs[*k].1),
                Home::Arena { offset } => arena_base.wrapping_add(*offset),
            };
            table.push(address.expose_provenance());
        }
    }

    /// True if `inputs` and `params` bind exactly what [`bind::check_values`] accepts, checked
    /// without allocating; false means that check must run (and name the first failure).
    fn values_fit(&self, inputs: &BTreeMap<String, Tensor>, params: &ParameterStore) -> bool {
        let mut bound_inputs = 0;
        for id in self.source.node_ids() {
            let node = &self.source[id];
            if !node.op.is_bound() {
                continue;
            }
            let value = if node.op.leaf() == Some(Leaf::Parameter) {
                params.get(&node.name)
            } else {
                bound_inputs += 1;
                inputs.get(&node.name)
            };
            if !value.is_some_and(|v| fits(v, node.ty.dtype, &node.ty.shape)) {
                return false;
            }
        }
        // Every input found, and no other key: each key names an input.
        bound_inputs == inputs.len()
    }

    /// True if `outputs` looks like what `run` returns ([`bind::check_outputs`]), checked
    /// without allocating.
    fn outputs_fit(&self, outputs: &[(String, Tensor)]) -> bool {
        let expected = self.program.graph.outputs();
        expected.len() == outputs.len()
            && (expected.iter().zip(outputs)).all(|(o, (name, tensor))| {
                let ty = &self.program.graph[o.node].ty;
                *name == o.name && fits(tensor, ty.dtype, &ty.shape)
            })
    }

    /// The typed error for a nonzero status.
    fn runtime_error(&self, status: Status) -> Error {
        let index = usize::try_from(status.code - 1).expect("invariant: error codes start at 1");
        let id = self.jit.error_node(index);
        let graph = &self.program.graph;
        let node = &graph[id];
        assert!(
            node.op.checked_indices().is_some(),
            "invariant: only ops with checked indices fail at run time"
        );
        let operands: Vec<_> = (graph.operands_of(id).into_iter())
            .map(|o| &graph[o].ty)
            .collect();
        let bound = node.op.index_bound(&operands);
        let position = status.details[0] as usize;
        node.op
            .index_error(&node.name, bound, status.details[1] as i32, position)
    }

    /// Fills the outputs that the generated code did not write in place. Leaves and their
    /// views are handed out as the leaf's buffer, shared (no copy: an eval forward whose
    /// dropouts are gone returns its input, as PyTorch's does); a further output of one
    /// buffer is copied, so that the next run does not find the first output's buffer shared.
    fn copy_outputs(
        &self,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
        outputs: &mut [(String, Tensor)],
    ) {
        for (i, output) in self.program.graph.outputs().iter().enumerate() {
            let slot = &self.program.memory.slots[self.program.memory.slot_of(output.node)];
            let name = &self.program.graph[slot.owner()].name;
            let shape = &self.program.graph[output.node].ty.shape;
            match &slot.home {
                Home::Output(k) if *k == i => {}
                Home::Output(k) => {
                    let first = outputs[*k].1.clone();
                    copy_data(&mut outputs[i].1, first.data());
                }
                Home::Input => outputs[i].1 = Tensor::sharing(shape, &inputs[name]),
                Home::Parameter => {
                    let value = params
                        .get(name)
                        .expect("invariant: parameters were checked");
                    outputs[i].1 = Tensor::sharing(shape, value);
                }
                Home::Constant => {
                    let value = constant(&self.program.graph[slot.owner()].op);
                    outputs[i].1 = Tensor::sharing(shape, value);
                }
                Home::Arena { .. } => {
                    panic!("invariant: a buffer holding an output lives in an output")
                }
            }
        }
    }
}

/// True if `value` has this element type and shape and holds that many elements.
fn fits(value: &Tensor, dtype: DType, shape: &Shape) -> bool {
    value.dtype() == dtype && value.shape() == shape && bind::len(value) == shape.numel()
}

/// The data of a constant node.
fn constant(op: &Op) -> &Tensor {
    let Op::Constant(tensor) = op else {
        panic!("invariant: a constant slot belongs to a constant node");
    };
    tensor
}

/// The address of a buffer generated code only reads.
fn read_only(tensor: &Tensor) -> *mut u8 {
    match tensor.data() {
        TensorData::F32(v) => v.as_ptr().cast_mut().cast(),
        TensorData::I32(v) => v.as_ptr().cast_mut().cast(),
        TensorData::Bool(v) => v.as_ptr().cast_mut().cast(),
    }
}

/// The address of a buffer generated code writes.
fn writable(tensor: &mut Tensor) -> *mut u8 {
    match tensor.dtype() {
        DType::F32 => (tensor
            .as_f32_mut()
            .expect("invariant: the dtype was just matched"))
        .as_mut_ptr()
        .cast(),
        DType::I32 => (tensor
            .as_i32_mut()
            .expect("invariant: the dtype was just matched"))
        .as_mut_ptr()
        .cast(),
        // Generated code stores only 0 or 1 into bool buffers (comparison results and copies
        // of bools), so the Vec<bool> stays valid.
        DType::Bool => (tensor
            .as_bool_mut()
            .expect("invariant: the dtype was just matched"))
        .as_mut_ptr()
        .cast(),
    }
}

fn copy_data(destination: &mut Tensor, source: &TensorData) {
    match (destination.dtype(), source) {
        (DType::F32, TensorData::F32(v)) => (destination
            .as_f32_mut()
            .expect("invariant: the dtype was just matched"))
        .copy_from_slice(v),
        (DType::I32, TensorData::I32(v)) => (destination
            .as_i32_mut()
            .expect("invariant: the dtype was just matched"))
        .copy_from_slice(v),
        (DType::Bool, TensorData::Bool(v)) => (destination
            .as_bool_mut()
            .expect("invariant: the dtype was just matched"))
        .copy_from_slice(v),
        (DType::F32, TensorData::I32(_) | TensorData::Bool(_))
        | (DType::I32, TensorData::F32(_) | TensorData::Bool(_))
        | (DType::Bool, TensorData::F32(_) | TensorData::I32(_)) => {
            panic!("invariant: an output has its node's type")
        }
    }
}
