//! Layer-norm expansion: every layer-norm node becomes the ordinary nodes that compute its
//! definition ([`crate::graph::layer_norm`]) in the same order of operations, so the rest of
//! the compiler (fusion, the memory plan, lowering) sees sums and element-wise ops only, and
//! compiled code equals the interpreter bit for bit.
//!
//! With `axes` the last `k` axes, every `sum` over them with `keepdim` (so a row's statistic
//! broadcasts along the row) and `n` the row's length:
//!
//! ```text
//! statistics   first = sum(x) / n;  mean = first + sum(x - first) / n;  centred = x - mean;  var = sum(centred * centred) / n;
//!              rstd = 1 / sqrt(var + eps);  xhat = centred * rstd
//! layer_norm   y = xhat * weight + bias  (as many of the two as the node has)
//! input grad   gw = g * weight (or g);  dx = (gw - sum(gw) / n - xhat * (sum(gw * xhat) / n))
//!              * rstd
//! weight grad  sum of g * xhat over the leading axes (with none, `0 + g * xhat`)
//! ```
//!
//! The node itself is rewritten into its last operation, so it keeps its name; the new nodes
//! are named after it (`ln1.mean`, `ln1.rstd`). The statistics of one input are built once and
//! shared by every node that reads them (the forward and both gradients of a training step).

use std::collections::BTreeMap;

use super::Stats;
use crate::error::Result;
use crate::graph::{BinaryOp, Builder, Graph, LayerNorm, Naming, NodeId, Op, ReduceOp};
use crate::tensor::Tensor;

/// Rewrites every layer-norm node of `graph`; see the module docs.
pub fn expand_layer_norm(graph: &mut Graph) -> Result<Stats> {
    let nodes: Vec<NodeId> = (graph.topo_order().into_iter())
        .filter(|&id| is_layer_norm(&graph[id].op))
        .collect();
    let mut stats = Stats::default();
    // The statistics of each (input, normalized shape, eps).
    let mut rows: BTreeMap<(NodeId, Vec<usize>, u64), Rows> = BTreeMap::new();
    for id in nodes {
        let (ln, x) = match &graph[id].op {
            Op::LayerNorm(ln) => (ln.clone(), graph.operands_of(id)[0]),
            Op::LayerNormInputGrad(ln) | Op::LayerNormWeightGrad(ln) => {
                (ln.clone(), graph.operands_of(id)[1])
            }
            _ => unreachable!("invariant: only layer-norm nodes were collected"),
        };
        let operands = graph.operands_of(id);
        let name = graph[id].name.clone();
        let key = (x, ln.normalized_shape.clone(), ln.eps.to_bits());
        let stats_of_x = match rows.get(&key) {
            Some(&found) => found,
            None => {
                let built = Rows::build(graph, &name, &ln, x)?;
                rows.insert(key, built);
                built
            }
        };
        let op = graph[id].op.clone();
        let mut b = Builder::new(graph, Naming::NUMBERED);
        let named = |what: &str| format!("{name}.{what}");
        let rows = stats_of_x;
        let binary = |op: BinaryOp, operands: Vec<NodeId>| (Op::Binary(op), operands);
        let (last, last_operands) = match &op {
            Op::LayerNorm(ln) => match (ln.weight, ln.bias) {
                (false, _) => binary(BinaryOp::Mul, vec![rows.centred, rows.rstd]),
                (true, false) => binary(BinaryOp::Mul, vec![rows.xhat, operands[1]]),
                (true, true) => {
                    let scaled = b.mul(&named("scaled"), rows.xhat, operands[1])?;
                    binary(BinaryOp::Add, vec![scaled, operands[2]])
                }
            },
            Op::LayerNormInputGrad(ln) => {
                let g = operands[0];
                let gw = match ln.weight {
                    true => b.mul(&named("gw"), g, operands[2])?,
                    false => g,
                };
                let axes = ln.axes(b.shape(x).rank());
                let sum = b.sum(&named("sum_gw"), gw, axes.clone(), true)?;
                let mean_gw = b.div(&named("mean_gw"), sum, rows.n)?;
                let product = b.mul(&named("gw_xhat"), gw, rows.xhat)?;
                let dot = b.sum(&named("dot"), product, axes, true)?;
                let mean_dot = b.div(&named("mean_dot"), dot, rows.n)?;
                let shifted = b.sub(&named("shifted"), gw, mean_gw)?;
                let along = b.mul(&named("along"), rows.xhat, mean_dot)?;
                let centred_g = b.sub(&named("centred_g"), shifted, along)?;
                binary(BinaryOp::Mul, vec![centred_g, rows.rstd])
            }
            Op::LayerNormWeightGrad(ln) => {
                let leading = b.shape(x).rank() - ln.rank();
                if leading == 0 {
                    // The one row's sum from +0.0: `0 + g * xhat` (so `-0.0` becomes `+0.0`).
                    let product = b.mul(&named("g_xhat"), operands[0], rows.xhat)?;
                    let zero = b.constant(&named("zero"), Tensor::scalar(0.0))?;
                    binary(BinaryOp::Add, vec![zero, product])
                } else {
                    let product = b.mul(&named("g_xhat"), operands[0], rows.xhat)?;
                    let sum = Op::Reduce {
                        op: ReduceOp::Sum,
                        axes: (0..leading as i64).collect(),
                        keepdim: false,
                    };
                    (sum, vec![product])
                }
            }
            _ => unreachable!("invariant: only layer-norm nodes were collected"),
        };
        graph.rewrite(id, last, &last_operands);
        stats.rewired += 1;
    }
    Ok(stats)
}

/// True if `graph` has a node this pass rewrites.
pub fn has_layer_norm(graph: &Graph) -> bool {
    graph.node_ids().any(|id| is_layer_norm(&graph[id].op))
}

/// True for the layer-norm ops this pass rewrites.
fn is_layer_norm(op: &Op) -> bool {
    matches!(
        op,
        Op::LayerNorm(_) | Op::LayerNormInputGrad(_) | Op::LayerNormWeightGrad(_)
    )
}

/// The row statistics of one input, shared by its nodes.
#[derive(Clone, Copy)]
struct Rows {
    /// The row length, a scalar constant.
    n: NodeId,
    /// `x - mean`.
    centred: NodeId,
    /// `1 / sqrt(var + eps)`, one per row (`keepdim`).
    rstd: NodeId,
    /// `centred * rstd`.
    xhat: NodeId,
}

impl Rows {
    fn build(graph: &mut Graph, name: &str, ln: &LayerNorm, x: NodeId) -> Result<Rows> {
        let mut b = Builder::new(graph, Naming::NUMBERED);
        let named = |what: &str| format!("{name}.{what}");
        let axes = ln.axes(b.shape(x).rank());
        // Exact in f32 up to 2^24 elements per row, as the interpreter's count.
        let n = b.constant(&named("n"), Tensor::scalar(ln.row_len() as f32))?;
        let sum = b.sum(&named("sum"), x, axes.clone(), true)?;
        let first = b.div(&named("first_mean"), sum, n)?;
        let off = b.sub(&named("off"), x, first)?;
        let offs = b.sum(&named("offs"), off, axes.clone(), true)?;
        let correction = b.div(&named("correction"), offs, n)?;
        let mean = b.add(&named("mean"), first, correction)?;
        let centred = b.sub(&named("centred"), x, mean)?;
        let square = b.mul(&named("square"), centred, centred)?;
        let squares = b.sum(&named("squares"), square, axes, true)?;
        let var = b.div(&named("var"), squares, n)?;
        let eps = b.constant(&named("eps"), Tensor::scalar(ln.eps_f32()))?;
        let shifted = b.add(&named("var_eps"), var, eps)?;
        let root = b.sqrt(&named("std"), shifted)?;
        let one = b.constant(&named("one"), Tensor::scalar(1.0))?;
        let rstd = b.div(&named("rstd"), one, root)?;
        let xhat = b.mul(&named("xhat"), centred, rstd)?;
        Ok(Rows {
            n,
            centred,
            rstd,
            xhat,
        })
    }
}
