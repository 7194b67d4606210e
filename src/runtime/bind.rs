//! Checking a run's values before any code runs: the caller's inputs and parameters against
//! the graph as given (as the interpreter checks them), and preallocated outputs against the
//! graph's outputs.

use std::collections::BTreeMap;

use super::ParameterStore;
use crate::error::{Error, Result};
use crate::graph::signature::Bound;
use crate::graph::{Graph, Leaf};
use crate::tensor::check_length;
use crate::tensor::{Tensor, TensorData};

/// Every key of `inputs` names an input; every input has a value in `inputs` and every
/// parameter one in `params`, of its declared type and with as many elements as its shape
/// ([`Graph::check_bindings`]). Keys are checked in name order, then the leaves in topological
/// order; the first failure is returned.
pub(crate) fn check_values(
    graph: &Graph,
    inputs: &BTreeMap<String, Tensor>,
    params: &ParameterStore,
) -> Result<()> {
    for name in inputs.keys() {
        let op = &graph[graph.lookup(name)?].op;
        match op.leaf() {
            Some(Leaf::Input) => {}
            Some(Leaf::Parameter) => return Err(Error::ParameterAsInput { name: name.clone() }),
            Some(Leaf::Constant) | None => {
                return Err(Error::NotBindable {
                    name: name.clone(),
                    op: op.name(),
                });
            }
        }
    }
    graph.check_bindings(|leaf, name| {
        let value = match leaf {
            Leaf::Parameter => params.get(name),
            Leaf::Input | Leaf::Constant => inputs.get(name),
        };
        value.map(|v| Bound {
            ty: v.ty(),
            len: len(v),
        })
    })
}

/// How many elements `tensor`'s buffer holds. (A `Tensor` keeps its length right itself; the
/// check costs nothing and keeps `run`'s safety argument local.)
pub(super) fn len(tensor: &Tensor) -> usize {
    match tensor.data() {
        TensorData::F32(v) => v.len(),
        TensorData::I32(v) => v.len(),
        TensorData::Bool(v) => v.len(),
    }
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
            check_length(tensor.shape(), len(tensor))?;
        }
    }
    Ok(())
}
