//! Running a compiled graph: check the values, claim a step, fill the address table, call the
//! generated code, turn its status into a typed error, and copy the outputs that were not
//! written in place.

use std::collections::BTreeMap;

use super::plan::Storage;
use super::{CompiledGraph, ParameterStore, bind};
use crate::error::{Error, Result};
use crate::graph::{DType, Op};
use crate::interp::Mode;
use crate::jit::Status;
use crate::rng::Generator;
use crate::tensor::{Tensor, TensorData};

impl CompiledGraph {
    /// Runs the graph once and returns its outputs in declaration order. `inputs` binds every
    /// input by node name, `params` every parameter (it may hold more). A train-mode graph
    /// claims one step from `generator` per run, exactly like the interpreter
    /// ([`crate::interp::run`]); an eval-mode one does not touch it. A run rejected before
    /// execution claims no step.
    ///
    /// Errors: [`Error::UnknownNode`], [`Error::NotBindable`] or [`Error::ParameterAsInput`]
    /// for an input binding that names no input, [`Error::MissingValue`],
    /// [`Error::ValueType`], [`Error::StepsExhausted`], [`Error::TargetOutOfRange`].
    pub fn run(
        &self,
        generator: &mut Generator,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
    ) -> Result<Vec<(String, Tensor)>> {
        bind::check_values(&self.source, inputs, params)?;
        let mut outputs: Vec<(String, Tensor)> = (self.graph.outputs().iter())
            .map(|o| (o.name.clone(), Tensor::zeros(&self.graph.node(o.node).ty)))
            .collect();
        self.execute(generator, inputs, params, &mut outputs)?;
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
        bind::check_values(&self.source, inputs, params)?;
        bind::check_outputs(&self.graph, outputs)?;
        self.execute(generator, inputs, params, outputs)
    }

    /// The run after the checks.
    fn execute(
        &self,
        generator: &mut Generator,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
        outputs: &mut [(String, Tensor)],
    ) -> Result<()> {
        let step = match self.mode {
            Mode::Train => generator.next_step()?,
            Mode::Eval => 0,
        };
        let mut arena = vec![0u32; self.plan.arena_words];
        let table = self.table(inputs, params, &mut arena, outputs);
        let status = self.jit.call(&table, generator.seed(), step);
        if status.code != 0 {
            return Err(self.runtime_error(status));
        }
        self.copy_outputs(inputs, params, &arena, outputs);
        Ok(())
    }

    /// One buffer address per slot of the plan.
    fn table(
        &self,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
        arena: &mut [u32],
        outputs: &mut [(String, Tensor)],
    ) -> Vec<*mut u8> {
        let arena_base = arena.as_mut_ptr().cast::<u8>();
        let mut table: Vec<*mut u8> = Vec::with_capacity(self.plan.slots.len());
        for (i, slot) in self.plan.slots.iter().enumerate() {
            let node = self.graph.node(slot.node);
            let address = match &slot.storage {
                Storage::Input => read_only(&inputs[&node.name]),
                Storage::Parameter => read_only(
                    params
                        .get(&node.name)
                        .expect("invariant: parameters were checked"),
                ),
                Storage::Constant => {
                    let Op::Constant(tensor) = &node.op else {
                        panic!("invariant: a constant slot belongs to a constant node");
                    };
                    read_only(tensor)
                }
                Storage::Alias(target) => table[*target],
                Storage::Value { offset, .. } => match self.plan.direct[i] {
                    Some(k) => writable(&mut outputs[k].1),
                    None => arena_base.wrapping_add(*offset),
                },
                Storage::Scratch { offset } => arena_base.wrapping_add(*offset),
            };
            table.push(address);
        }
        table
    }

    /// The typed error for a nonzero status.
    fn runtime_error(&self, status: Status) -> Error {
        let index = usize::try_from(status.code - 1).expect("invariant: error codes start at 1");
        let id = self.error_nodes[index];
        let node = self.graph.node(id);
        assert!(
            matches!(node.op, Op::CrossEntropy),
            "invariant: only cross_entropy fails at run time"
        );
        let logits = &self.graph.node(self.graph.operands(id)[0]).ty.shape;
        Error::TargetOutOfRange {
            node: node.name.clone(),
            target: status.details[1] as i32,
            index: status.details[0] as usize,
            classes: *logits
                .dims()
                .last()
                .expect("invariant: logits have rank 1 or 2"),
        }
    }

    /// Fills the outputs that the generated code did not write in place: leaves, aliases,
    /// and second outputs of one node.
    fn copy_outputs(
        &self,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
        arena: &[u32],
        outputs: &mut [(String, Tensor)],
    ) {
        for (i, output) in self.graph.outputs().iter().enumerate() {
            let slot = self.plan.slot_of(output.node);
            if self.plan.direct[slot] == Some(i) {
                continue;
            }
            let root = self.plan.root(slot);
            let name = &self.graph.node(self.plan.slots[root].node).name;
            let destination = &mut outputs[i].1;
            match &self.plan.slots[root].storage {
                Storage::Input => copy_data(destination, inputs[name].data()),
                Storage::Parameter => {
                    let value = params
                        .get(name)
                        .expect("invariant: parameters were checked");
                    copy_data(destination, value.data());
                }
                Storage::Constant => {
                    let Op::Constant(tensor) = &self.graph.node(self.plan.slots[root].node).op
                    else {
                        panic!("invariant: a constant slot belongs to a constant node");
                    };
                    copy_data(destination, tensor.data());
                }
                Storage::Value { offset, bytes } => match self.plan.direct[root] {
                    Some(k) => {
                        let data = outputs[k].1.data().clone();
                        copy_data(&mut outputs[i].1, &data);
                    }
                    None => copy_words(destination, &arena[offset / 4..(offset + bytes) / 4]),
                },
                Storage::Alias(_) | Storage::Scratch { .. } => {
                    panic!("invariant: an output's root slot holds a value")
                }
            }
        }
    }
}

/// The address of a buffer generated code only reads.
fn read_only(tensor: &Tensor) -> *mut u8 {
    match tensor.data() {
        TensorData::F32(v) => v.as_ptr().cast_mut().cast(),
        TensorData::I32(v) => v.as_ptr().cast_mut().cast(),
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
        (DType::F32, TensorData::I32(_)) | (DType::I32, TensorData::F32(_)) => {
            panic!("invariant: an output has its node's type")
        }
    }
}

fn copy_words(destination: &mut Tensor, words: &[u32]) {
    match destination.dtype() {
        DType::F32 => {
            let data = destination
                .as_f32_mut()
                .expect("invariant: the dtype was just matched");
            for (d, &w) in data.iter_mut().zip(words) {
                *d = f32::from_bits(w);
            }
        }
        DType::I32 => {
            let data = destination
                .as_i32_mut()
                .expect("invariant: the dtype was just matched");
            for (d, &w) in data.iter_mut().zip(words) {
                *d = w as i32;
            }
        }
    }
}
