//! Batch-norm specialization: every batch-norm node becomes, for the compilation's mode, the
//! ordinary nodes that compute its definition ([`crate::graph::batch_norm`]) in the same
//! order of operations, so the rest of the compiler (fusion, the memory plan, lowering) sees
//! sums, reshapes and element-wise ops only, and compiled code equals the interpreter bit
//! for bit.
//!
//! With `axes = [0, 2, ...]` (all but the channels), `r(v)` = `reshape(v, [C, 1, ...])` (so a
//! `[C]` value broadcasts along the channels of `[N, C, ...]`) and `n` the values per channel:
//!
//! ```text
//! statistics  train: mean = sum(x, axes) / n;  centred = x - r(mean);
//!                    squares = sum(centred * centred, axes);  var = squares / n
//!             eval, mc (and `running_stats` in train mode): mean = running_mean;
//!                    var = running_var
//! batch_norm  scale = weight / sqrt(var + eps)  (or 1 / ...);  shift = bias - mean * scale
//!             (or -(mean * scale));  y = x * r(scale) + r(shift)
//! running     train: m * mean + (1 - m) * running_mean;
//!                    m * (squares / (n - 1)) + (1 - m) * running_var
//!             eval, mc: the running statistic itself (the node goes)
//! input grad  invstd = 1 / sqrt(var + eps);  train: k = sum(centred * g, axes) * invstd *
//!             invstd / n;  dx = (g - r(sum(g, axes) / n) - centred * r(k)) * r(invstd) * r(w)
//!             eval: dx = g * r(invstd) * r(w)
//! weight grad sum((x - r(mean)) * g, axes) * invstd
//! ```
//!
//! The node itself is rewritten into the last operation, so it keeps its name (users, outputs
//! and dumps still name it); the new nodes are named after it (`bn1.mean`, `bn1.scale`). The
//! batch statistics of one input are built once and shared by every node that reads them
//! (the forward, both running statistics and both gradients of a training step).
//!
//! Errors: in train mode, a node some output depends on whose input has one value per channel
//! ([`Error::BatchNormSingleValue`]), as the interpreter reports it.

use std::collections::{BTreeMap, BTreeSet};

use super::Stats;
use crate::error::{Error, Result};
use crate::graph::batch_norm::per_channel;
use crate::graph::{
    BatchNorm, BinaryOp, Builder, Graph, Mode, Naming, NodeId, Op, Running, Shape, Stat, inplace,
};
use crate::tensor::Tensor;

/// Rewrites every batch-norm node of `graph` for `mode`; see the module docs.
pub fn specialize_batch_norm(graph: &mut Graph, mode: Mode) -> Result<Stats> {
    let nodes: Vec<NodeId> = (graph.topo_order().into_iter())
        .filter(|&id| is_batch_norm(&graph[id].op))
        .collect();
    let mut stats = Stats::default();
    let mut batches = BTreeMap::new();
    // Computed once, if a node needs it.
    let mut live = None;
    for id in nodes {
        let op = graph[id].op.clone();
        let operands = graph.operands_of(id);
        let x = match op {
            Op::BatchNormInputGrad(_) | Op::BatchNormWeightGrad(_) => operands[1],
            _ => operands[0],
        };
        // Batch statistics, or (eval, mc, `running_stats`) the running ones.
        let train = match &op {
            Op::BatchNorm(bn) | Op::BatchNormInputGrad(bn) | Op::BatchNormWeightGrad(bn) => {
                bn.uses_batch_stats(mode)
            }
            _ => mode == Mode::Train,
        };
        // A dead node fails nothing, as in the interpreter (its expansion goes with it).
        if train
            && per_channel(&graph[x].ty.shape) == 1
            && live.get_or_insert_with(|| live_nodes(graph)).contains(&id)
        {
            return Err(Error::BatchNormSingleValue {
                node: graph[id].name.clone(),
                op: op.name(),
                shape: graph[x].ty.shape.clone(),
            });
        }
        let empty = per_channel(&graph[x].ty.shape) == 0;
        if let (Op::BatchNormRunning(_), false, _) | (Op::BatchNormRunning(_), _, true) =
            (&op, train, empty)
        {
            // running(x, stat) -> stat in eval and Monte Carlo mode, and for an empty batch
            // (PyTorch leaves the statistics of one as they are)
            graph.replace_all_uses(id, operands[1]);
            graph.remove(id);
            stats.removed += 1;
            continue;
        }
        let name = graph[id].name.clone();
        let batch = if train {
            let batch = match batches.get(&x) {
                Some(&batch) => batch,
                None => {
                    let batch = Batch::build(graph, &name, x)?;
                    batches.insert(x, batch);
                    batch
                }
            };
            Some(batch)
        } else {
            None
        };
        let mut cx = Expansion {
            b: Builder::new(graph, Naming::NUMBERED),
            name,
            x,
            batch,
        };
        let (last, last_operands) = match &op {
            Op::BatchNorm(bn) => cx.batch_norm(bn, &operands)?,
            Op::BatchNormRunning(r) => cx.running(r, operands[1])?,
            Op::BatchNormInputGrad(bn) => cx.input_grad(bn, &operands)?,
            Op::BatchNormWeightGrad(bn) => cx.weight_grad(bn, &operands)?,
            _ => unreachable!("invariant: only batch-norm nodes were collected"),
        };
        graph.rewrite(id, Op::Binary(last), &last_operands);
        stats.rewired += 1;
    }
    // An in-place node that read a removed running statistic now reads the parameter, which
    // it must not overwrite: it writes a buffer of its own instead.
    stats.rewired += inplace::withdraw_conflicts(graph);
    Ok(stats)
}

/// The nodes some output of `graph` depends on.
fn live_nodes(graph: &Graph) -> BTreeSet<NodeId> {
    let mut live = BTreeSet::new();
    let mut pending: Vec<NodeId> = graph.outputs().iter().map(|o| o.node).collect();
    while let Some(node) = pending.pop() {
        if live.insert(node) {
            pending.extend(graph.operands_of(node));
        }
    }
    live
}

/// True if `graph` has a node this pass rewrites.
pub fn has_batch_norm(graph: &Graph) -> bool {
    graph.node_ids().any(|id| is_batch_norm(&graph[id].op))
}

/// True for the batch-norm ops this pass rewrites.
fn is_batch_norm(op: &Op) -> bool {
    matches!(
        op,
        Op::BatchNorm(_)
            | Op::BatchNormRunning(_)
            | Op::BatchNormInputGrad(_)
            | Op::BatchNormWeightGrad(_)
    )
}

/// The batch statistics of one input, shared by its nodes.
#[derive(Clone, Copy)]
struct Batch {
    /// `sum(x, axes) / n`, `[C]`.
    mean: NodeId,
    /// `x - r(mean)`.
    centred: NodeId,
    /// `sum(centred * centred, axes)`, `[C]`.
    squares: NodeId,
    /// `squares / n`, `[C]`.
    var: NodeId,
}

impl Batch {
    fn build(graph: &mut Graph, name: &str, x: NodeId) -> Result<Batch> {
        let mut b = Builder::new(graph, Naming::NUMBERED);
        let shape = b.shape(x);
        let n = count(&mut b, &format!("{name}.n"), per_channel(&shape))?;
        let sum = b.sum(&format!("{name}.sum"), x, axes(&shape), false)?;
        let mean = b.div(&format!("{name}.mean"), sum, n)?;
        let mean_r = channels(&mut b, &format!("{name}.mean"), mean, &shape)?;
        let centred = b.sub(&format!("{name}.centred"), x, mean_r)?;
        let square = b.mul(&format!("{name}.square"), centred, centred)?;
        let squares = b.sum(&format!("{name}.squares"), square, axes(&shape), false)?;
        let var = b.div(&format!("{name}.var"), squares, n)?;
        Ok(Batch {
            mean,
            centred,
            squares,
            var,
        })
    }
}

/// What one node's expansion adds nodes with.
struct Expansion<'g> {
    b: Builder<'g>,
    /// The node's name, which names the new nodes.
    name: String,
    /// The normalized input.
    x: NodeId,
    /// Its batch statistics in train mode.
    batch: Option<Batch>,
}

/// The last operation of an expansion, which the node itself becomes, and its operands.
type Last = (BinaryOp, Vec<NodeId>);

impl Expansion<'_> {
    fn named(&self, part: &str) -> String {
        format!("{}.{part}", self.name)
    }

    fn shape(&self) -> Shape {
        self.b.shape(self.x)
    }

    /// The statistics `(mean, var)` the mode normalizes with (`stats` = the running mean's
    /// operand position).
    fn stats(&self, operands: &[NodeId], stats: usize) -> (NodeId, NodeId) {
        match self.batch {
            Some(batch) => (batch.mean, batch.var),
            None => (operands[stats], operands[stats + 1]),
        }
    }

    /// `v` of `[C]` as `[C, 1, ...]`.
    fn r(&mut self, v: NodeId, part: &str) -> Result<NodeId> {
        let shape = self.shape();
        let name = self.named(part);
        channels(&mut self.b, &name, v, &shape)
    }

    fn scalar(&mut self, part: &str, value: f32) -> Result<NodeId> {
        let name = self.named(part);
        self.b.constant(&name, Tensor::scalar(value))
    }

    /// `1 / sqrt(var + eps)`.
    fn invstd(&mut self, bn: &BatchNorm, var: NodeId) -> Result<NodeId> {
        let root = self.root(bn, var)?;
        let one = self.scalar("one", 1.0)?;
        self.b.div(&self.named("invstd"), one, root)
    }

    /// `sqrt(var + eps)`.
    fn root(&mut self, bn: &BatchNorm, var: NodeId) -> Result<NodeId> {
        let eps = self.scalar("eps", bn.eps_f32())?;
        let shifted = self.b.add(&self.named("var_eps"), var, eps)?;
        self.b.sqrt(&self.named("root"), shifted)
    }

    fn batch_norm(&mut self, bn: &BatchNorm, operands: &[NodeId]) -> Result<Last> {
        let (mean, var) = self.stats(operands, 1);
        let root = self.root(bn, var)?;
        let (scale, shift) = if bn.affine {
            let scale = self.b.div(&self.named("scale"), operands[3], root)?;
            let moved = self.b.mul(&self.named("moved"), mean, scale)?;
            (scale, self.b.sub(&self.named("shift"), operands[4], moved)?)
        } else {
            let one = self.scalar("one", 1.0)?;
            let scale = self.b.div(&self.named("scale"), one, root)?;
            let moved = self.b.mul(&self.named("moved"), mean, scale)?;
            (scale, self.b.neg(&self.named("shift"), moved)?)
        };
        let scale = self.r(scale, "scale")?;
        let shift = self.r(shift, "shift")?;
        let scaled = self.b.mul(&self.named("scaled"), self.x, scale)?;
        Ok((BinaryOp::Add, vec![scaled, shift]))
    }

    fn running(&mut self, r: &Running, stat: NodeId) -> Result<Last> {
        let batch = self
            .batch
            .expect("invariant: running nodes expand in train mode");
        let value = match r.stat {
            Stat::Mean => batch.mean,
            Stat::Var => {
                let n = per_channel(&self.shape());
                let name = self.named("n_minus_1");
                let unbiased = count(&mut self.b, &name, n - 1)?;
                self.b
                    .div(&self.named("unbiased"), batch.squares, unbiased)?
            }
        };
        let (m, keep) = r.weights_f32();
        let m = self.scalar("momentum", m)?;
        let keep = self.scalar("keep", keep)?;
        let new = self.b.mul(&self.named("batch"), m, value)?;
        let old = self.b.mul(&self.named("old"), keep, stat)?;
        Ok((BinaryOp::Add, vec![new, old]))
    }

    fn input_grad(&mut self, bn: &BatchNorm, operands: &[NodeId]) -> Result<Last> {
        let g = operands[0];
        let (_, var) = self.stats(operands, 2);
        let invstd = self.invstd(bn, var)?;
        let centred = match self.batch {
            Some(batch) => {
                let shape = self.shape();
                let name = self.named("n");
                let n = count(&mut self.b, &name, per_channel(&shape))?;
                let sum = self.b.sum(&self.named("sum_g"), g, axes(&shape), false)?;
                let grad_mean = self.b.div(&self.named("grad_mean"), sum, n)?;
                let dotp = self.dotp(batch.centred, g)?;
                let k = self.b.mul(&self.named("k"), dotp, invstd)?;
                let k = self.b.mul(&self.named("k"), k, invstd)?;
                let k = self.b.div(&self.named("k"), k, n)?;
                let grad_mean = self.r(grad_mean, "grad_mean")?;
                let k = self.r(k, "k")?;
                let shifted = self.b.sub(&self.named("shifted"), g, grad_mean)?;
                let along = self.b.mul(&self.named("along"), batch.centred, k)?;
                self.b.sub(&self.named("centred_g"), shifted, along)?
            }
            None => g,
        };
        let invstd = self.r(invstd, "invstd")?;
        if bn.affine {
            let dx = self.b.mul(&self.named("normalized"), centred, invstd)?;
            let w = self.r(operands[4], "weight")?;
            Ok((BinaryOp::Mul, vec![dx, w]))
        } else {
            Ok((BinaryOp::Mul, vec![centred, invstd]))
        }
    }

    fn weight_grad(&mut self, bn: &BatchNorm, operands: &[NodeId]) -> Result<Last> {
        let g = operands[0];
        let (mean, var) = self.stats(operands, 2);
        let centred = match self.batch {
            Some(batch) => batch.centred,
            None => {
                let mean = self.r(mean, "mean")?;
                self.b.sub(&self.named("centred"), self.x, mean)?
            }
        };
        let dotp = self.dotp(centred, g)?;
        let invstd = self.invstd(bn, var)?;
        Ok((BinaryOp::Mul, vec![dotp, invstd]))
    }

    /// `sum(centred * g, axes)`.
    fn dotp(&mut self, centred: NodeId, g: NodeId) -> Result<NodeId> {
        let product = self.b.mul(&self.named("centred_g"), centred, g)?;
        let shape = self.shape();
        self.b
            .sum(&self.named("dotp"), product, axes(&shape), false)
    }
}

/// Every axis of `shape` but the channels' (1).
fn axes(shape: &Shape) -> Vec<i64> {
    (0..shape.rank() as i64).filter(|&a| a != 1).collect()
}

/// The constant `n`, named `name` (exact in f32 up to 2^24 values per channel).
fn count(b: &mut Builder, name: &str, n: usize) -> Result<NodeId> {
    b.constant(name, Tensor::scalar(n as f32))
}

/// `v: [C]` reshaped to `[C, 1, ...]` to broadcast along the channels of `shape`, or `v`
/// itself for `[N, C]`.
fn channels(b: &mut Builder, name: &str, v: NodeId, shape: &Shape) -> Result<NodeId> {
    if shape.rank() == 2 {
        return Ok(v);
    }
    let mut dims = vec![shape.dims()[1]];
    dims.resize(shape.rank() - 1, 1);
    b.reshape(&format!("{name}.r"), v, &Shape::new(dims))
}
