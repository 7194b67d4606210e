//! Checking a run's values before any code runs: the caller's inputs and parameters against
//! the graph as given (as the interpreter checks them), and preallocated outputs against the
//! graph's outputs.

use std::collections::BTreeMap;

use super::ParameterStore;
use crate::error::{Error, Result};
use crate::graph::{Graph, Leaf, Op};
use crate::tensor::{Tensor, TensorData};

/// Every key of `inputs` names an input; every input has a value in `inputs` and every
/// parameter one in `params`, of its declared type and with as many elements as its shape.
/// Keys are checked in name order, then the leaves in topological order; the first failure
/// is returned.
pub(crate) fn check_values(
    graph: &Graph,
    inputs: &BTreeMap<String, Tensor>,
    params: &ParameterStore,
) -> Result<()> {
    for name in inputs.keys() {
        let op = &graph[graph.lookup(name)?].op;
        if matches!(op, Op::Parameter(_)) {
            return Err(Error::ParameterAsInput { name: name.clone() });
        }
        if !matches!(op, Op::Input(_)) {
            return Err(Error::NotBindable {
                name: name.clone(),
                op: op.name(),
            });
        }
    }
    for id in graph.topo_order() {
        let node = &graph[id];
        let Some(what) = node.op.leaf().filter(|l| l.is_bound()).map(Leaf::name) else {
            continue;
        };
        let value = if matches!(node.op, Op::Parameter(_)) {
            params.get(&node.name)
        } else {
            inputs.get(&node.name)
        };
        let Some(value) = value else {
            return Err(Error::MissingValue {
                what,
                name: node.name.clone(),
            });
        };
        if value.ty() != node.ty {
            return Err(Error::ValueType {
                what,
                name: node.name.clone(),
                expected: node.ty.to_string(),
                got: value.ty().to_string(),
            });
        }
        check_length(value)?;
    }
    Ok(())
}

/// The buffer generated code reads has to hold the shape's elements. (A `Tensor` keeps this
/// invariant itself; the check costs nothing and keeps `run`'s safety argument local.)
fn check_length(value: &Tensor) -> Result<()> {
    let got = match value.data() {
        TensorData::F32(v) => v.len(),
        TensorData::I32(v) => v.len(),
        TensorData::Bool(v) => v.len(),
    };
    if got != value.numel() {
        return Err(Error::DataLength {
            shape: value.shape().clone(),
            expected: value.numel(),
            got,
        });
    }
    Ok(())
}

/// `outputs` has one `(name, tensor)` per output of `graph`, in order, each of the output's
/// type: what [`super::CompiledGraph::run`] returns.
pub(crate) fn check_outputs(graph: &Graph, outputs: &[(String, Tensor)]) -> Result<()> {
    let expected = graph.outputs();
    for index in 0..expected.len().max(outputs.len()) {
        let want = expected
            .get(index)
            .map(|o| format!("{}: {}", o.name, graph[o.node].ty));
        let have = outputs.get(index).map(|(n, t)| format!("{n}: {}", t.ty()));
        if want != have {
            return Err(Error::OutputMismatch {
                index,
                expected: want.unwrap_or_else(|| "nothing".into()),
                got: have.unwrap_or_else(|| "nothing".into()),
            });
        }
        if let Some((_, tensor)) = outputs.get(index) {
            check_length(tensor)?;
        }
    }
    Ok(())
}
