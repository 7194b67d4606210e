//! Reverse-mode automatic differentiation as a graph transform: [`gradients`] adds to a graph
//! the nodes that compute `d loss / d x`, in the same IR, so the backward pass is printed,
//! verified, optimized, fused and compiled like any other graph.
//!
//! The sweep: the nodes on a path from some `wrt` node to the loss are visited in reverse
//! topological order, starting from the loss's gradient, the constant `1.0`. At each node
//! the gradients its users sent it are summed (by `add`, in the order the users were
//! visited), and the node's vector-Jacobian product sends one gradient to each operand on the
//! path. One file per op family holds the products:
//! - `elementwise`: unary and broadcasting binary ops, `expand` (broadcast gradients are
//!   summed back over the broadcast dimensions, `sum_to`);
//! - `linalg`: `matmul` (batched, broadcast batch dimensions) and `linear`;
//! - `reduce`: `sum`, `mean`, `amax`, `reshape`, `transpose`, `softmax`, `log_softmax`,
//!   `cross_entropy`;
//! - `window`: convolutions and pools; `batch_norm`: batch normalization (its own gradient
//!   ops, in the graph's mode);
//! - `dropout`: the dropout family, whose gradient recomputes the forward's mask from its
//!   stream (nothing is saved): `dropout_grad` carries the forward dropout's attributes.
//!
//! Names are deterministic: the gradient of node `x` is `x.grad` (a sum of several
//! contributions, `x.grad.0`, `x.grad.1`, ..., is `x.grad`); a product's intermediate values
//! extend the name of the contribution they feed (`fc1.weight.grad.gt`). A name already
//! taken gets `_1`, `_2`, ... appended ([`Naming::NUMBERED`]).
//!
//! Every node is added through a [`Builder`], so a product that does not type-check (a bug)
//! is an error naming the node, not a panic.

mod batch_norm;
mod dropout;
mod elementwise;
mod layer_norm;
mod linalg;
mod reduce;
mod window;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::graph::{Builder, DType, Graph, Naming, NodeId, Op};
use crate::tensor::Tensor;

/// Adds to `graph` the nodes computing `d loss / d x` for every `x` in `wrt` (parameters,
/// inputs, or any f32 node), `loss` being a scalar f32 node (shape `[]`); returns the
/// gradient nodes, in `wrt` order, each with the type of its `x`. A node of `wrt` the loss
/// does not depend on gets a zero (`expand` of the constant `0.0`). The returned nodes are
/// named `x.grad` (see the module docs for the other names); they are not made outputs.
///
/// Errors ([`Error::Gradient`], naming the node): a loss that is not an f32 scalar, a `wrt`
/// node that is not f32, a node on the path whose op has no derivative (`selu_grad` with
/// respect to `x`, `cross_entropy_grad`); [`Error::ForeignNode`] for a handle that is not a
/// node of `graph`.
pub fn gradients(graph: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>> {
    for &x in wrt {
        graph.node(x)?;
    }
    let loss_node = graph.node(loss)?;
    if loss_node.ty.dtype != DType::F32 || loss_node.ty.shape.rank() != 0 {
        return Err(cannot(
            graph,
            loss,
            format!(
                "a loss has to be an f32 scalar f32[], but it is {}",
                loss_node.ty
            ),
        ));
    }
    for &x in wrt {
        if graph[x].ty.dtype != DType::F32 {
            let reason = format!("only f32 values have gradients, but it is {}", graph[x].ty);
            return Err(cannot(graph, x, reason));
        }
    }
    let order = graph.topo_order();
    let active = on_path(graph, &order, loss, wrt);
    let mut incoming = BTreeMap::new();
    for &id in &order {
        for operand in graph.operands_of(id) {
            if active.contains(&id) && active.contains(&operand) {
                *incoming.entry(operand).or_insert(0usize) += 1;
            }
        }
    }
    let existing = graph.node_ids().collect();
    let mut b = Builder::new(graph, Naming::NUMBERED);
    let mut sweep = Sweep {
        existing,
        incoming,
        sent: BTreeMap::new(),
        received: BTreeMap::new(),
        totals: BTreeMap::new(),
    };
    if active.contains(&loss) {
        let name = format!("{}.grad", b.graph()[loss].name);
        let one = b.constant(&name, Tensor::scalar(1.0))?;
        sweep.received.insert(loss, vec![one]);
    }
    for &id in order.iter().rev() {
        if !active.contains(&id) {
            continue;
        }
        let Some(g) = sweep.total(&mut b, id)? else {
            continue;
        };
        if b.graph()[id].op.is_leaf() {
            continue;
        }
        let operands = b.graph().operands_of(id);
        let names: Vec<Option<String>> = (operands.iter())
            .map(|o| {
                active
                    .contains(o)
                    .then(|| sweep.contribution_name(b.graph(), *o))
            })
            .collect();
        let contributions = vjp(&mut b, id, g, &names)?;
        for (operand, contribution) in operands.into_iter().zip(contributions) {
            if let Some(c) = contribution {
                sweep.received.entry(operand).or_default().push(c);
            }
        }
    }
    wrt.iter().map(|&x| sweep.result(&mut b, x)).collect()
}

/// The f32 nodes that depend on some `wrt` node and that the loss depends on.
fn on_path(graph: &Graph, order: &[NodeId], loss: NodeId, wrt: &[NodeId]) -> BTreeSet<NodeId> {
    let mut from_wrt: BTreeSet<NodeId> = wrt.iter().copied().collect();
    for &id in order {
        if graph.operands_of(id).iter().any(|o| from_wrt.contains(o)) {
            from_wrt.insert(id);
        }
    }
    let mut to_loss = BTreeSet::from([loss]);
    for &id in order.iter().rev() {
        if to_loss.contains(&id) {
            to_loss.extend(graph.operands_of(id));
        }
    }
    (from_wrt.intersection(&to_loss).copied())
        .filter(|&id| graph[id].ty.dtype == DType::F32)
        .collect()
}

/// The gradients sent and summed during one sweep.
struct Sweep {
    /// The nodes the graph had before the sweep.
    existing: BTreeSet<NodeId>,
    /// How many gradients each node will receive (one per use on the path).
    incoming: BTreeMap<NodeId, usize>,
    /// How many contribution names each node has handed out.
    sent: BTreeMap<NodeId, usize>,
    /// The gradients each node has received so far.
    received: BTreeMap<NodeId, Vec<NodeId>>,
    /// Each visited node's summed gradient (`None`: nothing reached it, so it is zero).
    totals: BTreeMap<NodeId, Option<NodeId>>,
}

impl Sweep {
    /// The name of the next gradient sent to `x`: `x.grad` for its only one, else `x.grad.k`.
    fn contribution_name(&mut self, graph: &Graph, x: NodeId) -> String {
        let k = self.sent.entry(x).or_insert(0);
        let name = &graph[x].name;
        let name = if self.incoming.get(&x).copied().unwrap_or(0) <= 1 {
            format!("{name}.grad")
        } else {
            format!("{name}.grad.{k}")
        };
        *k += 1;
        name
    }

    /// The sum of the gradients `x` received, in the order received.
    fn total(&mut self, b: &mut Builder, x: NodeId) -> Result<Option<NodeId>> {
        let parts = self.received.remove(&x).unwrap_or_default();
        let name = format!("{}.grad", b.graph()[x].name);
        let mut sum = parts.first().copied();
        for (k, &part) in parts.iter().enumerate().skip(1) {
            let acc = sum.expect("invariant: the first part started the sum");
            let step = if k + 1 == parts.len() {
                name.clone()
            } else {
                format!("{name}.sum{k}")
            };
            sum = Some(b.add(&step, acc, part)?);
        }
        self.totals.insert(x, sum);
        Ok(sum)
    }

    /// The gradient of `x` to return: its sum, under the name `x.grad` (or `x.grad_1`, ...
    /// if taken; an alias by `reshape` if the sum is another node's value), or a zero.
    fn result(&mut self, b: &mut Builder, x: NodeId) -> Result<NodeId> {
        let name = format!("{}.grad", b.graph()[x].name);
        let shape = b.shape(x);
        let is_own = |total: NodeId| {
            !self.existing.contains(&total) && b.graph()[total].name.starts_with(&name)
        };
        let result = match self.totals.get(&x).copied().flatten() {
            Some(total) if is_own(total) => return Ok(total),
            Some(total) => b.reshape(&name, total, &shape)?,
            None => {
                let zero = b.constant(&format!("{name}.zero"), Tensor::scalar(0.0))?;
                b.expand(&name, zero, &shape)?
            }
        };
        self.totals.insert(x, Some(result));
        Ok(result)
    }
}

/// What a vector-Jacobian product reads: the node `y`, its operands `x` and its summed
/// gradient `g` (derivatives.yaml's `result`, `self`/`other` and `grad`).
#[derive(Clone, Copy)]
struct Site<'a> {
    y: NodeId,
    x: &'a [NodeId],
    g: NodeId,
}

/// One gradient per operand: `None` for an operand off the path or without a derivative.
type Gradients = Vec<Option<NodeId>>;

/// The vector-Jacobian product of node `id` for its gradient `g`: one gradient per operand,
/// for the operands with a name in `names` (the name its final node takes).
fn vjp(b: &mut Builder, id: NodeId, g: NodeId, names: &[Option<String>]) -> Result<Gradients> {
    let op = b.graph()[id].op.clone();
    let x = b.graph().operands_of(id);
    let at = Site { y: id, x: &x, g };
    match &op {
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Tril { .. } => Ok(Vec::new()),
        Op::Where => elementwise::select(b, at, names),
        Op::Unary(unary) => first(names, |n| elementwise::unary(b, *unary, at, n)),
        Op::Binary(binary) => elementwise::binary(b, *binary, at, names),
        Op::Expand { .. } => first(names, |n| elementwise::expand(b, at, n)),
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => linalg::matmul(b, at, names, (*transpose_a, *transpose_b)),
        Op::Linear { .. } => linalg::linear(b, at, names),
        Op::Reshape { .. } => first(names, |n| reduce::reshape(b, at, n)),
        Op::Transpose { perm } => first(names, |n| reduce::transpose(b, perm, at, n)),
        Op::Reduce { op, axes, .. } => first(names, |n| reduce::reduce(b, *op, axes, at, n)),
        Op::Softmax { axis } => first(names, |n| reduce::softmax(b, *axis, at, n)),
        Op::LogSoftmax { axis } => first(names, |n| reduce::log_softmax(b, *axis, at, n)),
        // The targets are i32, never on the path.
        Op::CrossEntropy => first(names, |n| reduce::cross_entropy(b, at, n)),
        Op::Dropout(d) | Op::DropoutGrad(d) => first(names, |n| dropout::dropout(b, d, at, n)),
        Op::Conv(c) => window::conv(b, c, at, names),
        Op::Pool(p) => first(names, |n| window::pool(b, p, at, n)),
        Op::AdaptiveAvgPool { output } => {
            first(names, |n| window::adaptive_avg_pool(b, output, at, n))
        }
        Op::BatchNorm(bn) => batch_norm::batch_norm(b, bn, at, names),
        // Running statistics are updated outside the gradient, as in PyTorch.
        Op::BatchNormRunning(_) => Ok(vec![None, None]),
        Op::LayerNorm(ln) => layer_norm::layer_norm(b, ln, at, names),
        // The indices are i32, never on the path.
        Op::Embedding(e) => linalg::embedding(b, e, at, names),
        Op::ConvInputGrad(_)
        | Op::ConvWeightGrad(_)
        | Op::PoolGrad(_)
        | Op::AdaptiveAvgPoolGrad { .. }
        | Op::BatchNormInputGrad(_)
        | Op::BatchNormWeightGrad(_)
        | Op::LayerNormInputGrad(_)
        | Op::LayerNormWeightGrad(_)
        | Op::EmbeddingGrad(_) => Err(cannot(
            b.graph(),
            id,
            format!("{} has no derivative", op.name()),
        )),
        Op::CrossEntropyGrad | Op::DropoutMask(_) => Err(cannot(
            b.graph(),
            id,
            format!("{} has no derivative", op.name()),
        )),
    }
}

/// The gradients of an op whose first operand alone can have one: `vjp(name)` if that operand
/// is on the path, `name` being its gradient's name.
fn first(names: &[Option<String>], vjp: impl FnOnce(&str) -> Result<NodeId>) -> Result<Gradients> {
    let gradient = names[0].as_deref().map(vjp).transpose()?;
    Ok(vec![gradient])
}

fn cannot(graph: &Graph, id: NodeId, reason: String) -> Error {
    let node = &graph[id];
    Error::Gradient {
        node: node.name.clone(),
        op: node.op.name(),
        reason,
    }
}
