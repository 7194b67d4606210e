//! The reference interpreter: plain loops over every op, the executable definition that the
//! JIT must reproduce (bit for bit for dropout masks and values).
//!
//! A run verifies the graph, checks the caller's values against its inputs and parameters,
//! claims one generator step in train and mc mode (even without a dropout node, so a step
//! always means one execution; one per sample for a graph of samples, see
//! [`crate::graph::steps_per_run`]), then evaluates, in topological order, every node the outputs depend
//! on (a dead node computes and fails nothing, as in compiled code; [`run_traced`] evaluates
//! them all). The order of
//! floating-point operations of each op is part of its definition and is documented where it
//! is implemented:
//! - element-wise arithmetic: [`crate::math`];
//! - broadcasting and data movement: `layout`;
//! - `matmul`, `linear`: `linalg` (sums from 0.0, k ascending, no FMA, bias added last);
//! - `conv1d/2d/3d`: `conv` (sums from 0.0 over channels and taps in the weight's order,
//!   padding read as 0.0, no FMA, bias added last);
//! - the pools: `pool` (max: a tap replaces the maximum if greater or NaN; average: the sum
//!   from 0.0 of the taps inside the input, one division);
//! - `sum`, `mean`, `amax`: `reduce` (row-major order of the reduced elements);
//! - `softmax`, `log_softmax`, `cross_entropy`: `softmax`;
//! - the dropout family and its gradients: `dropout` (RNG contract v1, [`crate::rng::mask`]);
//!   `cross_entropy_grad`: `softmax`; `expand`: `layout`;
//! - `batch_norm`, its running statistics and gradients: `batch_norm` (per-channel sums from
//!   0.0 in row-major order, then one affine map per element; see
//!   [`crate::graph::batch_norm`]).
//!
//! Kernels are generic over [`Element`](crate::math::Element), so [`run_f64`] interprets the
//! same graph in `f64` (for gradient checks) with the same masks.

mod batch_norm;
mod bind;
mod conv;
mod dropout;
mod elementwise;
mod embedding;
mod eval;
mod layer_norm;
mod layout;
mod linalg;
mod pool;
mod reduce;
mod softmax;
mod value;

use std::collections::BTreeMap;

pub use value::{Array, ArrayF64, Value, ValueF64};

use crate::error::Result;
use crate::graph::{Graph, Mode};
use crate::rng::Generator;
use crate::tensor::Tensor;
use eval::Scope;

/// Every node's value from one run, for dumps (`--save-all`) and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Node name -> its value, inputs, parameters and constants included.
    pub values: BTreeMap<String, Tensor>,
    /// The graph's outputs, in declaration order.
    pub outputs: Vec<(String, Tensor)>,
    /// The generator step a train-mode run drew its masks at; `None` in eval mode.
    pub step: Option<u32>,
}

/// A `tril` mask as a tensor: the interpreter's definition, which the compiler makes a constant
/// (`passes::materialize_tril`).
/// Fails only if the memory for the mask cannot be had (its size was checked by inference).
pub(crate) fn tril_mask(shape: &crate::graph::Shape, diagonal: i64) -> Result<crate::Tensor> {
    let mut mask = crate::Tensor::zeros(&crate::graph::TensorType::bool(shape.clone()))?;
    let data = mask.as_bool_mut().expect("invariant: a bool tensor");
    elementwise::tril(shape, diagonal, data);
    Ok(mask)
}

/// Runs `graph` once and returns its outputs in declaration order, evaluating only the nodes
/// they depend on. `values` binds every input and parameter by node name. Train mode claims one step from the generator
/// (`generator.next_step()`) per execution, even with no dropout node; eval mode does not
/// touch it. A run rejected before evaluation (invalid graph, bad bindings) claims no step.
///
/// Errors: [`crate::Error::UnknownNode`] or [`crate::Error::NotBindable`] for a binding that
/// names no input or parameter, [`crate::Error::MissingValue`], [`crate::Error::ValueType`],
/// [`crate::Error::StepsExhausted`], [`crate::Error::TargetOutOfRange`], and the verifier's.
pub fn run(
    graph: &Graph,
    mode: Mode,
    generator: &mut Generator,
    values: &BTreeMap<String, Tensor>,
) -> Result<Vec<(String, Tensor)>> {
    let values = to_values(values);
    let evaluation = eval::evaluate(graph, mode, generator, &values, Scope::Outputs)?;
    Ok(collect_outputs(graph, &evaluation))
}

/// Like [`run`], but evaluates and keeps every node's value, dead nodes included (the run of
/// [`Graph::with_every_node_as_output`]).
pub fn run_traced(
    graph: &Graph,
    mode: Mode,
    generator: &mut Generator,
    values: &BTreeMap<String, Tensor>,
) -> Result<Trace> {
    let values = to_values(values);
    let evaluation = eval::evaluate(graph, mode, generator, &values, Scope::EveryNode)?;
    let outputs = collect_outputs(graph, &evaluation);
    let values = graph
        .node_ids()
        .map(|id| {
            let value = evaluation.value(id.index()).clone();
            (graph[id].name.clone(), value.into_tensor())
        })
        .collect();
    Ok(Trace {
        values,
        outputs,
        step: evaluation.step,
    })
}

/// Like [`run`], in `f64`: every `f32` of the graph (constants included) is read as `f64`,
/// `i32` targets stay `i32`. Dropout draws the same masks as in `f32` and uses the scale
/// `1 / (1 - p)` and the alpha coefficients in `f64`.
pub fn run_f64(
    graph: &Graph,
    mode: Mode,
    generator: &mut Generator,
    values: &BTreeMap<String, ValueF64>,
) -> Result<Vec<(String, ValueF64)>> {
    let evaluation = eval::evaluate(graph, mode, generator, values, Scope::Outputs)?;
    Ok(graph
        .outputs()
        .iter()
        .map(|o| (o.name.clone(), evaluation.value(o.node.index()).clone()))
        .collect())
}

fn to_values(values: &BTreeMap<String, Tensor>) -> BTreeMap<String, Value<f32>> {
    values
        .iter()
        .map(|(name, tensor)| (name.clone(), Value::from_tensor(tensor)))
        .collect()
}

fn collect_outputs(graph: &Graph, evaluation: &eval::Evaluation<f32>) -> Vec<(String, Tensor)> {
    graph
        .outputs()
        .iter()
        .map(|o| {
            let value = evaluation.value(o.node.index()).clone();
            (o.name.clone(), value.into_tensor())
        })
        .collect()
}
