//! The training step as one graph: a forward graph's nodes, the loss, the gradient of every
//! parameter the optimizer updates ([`crate::autodiff::gradients`]) and the optimizer's
//! update ([`crate::optim::add_updates`]).

use std::collections::BTreeMap;

use crate::autodiff::gradients;
use crate::error::{Error, Result, Rule};
use crate::graph::{Builder, Graph, Naming, NodeId, Op, TensorType};
use crate::optim::{self, Optimizer, Updated};

use super::Loss;

/// A training step's graph and the store entries it updates.
#[derive(Clone, Debug)]
pub struct StepGraph {
    /// The graph: inputs `x`, `targets` and the optimizer's scalars (`optim.lr`, ...);
    /// outputs `loss`, then `<entry>.next` for every updated entry in [`StepGraph::updated`]
    /// order: the forward's own updates (a batch norm's running statistics) first, then the
    /// optimizer's.
    pub graph: Graph,
    /// The updated parameters and state entries with their outputs.
    pub updated: Vec<Updated>,
}

/// The training step of `forward`, a traced graph (input `x`, its first output the model's
/// `y`, e.g. from [`crate::nn::trace`]): `loss` of `y` against an input `targets` of type
/// `targets`, the gradients of the optimizer's parameters (those the forward uses; PyTorch
/// skips a parameter without a gradient too) and their update. The forward's further
/// outputs named `<entry>.next` (a train-mode batch norm's running statistics) stay outputs,
/// updates of their entries like the optimizer's. The graph is named `<forward>_train_step`.
///
/// Errors: a target type that does not fit the loss (a type error naming the loss node), a
/// forward without an output, and the gradient transform's errors.
pub fn step_graph(
    forward: &Graph,
    loss: Loss,
    targets: &TensorType,
    optimizer: &dyn Optimizer,
) -> Result<StepGraph> {
    let mut graph = Graph::new(format!("{}_train_step", forward.name()));
    let mut b = Builder::new(&mut graph, Naming::Exact);
    let copies = copy_nodes(forward, &mut b)?;
    let y = copies[&forward.outputs()[0].node];
    let loss_node = loss.add(&mut b, y, targets)?;
    b.output("loss", loss_node)?;
    let mut updated = Vec::new();
    for output in &forward.outputs()[1..] {
        if let Some(entry) = output.name.strip_suffix(".next") {
            b.output(&output.name, copies[&output.node])?;
            updated.push(Updated {
                entry: entry.to_string(),
                output: output.name.clone(),
            });
        }
    }
    let params: Vec<NodeId> = (optimizer.parameters().iter())
        .filter_map(|name| graph.find(name))
        .filter(|&id| matches!(graph[id].op, Op::Parameter(_)))
        .collect();
    let grads = gradients(&mut graph, loss_node, &params)?;
    let pairs: Vec<(NodeId, NodeId)> = params.into_iter().zip(grads).collect();
    updated.extend(optim::add_updates(&mut graph, optimizer, &pairs)?);
    Ok(StepGraph { graph, updated })
}

/// Copies every node of `forward` with `b` (same names, ops and operands, no outputs) and
/// returns the copies by original; `forward` has to have an output (the model's `y`).
fn copy_nodes(forward: &Graph, b: &mut Builder) -> Result<BTreeMap<NodeId, NodeId>> {
    if forward.outputs().is_empty() {
        return Err(Error::Invalid {
            graph: forward.name().to_string(),
            rule: Rule::Outputs,
            detail: "a forward graph needs an output for the loss to read".to_string(),
        });
    }
    let mut copies = BTreeMap::new();
    for id in forward.topo_order() {
        let node = &forward[id];
        let operands: Vec<NodeId> = (forward.operands_of(id).iter())
            .map(|o| copies[o])
            .collect();
        let copy = b.node(&node.name, node.op.clone(), &operands)?;
        copies.insert(id, copy);
    }
    Ok(copies)
}
