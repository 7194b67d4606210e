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
//!   summed back over the broadcast dimensions, [`Cx::sum_to`]);
//! - `linalg`: `matmul` (batched, broadcast batch dimensions) and `linear`;
//! - `reduce`: `sum`, `mean`, `amax`, `reshape`, `transpose`, `softmax`, `log_softmax`,
//!   `cross_entropy`;
//! - `dropout`: the dropout family, whose gradient recomputes the forward's mask from its
//!   stream (nothing is saved): `dropout_grad` carries the forward dropout's attributes.
//!
//! Names are deterministic: the gradient of node `x` is `x.grad` (a sum of several
//! contributions, `x.grad.0`, `x.grad.1`, ..., is `x.grad`); a product's intermediate values
//! extend the name of the contribution they feed (`fc1.weight.grad.gt`). A name already
//! taken gets `_1`, `_2`, ... appended.

mod dropout;
mod elementwise;
mod linalg;
mod reduce;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::graph::{BinaryOp, DType, Graph, NodeId, Op, ReduceOp, Shape};
use crate::tensor::Tensor;

/// Adds to `graph` the nodes computing `d loss / d x` for every `x` in `wrt` (parameters,
/// inputs, or any f32 node), `loss` being a scalar f32 node (shape `[]`); returns the
/// gradient nodes, in `wrt` order, each with the type of its `x`. A node of `wrt` the loss
/// does not depend on gets a zero (`expand` of the constant `0.0`). The returned nodes are
/// named `x.grad` (see the module docs for the other names); they are not made outputs.
///
/// Errors ([`Error::Gradient`], naming the node): a loss that is not an f32 scalar, a `wrt`
/// node that is not f32, a node on the path whose op has no derivative (`selu_grad` with
/// respect to `x`, `cross_entropy_grad`).
pub fn gradients(graph: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>> {
    let loss_node = graph.node(loss);
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
        if graph.node(x).ty.dtype != DType::F32 {
            let reason = format!(
                "only f32 values have gradients, but it is {}",
                graph.node(x).ty
            );
            return Err(cannot(graph, x, reason));
        }
    }
    let order = graph.topo_order();
    let active = on_path(graph, &order, loss, wrt);
    let mut incoming = BTreeMap::new();
    for &id in &order {
        for operand in graph.operands(id) {
            if active.contains(&id) && active.contains(&operand) {
                *incoming.entry(operand).or_insert(0usize) += 1;
            }
        }
    }
    let existing = graph.node_ids().collect();
    let mut cx = Cx { graph };
    let mut sweep = Sweep {
        existing,
        incoming,
        sent: BTreeMap::new(),
        received: BTreeMap::new(),
        totals: BTreeMap::new(),
    };
    if active.contains(&loss) {
        let name = format!("{}.grad", cx.graph.node(loss).name);
        let one = cx.constant(&name, Tensor::scalar(1.0));
        sweep.received.insert(loss, vec![one]);
    }
    for &id in order.iter().rev() {
        if !active.contains(&id) {
            continue;
        }
        let Some(g) = sweep.total(&mut cx, id) else {
            continue;
        };
        if cx.graph.node(id).op.is_leaf() {
            continue;
        }
        let operands = cx.graph.operands(id);
        let names: Vec<Option<String>> = (operands.iter())
            .map(|o| {
                active
                    .contains(o)
                    .then(|| sweep.contribution_name(cx.graph, *o))
            })
            .collect();
        let contributions = vjp(&mut cx, id, g, &names)?;
        for (operand, contribution) in operands.into_iter().zip(contributions) {
            if let Some(c) = contribution {
                sweep.received.entry(operand).or_default().push(c);
            }
        }
    }
    wrt.iter().map(|&x| Ok(sweep.result(&mut cx, x))).collect()
}

/// The f32 nodes that depend on some `wrt` node and that the loss depends on.
fn on_path(graph: &Graph, order: &[NodeId], loss: NodeId, wrt: &[NodeId]) -> BTreeSet<NodeId> {
    let mut from_wrt: BTreeSet<NodeId> = wrt.iter().copied().collect();
    for &id in order {
        if graph.operands(id).iter().any(|o| from_wrt.contains(o)) {
            from_wrt.insert(id);
        }
    }
    let mut to_loss = BTreeSet::from([loss]);
    for &id in order.iter().rev() {
        if to_loss.contains(&id) {
            to_loss.extend(graph.operands(id));
        }
    }
    (from_wrt.intersection(&to_loss).copied())
        .filter(|&id| graph.node(id).ty.dtype == DType::F32)
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
        let name = &graph.node(x).name;
        let name = if self.incoming.get(&x).copied().unwrap_or(0) <= 1 {
            format!("{name}.grad")
        } else {
            format!("{name}.grad.{k}")
        };
        *k += 1;
        name
    }

    /// The sum of the gradients `x` received, in the order received.
    fn total(&mut self, cx: &mut Cx, x: NodeId) -> Option<NodeId> {
        let parts = self.received.remove(&x).unwrap_or_default();
        let name = format!("{}.grad", cx.graph.node(x).name);
        let mut sum = parts.first().copied();
        for (k, &part) in parts.iter().enumerate().skip(1) {
            let acc = sum.expect("invariant: the first part started the sum");
            let step = if k + 1 == parts.len() {
                name.clone()
            } else {
                format!("{name}.sum{k}")
            };
            sum = Some(cx.add(&step, Op::Binary(BinaryOp::Add), &[acc, part]));
        }
        self.totals.insert(x, sum);
        sum
    }

    /// The gradient of `x` to return: its sum, under the name `x.grad` (or `x.grad_1`, ...
    /// if taken; an alias by `reshape` if the sum is another node's value), or a zero.
    fn result(&mut self, cx: &mut Cx, x: NodeId) -> NodeId {
        let name = format!("{}.grad", cx.graph.node(x).name);
        let shape = cx.shape(x);
        let is_own = |total: NodeId| {
            !self.existing.contains(&total) && cx.graph.node(total).name.starts_with(&name)
        };
        match self.totals.get(&x).copied().flatten() {
            Some(total) if is_own(total) => total,
            Some(total) => {
                let alias = cx.reshape(&name, total, &shape);
                self.totals.insert(x, Some(alias));
                alias
            }
            None => {
                let zero = cx.constant(&format!("{name}.zero"), Tensor::scalar(0.0));
                let zeros = cx.expand(&name, zero, &shape);
                self.totals.insert(x, Some(zeros));
                zeros
            }
        }
    }
}

/// The vector-Jacobian product of node `id` for its gradient `g`: one gradient per operand,
/// for the operands with a name in `names` (the name its final node takes).
fn vjp(
    cx: &mut Cx,
    id: NodeId,
    g: NodeId,
    names: &[Option<String>],
) -> Result<Vec<Option<NodeId>>> {
    let op = cx.graph.node(id).op.clone();
    let x = cx.graph.operands(id);
    match &op {
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) => Ok(Vec::new()),
        Op::Unary(unary) => Ok(vec![elementwise::unary(cx, *unary, id, x[0], g, names)]),
        Op::Binary(binary) => elementwise::binary(cx, *binary, id, &x, g, names),
        Op::Expand { .. } => Ok(vec![elementwise::expand(cx, x[0], g, names)]),
        Op::MatMul => Ok(linalg::matmul(cx, &x, g, names)),
        Op::Linear { .. } => Ok(linalg::linear(cx, &x, g, names)),
        Op::Reshape { .. } => Ok(vec![reduce::reshape(cx, x[0], g, names)]),
        Op::Transpose { perm } => Ok(vec![reduce::transpose(cx, perm, g, names)]),
        Op::Reduce { op, axes, .. } => Ok(vec![reduce::reduce(cx, *op, axes, id, x[0], g, names)]),
        Op::Softmax { axis } => Ok(vec![reduce::softmax(cx, *axis, id, g, names)]),
        Op::LogSoftmax { axis } => Ok(vec![reduce::log_softmax(cx, *axis, id, g, names)]),
        Op::CrossEntropy => Ok(reduce::cross_entropy(cx, &x, g, names)),
        Op::Dropout(d) | Op::DropoutGrad(d) => Ok(vec![dropout::dropout(cx, d, g, names)]),
        Op::CrossEntropyGrad | Op::DropoutMask(_) => Err(cannot(
            cx.graph,
            id,
            format!("{} has no derivative", op.name()),
        )),
    }
}

fn cannot(graph: &Graph, id: NodeId, reason: String) -> Error {
    let node = graph.node(id);
    Error::Gradient {
        node: node.name.clone(),
        op: node.op.name(),
        reason,
    }
}

/// The graph being extended, with the helpers every product builds from.
pub(crate) struct Cx<'g> {
    graph: &'g mut Graph,
}

impl Cx<'_> {
    /// A free name: `base`, else `base_1`, `base_2`, ...
    fn fresh(&self, base: &str) -> String {
        let taken = |name: &str| {
            self.graph.find(name).is_some() || self.graph.outputs().iter().any(|o| o.name == name)
        };
        if !taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|k| format!("{base}_{k}"))
            .find(|name| !taken(name))
            .expect("invariant: some suffix is free")
    }

    /// Adds a node under a fresh name derived from `name`.
    fn add(&mut self, name: &str, op: Op, operands: &[NodeId]) -> NodeId {
        let name = self.fresh(name);
        self.graph
            .add(name, op, operands)
            .expect("invariant: a vector-Jacobian product builds well-typed nodes")
    }

    /// The shape of `id`'s value.
    fn shape(&self, id: NodeId) -> Shape {
        self.graph.node(id).ty.shape.clone()
    }

    /// A constant.
    fn constant(&mut self, name: &str, value: Tensor) -> NodeId {
        self.add(name, Op::Constant(value), &[])
    }

    /// `g` viewed in `shape` (same element count): a `reshape`, which costs nothing (it
    /// aliases `g`'s buffer) and which layout simplification removes when the shapes agree.
    fn reshape(&mut self, name: &str, g: NodeId, shape: &Shape) -> NodeId {
        let dims = shape.dims().iter().map(|&d| d as i64).collect();
        self.add(name, Op::Reshape { shape: dims }, &[g])
    }

    /// `g` broadcast to `shape`.
    fn expand(&mut self, name: &str, g: NodeId, shape: &Shape) -> NodeId {
        let shape = shape.dims().to_vec();
        self.add(name, Op::Expand { shape }, &[g])
    }

    /// `g` summed over the dimensions along which `shape` was broadcast to `g`'s shape, in
    /// `shape`: the gradient of a broadcast. `g` itself if nothing was broadcast.
    fn sum_to(&mut self, name: &str, g: NodeId, shape: &Shape) -> NodeId {
        let from = self.shape(g);
        if from == *shape {
            return g;
        }
        let lead = from.rank() - shape.rank();
        let axes: Vec<i64> = (0..from.rank())
            .filter(|&d| d < lead || (shape.dims()[d - lead] == 1 && from.dims()[d] != 1))
            .map(|d| d as i64)
            .collect();
        let inner = axes.iter().any(|&d| d as usize >= lead);
        let sum = |keepdim| Op::Reduce {
            op: ReduceOp::Sum,
            axes: axes.clone(),
            keepdim,
        };
        // Leading axes only: dropping them gives `shape`. No leading axes: keeping the
        // summed ones as 1 gives it. Both: keep, then view without the leading ones.
        match (lead > 0, inner) {
            (_, false) => self.add(name, sum(false), &[g]),
            (false, true) => self.add(name, sum(true), &[g]),
            (true, true) => {
                let summed = self.add(&format!("{name}.sum"), sum(true), &[g]);
                self.reshape(name, summed, shape)
            }
        }
    }
}
