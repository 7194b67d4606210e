//! Values for every input and parameter of a graph, drawn by name from one seed: what
//! `dropjit run` and the snapshot tests feed the interpreter when no files are given.
//!
//! Each tensor comes from its own host stream, [`PhiloxStream::for_name`], so its values depend
//! only on (seed, name, shape), never on the order of the graph's nodes:
//! - `f32` inputs: normal, mean 0, standard deviation 1;
//! - `f32` parameters: uniform in `±1/sqrt(fan_in)` (0 when `fan_in` is 0), PyTorch's default for
//!   `nn.Linear`. `fan_in` is the weight's `in_features` for a linear's weight and bias, else the
//!   parameter's last dimension (1 for a scalar);
//! - `i32` values: indices uniform in `0..C` when ops check them against a bound (C the
//!   smallest: a `cross_entropy`'s classes, an embedding's rows), else uniform in `0..10`;
//! - `bool` values: `true` or `false` with probability 1/2 each (the top bit of a word).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::rng::PhiloxStream;
use crate::tensor::{Tensor, TensorData};

/// The bound of i32 inputs that no op checks as indices.
const DEFAULT_CLASSES: i32 = 10;

/// Every input's and parameter's value, keyed by node name; fails only if the memory for
/// them cannot be had.
pub fn random_values(graph: &Graph, seed: u64) -> Result<BTreeMap<String, Tensor>> {
    let leaves = graph.inputs().into_iter().chain(graph.parameters());
    leaves
        .map(|id| {
            let node = &graph[id];
            Ok((node.name.clone(), random_value(graph, id, seed)?))
        })
        .collect()
}

fn random_value(graph: &Graph, id: NodeId, seed: u64) -> Result<Tensor> {
    let node = &graph[id];
    // Allocated first, so a value too large for this machine is an error, then filled.
    let mut value = Tensor::zeros(&node.ty)?;
    let mut stream = PhiloxStream::for_name(seed, &node.name);
    match &mut value.data_mut() {
        TensorData::F32(data) if matches!(node.op, Op::Parameter(_)) => {
            let fan_in = fan_in(graph, id);
            let bound = if fan_in == 0 {
                0.0
            } else {
                1.0 / (fan_in as f32).sqrt()
            };
            data.fill_with(|| stream.uniform_range(-bound, bound));
        }
        TensorData::F32(data) => stream.fill_normal(data, 0.0, 1.0),
        TensorData::I32(data) => {
            let classes = target_classes(graph, id).unwrap_or(DEFAULT_CLASSES);
            data.fill_with(|| {
                if classes > 0 {
                    stream.randint(0, classes).unwrap_or(0)
                } else {
                    0
                }
            });
        }
        TensorData::Bool(data) => data.fill_with(|| stream.next_word() >> 31 == 1),
    }
    Ok(value)
}

/// The fan-in of a parameter: see the module docs.
fn fan_in(graph: &Graph, id: NodeId) -> usize {
    for user in graph.users_of(id) {
        if let Op::Linear { .. } = graph[user].op {
            let operands = graph.operands_of(user);
            if operands[1..].contains(&id) {
                return graph[operands[1]].ty.shape.dims()[1];
            }
        }
    }
    graph[id].ty.shape.dims().last().copied().unwrap_or(1)
}

/// The smallest bound of the ops that check `id` as their indices (a `cross_entropy`'s
/// classes, an embedding's rows), so that every index is in range for all of them.
fn target_classes(graph: &Graph, id: NodeId) -> Option<i32> {
    (graph.users_of(id).into_iter())
        .filter_map(|user| {
            let op = &graph[user].op;
            let operands = graph.operands_of(user);
            let checked = op.checked_indices().is_some_and(|k| operands[k] == id);
            let types: Vec<_> = operands.iter().map(|&o| &graph[o].ty).collect();
            checked.then(|| i32::try_from(op.index_bound(&types)).unwrap_or(i32::MAX))
        })
        .min()
}
