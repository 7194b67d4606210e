//! The evaluation loop: every node in topological order, one match arm per op.

use std::collections::BTreeMap;

use crate::alloc;
use crate::error::{Error, Result};
use crate::graph::batch_norm::per_channel;
use crate::graph::infer::reduced_axes;
use crate::graph::verify::verify;
use crate::graph::{BatchNorm, DType, Graph, Mode, Node, NodeId, Op, Shape, steps_per_run};
use crate::math::Element;
use crate::rng::Generator;
use crate::rng::mask::MaskSource;

use super::value::{Array, Value};
use super::{
    batch_norm, bind, conv, dropout, elementwise, embedding, layer_norm, layout, linalg, pool,
    reduce, softmax,
};

/// Every node's value after one run, indexed by [`crate::graph::NodeId::index`].
pub(crate) struct Evaluation<T> {
    /// `Some` for every live node.
    pub(crate) values: Vec<Option<Value<T>>>,
    /// The (first) step a drawing run claimed.
    pub(crate) step: Option<u32>,
}

impl<T> Evaluation<T> {
    /// The value of a live node.
    pub(crate) fn value(&self, index: usize) -> &Value<T> {
        self.values[index]
            .as_ref()
            .expect("invariant: every node in the run's scope was evaluated")
    }
}

/// Which nodes a run evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The nodes the outputs depend on. A dead node computes nothing, allocates nothing and
    /// fails nothing, exactly as in compiled code, whose passes remove it.
    Outputs,
    /// Every node, for a trace of every value.
    EveryNode,
}

/// Verifies `graph`, checks `values`, claims its steps in a drawing mode, then evaluates the nodes
/// `scope` asks for, in topological order. A run rejected before evaluation leaves the
/// generator untouched.
pub(crate) fn evaluate<T: Element>(
    graph: &Graph,
    mode: Mode,
    generator: &mut Generator,
    values: &BTreeMap<String, Value<T>>,
    scope: Scope,
) -> Result<Evaluation<T>> {
    verify(graph)?;
    bind::check(graph, values)?;
    let step = match mode {
        Mode::Train | Mode::Mc => Some(generator.claim_run(steps_per_run(graph))?),
        Mode::Eval => None,
    };
    let order = graph.topo_order();
    let slots = order.iter().map(|id| id.index() + 1).max().unwrap_or(0);
    let live = match scope {
        Scope::Outputs => live_nodes(graph, slots),
        Scope::EveryNode => vec![true; slots],
    };
    let mut computed: Vec<Option<Value<T>>> = (0..slots).map(|_| None).collect();
    for id in order.into_iter().filter(|id| live[id.index()]) {
        let operands: Vec<&Value<T>> = graph
            .operands_of(id)
            .iter()
            .map(|o| {
                computed[o.index()]
                    .as_ref()
                    .expect("invariant: operands are evaluated before their users")
            })
            .collect();
        let needed = bytes_needed::<T>(graph, id);
        alloc::probe(needed, || format!("the value of %{}", graph[id].name))?;
        let cx = NodeCx {
            node: &graph[id],
            operands: &operands,
            values,
            seed: generator.seed(),
            step,
            mode,
        };
        let value = cx.evaluate()?;
        computed[id.index()] = Some(value);
    }
    Ok(Evaluation {
        values: computed,
        step,
    })
}

/// By node index: whether some output depends on the node.
fn live_nodes(graph: &Graph, slots: usize) -> Vec<bool> {
    let mut live = vec![false; slots];
    let mut pending: Vec<NodeId> = graph.outputs().iter().map(|o| o.node).collect();
    while let Some(id) = pending.pop() {
        if !std::mem::replace(&mut live[id.index()], true) {
            pending.extend(graph.operands_of(id));
        }
    }
    live
}

/// The most bytes evaluating `id` allocates at once: its value (in `T` for floats) and, for a
/// node that draws, its mask's uniforms and keep bits (`None` past `usize::MAX`). The kernels allocate through plain
/// collections, so the evaluation loop asks the system for this much first
/// ([`alloc::probe`]): memory it refuses is an error, not an abort.
fn bytes_needed<T>(graph: &Graph, id: NodeId) -> Option<usize> {
    let ty = &graph[id].ty;
    let element = match ty.dtype {
        DType::F32 => size_of::<T>(),
        DType::I32 | DType::Bool => ty.dtype.size(),
    };
    let value = ty.shape.checked_numel()?.checked_mul(element)?;
    let op = &graph[id].op;
    let input = || &graph[graph.operands_of(id)[0]].ty.shape;
    let drawn = if let Some(d) = op.drawn_dropout() {
        d.read_mask_len(input()).unwrap_or(0)
    } else if let Some(d) = op.as_dropout_mask() {
        d.mask_shape(input()).map_or(0, |mask| mask.numel())
    } else {
        0
    };
    let mask = drawn.checked_mul(size_of::<u32>() + size_of::<bool>())?;
    value.checked_add(mask)
}

/// What evaluating one node needs.
struct NodeCx<'a, T> {
    node: &'a Node,
    operands: &'a [&'a Value<T>],
    values: &'a BTreeMap<String, Value<T>>,
    seed: u64,
    step: Option<u32>,
    mode: Mode,
}

impl<T: Element> NodeCx<'_, T> {
    fn float(&self, i: usize) -> &Array<T> {
        self.operands[i].float()
    }

    /// The statistics a batch-norm node (input operand `x`, running mean and variance
    /// operands `stats`) normalizes with: the batch's in train mode unless `bn` pins the
    /// running ones (`None`; a single value per channel is an error, as in PyTorch), the
    /// running ones otherwise.
    fn batch_norm_stats(
        &self,
        bn: &BatchNorm,
        x: usize,
        stats: usize,
    ) -> Result<Option<(&Array<T>, &Array<T>)>> {
        if !bn.running_stats && self.batch_norm_trains(x)? {
            Ok(None)
        } else {
            Ok(Some((self.float(stats), self.float(stats + 1))))
        }
    }

    /// True in train mode, where a batch-norm node with input operand `x` uses the batch's
    /// statistics: an error if it has a single value per channel, as in PyTorch.
    fn batch_norm_trains(&self, x: usize) -> Result<bool> {
        if self.mode != Mode::Train {
            return Ok(false);
        }
        let shape = &self.float(x).shape;
        if per_channel(shape) == 1 {
            return Err(Error::BatchNormSingleValue {
                node: self.node.name.clone(),
                op: self.node.op.name(),
                shape: shape.clone(),
            });
        }
        Ok(true)
    }

    fn evaluate(&self) -> Result<Value<T>> {
        let out = &self.node.ty.shape;
        let value = match &self.node.op {
            Op::Input(_) | Op::Parameter(_) => self
                .values
                .get(&self.node.name)
                .expect("invariant: bindings were checked before the run")
                .clone(),
            Op::Constant(tensor) => Value::from_tensor(tensor),
            Op::Tril { shape, diagonal } => {
                Value::from_tensor(&super::tril_mask(shape, *diagonal)?)
            }
            Op::Where => {
                let cond = self.operands[0].boolean();
                let (a, b) = (self.float(1), self.float(2));
                Value::Float(elementwise::select(cond, a, b, out))
            }
            Op::Unary(op) => Value::Float(elementwise::unary(*op, self.float(0))),
            Op::Binary(op) => {
                Value::Float(elementwise::binary(*op, self.float(0), self.float(1), out))
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => Value::Float(linalg::matmul(
                (self.float(0), *transpose_a),
                (self.float(1), *transpose_b),
                out,
            )),
            Op::Linear { bias } => {
                let b = bias.then(|| self.float(2));
                Value::Float(linalg::linear(self.float(0), self.float(1), b, out))
            }
            Op::Conv(c) => {
                let b = c.bias.then(|| self.float(2));
                Value::Float(conv::conv(c, self.float(0), self.float(1), b, out))
            }
            Op::Pool(p) => Value::Float(pool::pool(p, self.float(0), out)),
            Op::AdaptiveAvgPool { output } => {
                Value::Float(pool::adaptive_avg_pool(self.float(0), out, output.len()))
            }
            Op::ConvInputGrad(c) => {
                Value::Float(conv::conv_input_grad(c, self.float(0), self.float(1), out))
            }
            Op::ConvWeightGrad(c) => {
                Value::Float(conv::conv_weight_grad(c, self.float(0), self.float(1), out))
            }
            Op::PoolGrad(p) => Value::Float(pool::pool_grad(p, self.float(0), self.float(1))),
            Op::AdaptiveAvgPoolGrad { output } => Value::Float(pool::adaptive_avg_pool_grad(
                self.float(0),
                out,
                output.len(),
            )),
            Op::Reshape { .. } => layout::reshape(self.operands[0], out),
            Op::Transpose { perm } => layout::transpose(self.operands[0], perm),
            Op::Reduce { op, axes, .. } => {
                let x = self.float(0);
                let axes = reduced_axes(&x.shape, axes).expect("invariant: the axes were inferred");
                Value::Float(reduce::reduce(*op, x, &axes, out))
            }
            Op::Softmax { axis } => Value::Float(softmax::softmax(self.float(0), *axis)),
            Op::LogSoftmax { axis } => Value::Float(softmax::log_softmax(self.float(0), *axis)),
            Op::CrossEntropy => {
                let targets = self.operands[1].int();
                let loss = softmax::cross_entropy(&self.node.name, self.float(0), targets)?;
                Value::Float(Array::filled(Shape::scalar(), vec![loss]))
            }
            Op::Dropout(d) => {
                let source = self.step.map(|step| MaskSource {
                    seed: self.seed,
                    stream: d.stream,
                    step,
                });
                Value::Float(dropout::dropout(d, self.float(0), source))
            }
            Op::DropoutGrad(d) => {
                let source = self.step.map(|step| MaskSource {
                    seed: self.seed,
                    stream: d.stream,
                    step,
                });
                Value::Float(dropout::dropout_grad(d, self.float(0), source))
            }
            Op::Expand { .. } => Value::Float(layout::expand(self.float(0), out)),
            Op::CrossEntropyGrad => {
                let targets = self.operands[1].int();
                let g = self.float(2).data[0];
                Value::Float(softmax::cross_entropy_grad(self.float(0), targets, g))
            }
            Op::DropoutMask(d) => {
                let source = self.step.map(|step| MaskSource {
                    seed: self.seed,
                    stream: d.stream,
                    step,
                });
                Value::Bool(dropout::mask(d, &self.float(0).shape, source))
            }
            Op::BatchNorm(bn) => {
                let running = self.batch_norm_stats(bn, 0, 1)?;
                let affine = bn.affine.then(|| (self.float(3), self.float(4)));
                Value::Float(batch_norm::batch_norm(bn, self.float(0), running, affine))
            }
            Op::BatchNormRunning(r) => {
                let train = self.batch_norm_trains(0)?;
                Value::Float(batch_norm::running(r, self.float(0), self.float(1), train))
            }
            Op::BatchNormInputGrad(bn) => {
                let running = self.batch_norm_stats(bn, 1, 2)?;
                let weight = bn.affine.then(|| self.float(4));
                let (g, x) = (self.float(0), self.float(1));
                Value::Float(batch_norm::input_grad(bn, g, x, running, weight))
            }
            Op::BatchNormWeightGrad(bn) => {
                let running = self.batch_norm_stats(bn, 1, 2)?;
                let (g, x) = (self.float(0), self.float(1));
                Value::Float(batch_norm::weight_grad(bn, g, x, running))
            }
            Op::Embedding(_) => {
                let indices = self.operands[0].int();
                let node = &self.node.name;
                Value::Float(embedding::embedding(
                    &self.node.op,
                    node,
                    indices,
                    self.float(1),
                )?)
            }
            Op::EmbeddingGrad(e) => {
                let indices = self.operands[1].int();
                let (op, node, num) = (&self.node.op, &self.node.name, e.num_embeddings);
                let grad = embedding::embedding_grad(
                    op,
                    node,
                    self.float(0),
                    indices,
                    num,
                    e.padding_idx,
                )?;
                Value::Float(grad)
            }
            Op::LayerNorm(ln) => {
                let weight = ln.weight.then(|| self.float(1));
                let bias = ln.bias.then(|| self.float(2));
                Value::Float(layer_norm::layer_norm(ln, self.float(0), weight, bias))
            }
            Op::LayerNormInputGrad(ln) => {
                let weight = ln.weight.then(|| self.float(2));
                let (g, x) = (self.float(0), self.float(1));
                Value::Float(layer_norm::input_grad(ln, g, x, weight))
            }
            Op::LayerNormWeightGrad(ln) => {
                let (g, x) = (self.float(0), self.float(1));
                Value::Float(layer_norm::weight_grad(ln, g, x))
            }
        };
        Ok(value)
    }
}
