//! The operations a node can perform: one plain data enum. It is matched exhaustively only
//! where an op's meaning lives (here: its name, arity, class and effects; type inference, the
//! text table, the interpreter, lowering dispatch and autodiff); every other stage asks an op
//! for its [`OpClass`] and its [`Effects`], so it never lists ops (see `ARCHITECTURE.md`).
//!
//! Semantics at the edges (the interpreter, `interp`, is the executable definition):
//! - Arithmetic follows IEEE 754 in f32: `x / 0` is ±inf, `log(-1)` and `sqrt(-1)` are NaN,
//!   NaN propagates through every op, including `relu(NaN) = NaN` and `maximum(NaN, x) = NaN`
//!   (as in PyTorch). `relu(-0.0) = +0.0`; `maximum(-0.0, +0.0) = +0.0`.
//! - Binary ops broadcast their operands with NumPy's rules.
//! - Axes may be negative (`-1` is the last axis), as in PyTorch. A reduction with an empty
//!   axis list reduces over every axis (PyTorch's `sum(dim=[])`). `sum` over an empty axis is
//!   0, `mean` over one is NaN, `amax` over one is a type error (PyTorch raises at run time).
//! - Every op works on `f32` except `input`, `constant`, `reshape` and `transpose`, which also
//!   carry `i32` and `bool`, `cross_entropy` and `cross_entropy_grad`, whose second operand
//!   holds `i32` class targets, `embedding` and `embedding_grad`, whose indices are `i32`,
//!   `where`, whose condition is `bool`, and the dropout masks and `tril`, which produce
//!   `bool`.
//! - The gradient ops (`relu_grad`, `selu_grad`, `equal`, `maximum_weight`, `expand`,
//!   `cross_entropy_grad`, the `*_dropout_grad` family) are what [`crate::autodiff`] emits;
//!   they are ordinary ops, printed, interpreted, fused and compiled like the others.

use std::fmt;

use super::batch_norm::{BatchNorm, Running};
use super::conv::Conv;
use super::dropout::Dropout;
use super::embedding::{Embedding, EmbeddingGrad};
use super::functions::{BinaryOp, ReduceOp, UnaryOp};
use super::layer_norm::LayerNorm;
use super::pool::{Pool, PoolKind, adaptive_grad_name, adaptive_name};
use crate::error::Error;
use crate::tensor::Tensor;
use crate::types::TensorType;

/// One operation. Operands are the node's incoming edges, in position order.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A value the caller supplies on every run, looked up by the node's name.
    Input(TensorType),
    /// A named trainable parameter; its value lives in a parameter store outside the graph.
    Parameter(TensorType),
    /// A scalar or small tensor literal.
    Constant(Tensor),
    /// One operand, element-wise.
    Unary(UnaryOp),
    /// Two operands, element-wise with NumPy broadcasting.
    Binary(BinaryOp),
    /// `a @ b` on operands of rank >= 2: the last two dimensions multiply as matrices, the
    /// leading (batch) dimensions broadcast, as in `torch.matmul`. With `transpose_a`
    /// (`transpose_b`) an operand's last two dimensions are swapped first, as in `tf.matmul`:
    /// the product reads the operand in place, with no transposed copy
    /// (`passes::fold_transpose` folds a `transpose` into them).
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// `y = x · Wᵀ + b` with `x: [..., in]`, weight `W: [out, in]` and, if `bias`, `b: [out]`
    /// (`torch.nn.functional.linear`). Operands: x, weight[, bias].
    Linear { bias: bool },
    /// The same elements in a new shape; at most one dimension may be `-1` (inferred).
    Reshape { shape: Vec<i64> },
    /// Permutes the dimensions: output dimension `i` is input dimension `perm[i]`
    /// (`torch.permute`).
    Transpose { perm: Vec<usize> },
    /// A reduction over `axes` (all axes if empty); `keepdim` keeps them as size 1.
    Reduce {
        op: ReduceOp,
        axes: Vec<i64>,
        keepdim: bool,
    },
    /// `exp(x - max) / sum(exp(x - max))` along `axis`.
    Softmax { axis: i64 },
    /// `(x - max) - log(sum(exp(x - max)))` along `axis`.
    LogSoftmax { axis: i64 },
    /// Mean over the batch of `-log_softmax(logits)[target]`. Operands: logits `[N, C]` (or
    /// `[C]`) and i32 targets `[N]` (or `[]`) in `0..C`; the result is a scalar. A target
    /// outside `0..C` is a run-time error (PyTorch's `ignore_index` is not supported).
    CrossEntropy,
    /// `torch.nn.functional.conv1d/2d/3d` with zero padding; see [`Conv`] (the definition,
    /// its order of operations and its shape rule). Operands: input, weight[, bias].
    Conv(Conv),
    /// `max_pool1d/2d/3d` and `avg_pool1d/2d/3d`; see [`Pool`] (the definition, NaN and
    /// padding included, and the shape rule).
    Pool(Pool),
    /// `adaptive_avg_pool1d/2d/3d` to these output sizes; see [`crate::graph::pool`].
    AdaptiveAvgPool { output: Vec<usize> },
    /// The gradient of a convolution with these attributes with respect to its input.
    /// Operands: the incoming gradient `g` (the convolution's output shape), the weight, and
    /// the input (for its shape alone). Input element `(n, g·C/groups + c, pos)` is, from
    /// `+0.0`, the sum over the kernel taps `k` in row-major order that reach it from an
    /// output position `y` (`y · stride + k · dilation - padding = pos`) of the sum, from
    /// `+0.0` over the group's output channels `o` ascending, of `w[o, c, k] * g[n, o, y]`
    /// (one rounding each, no FMA): a matrix product per image, then col2im.
    ConvInputGrad(Conv),
    /// The gradient of a convolution with these attributes with respect to its weight.
    /// Operands: `g`, the input `x`, and the weight (for its shape alone). Weight element
    /// `(o, c, k)` is, from `+0.0`, the sum over images `n` in order of each image's sum
    /// (from `+0.0`, output positions `y` in row-major order) of
    /// `x[n, g·C/groups + c, y · stride + k · dilation - padding] * g[n, o, y]`, a tap in the
    /// padding reading `+0.0` (as the forward's): one matrix product per image.
    ConvWeightGrad(Conv),
    /// The gradient of a pool with these attributes with respect to its input. Operands: `g`
    /// and the pool's input `x`. Input element `pos` sums, from `+0.0` over the output
    /// positions `y` in row-major order whose window holds it: for max, `g[y]` if `pos` is
    /// the window's maximum (the forward's rule: the first greater, or the last NaN); for
    /// average, `g[y] / count(y)` (the forward's count).
    PoolGrad(Pool),
    /// The gradient of adaptive average pooling to `output`. Operands: `g` and the input `x`
    /// (for its shape). Input element `pos` sums, from `+0.0` over the bins in row-major order
    /// that hold it, `g[bin] / size(bin)`.
    AdaptiveAvgPoolGrad { output: Vec<usize> },
    /// Any member of the dropout family; see [`Dropout`].
    Dropout(Dropout),
    /// The vector-Jacobian product of a dropout with these attributes, applied to the
    /// gradient `g` (the operand, of the dropout's input shape): `keep ? g * s : +0.0` with
    /// the SAME keep mask as that dropout (recomputed from seed, stream and step, never
    /// saved), `s` = [`Dropout::scale`] for the zeroing kinds and the alpha coefficient `a` for
    /// the alpha kinds (PyTorch's alpha dropout backward is `g * a * noise`). `p = 1` gives
    /// `+0.0`; eval mode and `p = 0` make it the identity. Never in place.
    DropoutGrad(Dropout),
    /// `torch.expand`: the operand broadcast (NumPy rules) to `shape`, which it has to
    /// broadcast to exactly. Element-wise: output element `i` reads the operand at its
    /// broadcast coordinates.
    Expand { shape: Vec<usize> },
    /// The gradient of `cross_entropy` with respect to its logits. Operands: logits `[N, C]`
    /// (or `[C]`), i32 targets `[N]` (or `[]`) and the scalar gradient `g` of the loss; the
    /// result has the logits' type: `(softmax(logits)[i] - (i == t ? 1 : 0)) * (g / N)` by
    /// row. A target outside `0..C` selects no class (no error: the forward reports it).
    CrossEntropyGrad,
    /// The keep mask (`true` = kept) of the dropout with these attributes applied to the
    /// operand, in the mask shape ([`Dropout::mask_shape`]): `torch.native_dropout`'s and ONNX
    /// Dropout's second output, one value per channel for the channel-wise kinds. The operand
    /// gives only the shape. The verifier requires a dropout of the graph with the same
    /// operand, kind, `p`, `broadcast_dims` and stream (the mask recomputes that dropout's
    /// draw). All true in eval mode and for `p = 0`, all false for `p = 1`; never in place.
    DropoutMask(Dropout),
    /// `torch.nn.functional.batch_norm` in the graph's mode: batch statistics in train mode,
    /// the running statistics in eval and Monte Carlo mode (and with `running_stats`); see [`crate::graph::batch_norm`]
    /// (the definition and its order of operations). Operands: `x [N, C, ...]`,
    /// `running_mean [C]`, `running_var [C]`[, `weight [C]`, `bias [C]` if affine].
    BatchNorm(BatchNorm),
    /// A running statistic of a batch normalization after this run: in train mode the
    /// momentum update with the batch's statistic, in eval and Monte Carlo mode the running
    /// statistic unchanged. Operands: `x` and the running statistic `[C]`.
    BatchNormRunning(Running),
    /// The gradient of a batch normalization with respect to its input, in the graph's mode
    /// (through the batch statistics in train mode). Operands: the incoming gradient `g`
    /// (`x`'s shape), `x`, `running_mean`, `running_var`[, `weight` if affine].
    BatchNormInputGrad(BatchNorm),
    /// The gradient of a batch normalization with respect to its weight, `[C]`, in the
    /// graph's mode. Operands: `g`, `x`, `running_mean`, `running_var`.
    BatchNormWeightGrad(BatchNorm),
    /// `torch.nn.functional.layer_norm` over the last dimensions; see
    /// [`crate::graph::layer_norm`] (the definition and its order of operations). Operands:
    /// `x [..., *normalized_shape]`[, `weight`[, `bias`]], each `normalized_shape`.
    LayerNorm(LayerNorm),
    /// The gradient of a layer normalization with respect to its input. Operands: the
    /// incoming gradient `g` (`x`'s shape), `x`[, `weight` if the normalization has one].
    LayerNormInputGrad(LayerNorm),
    /// The gradient of a layer normalization with respect to its weight, `normalized_shape`
    /// (summed over the leading dimensions). Operands: `g`, `x`.
    LayerNormWeightGrad(LayerNorm),
    /// `torch.nn.functional.embedding`: row `indices[p]` of the table at each position; see
    /// [`crate::graph::embedding`]. Operands: `indices` (i32, any shape `S`), `weight`
    /// `[num, dim]`; the value is `[*S, dim]`. An index outside `0..num` is a run-time error.
    Embedding(Embedding),
    /// The gradient of an embedding with respect to its table, `[num, dim]`: the scatter-add of
    /// `g` by `indices` in position order (the padding row stays zero). Operands: `g`
    /// (`[*S, dim]`), `indices` (i32 `S`).
    EmbeddingGrad(EmbeddingGrad),
    /// `torch.where(cond, a, b)`: `a` where `cond` holds, else `b`, the three broadcast
    /// (NumPy rules). Operands: `cond` (bool), `a` and `b` (f32). With `b` a `-inf`
    /// constant it is `masked_fill` before a softmax, whose masked elements are then exact
    /// zeros.
    Where,
    /// A boolean lower-triangular mask, `torch.ones(*shape, dtype=bool).tril(diagonal)`:
    /// element `[..., i, j]` holds iff `j <= i + diagonal` (attention's causal mask at
    /// `diagonal = 0`). No operands: its type is annotated, as an input's is, so the text
    /// never spells out a `[T, T]` literal; the compiler makes it a constant
    /// (`passes::materialize_tril`).
    Tril {
        /// The mask's shape, rank 2 or more.
        shape: crate::types::Shape,
        /// The last kept diagonal: 0 the main one, positive above it, negative below.
        diagonal: i64,
    },
}

impl Op {
    /// `a @ b` with neither operand transposed: `torch.matmul`.
    pub const MATMUL: Op = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
    };

    /// The spatial dimensions of an op computed plane by plane (max pooling, whose kernel
    /// walks planes, and the pool gradients, added into their output plane by plane); `None`
    /// for every other op.
    pub fn plane_spatial(&self) -> Option<usize> {
        match self {
            Op::Pool(p) if p.kind == PoolKind::Max => Some(p.spatial()),
            Op::PoolGrad(p) => Some(p.spatial()),
            Op::AdaptiveAvgPoolGrad { output } => Some(output.len()),
            _ => None,
        }
    }

    /// The op's name in the textual IR and in messages (`linear`, `dropout2d`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input(_) => "input",
            Op::Parameter(_) => "parameter",
            Op::Constant(_) => "constant",
            Op::Unary(op) => op.name(),
            Op::Binary(op) => op.name(),
            Op::MatMul { .. } => "matmul",
            Op::Linear { .. } => "linear",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Reduce { op, .. } => op.name(),
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::CrossEntropy => "cross_entropy",
            Op::Conv(c) => c.name(),
            Op::Pool(p) => p.name(),
            Op::AdaptiveAvgPool { output } => adaptive_name(output.len()),
            Op::ConvInputGrad(c) => c.input_grad_name(),
            Op::ConvWeightGrad(c) => c.weight_grad_name(),
            Op::PoolGrad(p) => p.grad_name(),
            Op::AdaptiveAvgPoolGrad { output } => adaptive_grad_name(output.len()),
            Op::Dropout(d) => d.kind.name(),
            Op::DropoutGrad(d) => d.kind.grad_name(),
            Op::Expand { .. } => "expand",
            Op::CrossEntropyGrad => "cross_entropy_grad",
            Op::DropoutMask(d) => d.kind.mask_name(),
            Op::BatchNorm(_) => "batch_norm",
            Op::BatchNormRunning(r) => r.name(),
            Op::BatchNormInputGrad(_) => "batch_norm_input_grad",
            Op::BatchNormWeightGrad(_) => "batch_norm_weight_grad",
            Op::LayerNorm(_) => "layer_norm",
            Op::LayerNormInputGrad(_) => "layer_norm_input_grad",
            Op::LayerNormWeightGrad(_) => "layer_norm_weight_grad",
            Op::Embedding(_) => "embedding",
            Op::EmbeddingGrad(_) => "embedding_grad",
            Op::Where => "where",
            Op::Tril { .. } => "tril",
        }
    }

    /// How many operands the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Tril { .. } => 0,
            Op::Where => 3,
            Op::Unary(_)
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Reduce { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Dropout(_)
            | Op::DropoutGrad(_)
            | Op::Expand { .. }
            | Op::Pool(_)
            | Op::AdaptiveAvgPool { .. }
            | Op::DropoutMask(_) => 1,
            Op::Binary(_) | Op::MatMul { .. } | Op::CrossEntropy => 2,
            Op::CrossEntropyGrad | Op::ConvInputGrad(_) | Op::ConvWeightGrad(_) => 3,
            Op::PoolGrad(_) | Op::AdaptiveAvgPoolGrad { .. } => 2,
            Op::Linear { bias } => 2 + usize::from(*bias),
            Op::Conv(c) => 2 + usize::from(c.bias),
            Op::BatchNormRunning(_) => 2,
            Op::BatchNormWeightGrad(_) => 4,
            Op::BatchNorm(bn) => 3 + 2 * usize::from(bn.affine),
            Op::BatchNormInputGrad(bn) => 4 + usize::from(bn.affine),
            Op::LayerNorm(ln) => 1 + usize::from(ln.weight) + usize::from(ln.bias),
            Op::LayerNormInputGrad(ln) => 2 + usize::from(ln.weight),
            Op::LayerNormWeightGrad(_) => 2,
            Op::Embedding(_) | Op::EmbeddingGrad(_) => 2,
        }
    }

    /// The op's class: what the scheduler, the memory plan and the phases need to know of it
    /// (see [`OpClass`]). The one place that sorts ops into classes.
    pub fn class(&self) -> OpClass<'_> {
        match self {
            Op::Input(_) => OpClass::Leaf(Leaf::Input),
            Op::Parameter(_) => OpClass::Leaf(Leaf::Parameter),
            // A constant the compiler computes before planning (`passes::materialize_tril`).
            Op::Constant(_) | Op::Tril { .. } => OpClass::Leaf(Leaf::Constant),
            Op::Where => OpClass::ElementWise(Elementwise::Where),
            Op::Reshape { .. } => OpClass::View,
            Op::Unary(op) => OpClass::ElementWise(Elementwise::Unary(*op)),
            Op::Binary(op) => OpClass::ElementWise(Elementwise::Binary(*op)),
            Op::Dropout(d) => OpClass::ElementWise(Elementwise::Dropout(d)),
            Op::DropoutGrad(d) => OpClass::ElementWise(Elementwise::DropoutGrad(d)),
            // An expand reads its operand with broadcast strides, like a binary op does.
            Op::Expand { .. } => OpClass::ElementWise(Elementwise::Expand),
            Op::Transpose { .. } => OpClass::Movement,
            Op::Reduce { .. } => OpClass::Reduction,
            Op::Softmax { axis } | Op::LogSoftmax { axis } => OpClass::Rows { axis: *axis },
            Op::CrossEntropyGrad => OpClass::Rows { axis: -1 },
            Op::MatMul { .. } => OpClass::Product { by_columns: false },
            Op::Linear { .. } => OpClass::Product { by_columns: true },
            Op::Conv(_) => OpClass::Convolution,
            Op::ConvWeightGrad(_) => OpClass::ConvolutionWeightGrad,
            Op::ConvInputGrad(_) => OpClass::ConvolutionInputGrad,
            Op::Pool(_)
            | Op::AdaptiveAvgPool { .. }
            | Op::PoolGrad(_)
            | Op::AdaptiveAvgPoolGrad { .. } => OpClass::Window,
            // The batch mean sums in one fixed order; a mask has the mask shape, not its
            // operand's, and reads no operand element.
            Op::CrossEntropy | Op::DropoutMask(_) => OpClass::Whole,
            // Per-channel statistics over the whole batch; the compiler's mode pass rewrites
            // every batch-norm node into ordinary nodes before planning.
            Op::BatchNorm(_)
            | Op::BatchNormRunning(_)
            | Op::BatchNormInputGrad(_)
            | Op::BatchNormWeightGrad(_) => OpClass::Whole,
            // Row statistics; `passes::expand_layer_norm` rewrites every layer-norm node into
            // ordinary nodes before planning.
            Op::LayerNorm(_) | Op::LayerNormInputGrad(_) | Op::LayerNormWeightGrad(_) => {
                OpClass::Whole
            }
            // A gather by checked indices, and a scatter-add in position order.
            Op::Embedding(_) | Op::EmbeddingGrad(_) => OpClass::Whole,
        }
    }

    /// What running the op does besides computing its value from its operands (see
    /// [`Effects`]). The one place that says which ops draw randomness, overwrite an operand or
    /// can fail at run time.
    pub fn effects(&self) -> Effects<'_> {
        match self {
            Op::Dropout(d) => Effects {
                draws: Some(d),
                overwrites: d.inplace.then_some(0),
                checked_indices: None,
            },
            Op::DropoutGrad(d) | Op::DropoutMask(d) => Effects {
                draws: Some(d),
                ..Effects::NONE
            },
            Op::CrossEntropy | Op::EmbeddingGrad(_) => Effects {
                checked_indices: Some(1),
                ..Effects::NONE
            },
            Op::Embedding(_) => Effects {
                checked_indices: Some(0),
                ..Effects::NONE
            },
            Op::Input(_)
            | Op::Parameter(_)
            | Op::Constant(_)
            | Op::Tril { .. }
            | Op::Where
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::MatMul { .. }
            | Op::Linear { .. }
            | Op::Conv(_)
            | Op::Pool(_)
            | Op::AdaptiveAvgPool { .. }
            | Op::ConvInputGrad(_)
            | Op::ConvWeightGrad(_)
            | Op::PoolGrad(_)
            | Op::AdaptiveAvgPoolGrad { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Reduce { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Expand { .. }
            | Op::CrossEntropyGrad
            | Op::BatchNorm(_)
            | Op::BatchNormRunning(_)
            | Op::BatchNormInputGrad(_)
            | Op::BatchNormWeightGrad(_)
            | Op::LayerNorm(_)
            | Op::LayerNormInputGrad(_)
            | Op::LayerNormWeightGrad(_) => Effects::NONE,
        }
    }

    /// The kind of leaf, for ops without operands.
    pub fn leaf(&self) -> Option<Leaf> {
        match self.class() {
            OpClass::Leaf(leaf) => Some(leaf),
            _ => None,
        }
    }

    /// True for ops without operands whose value comes from outside the graph or the op.
    pub fn is_leaf(&self) -> bool {
        self.leaf().is_some()
    }

    /// True for the leaves whose value the caller binds by name on every run (a compiled
    /// function's signature): inputs and parameters.
    pub fn is_bound(&self) -> bool {
        self.leaf().is_some_and(Leaf::is_bound)
    }

    /// True for the nodes a kernel has to compute: everything but leaves and views.
    pub fn computes(&self) -> bool {
        !matches!(self.class(), OpClass::Leaf(_) | OpClass::View)
    }

    /// True for ops that map each output element from the matching (broadcast) input
    /// elements alone: the candidates for loop fusion.
    pub fn is_elementwise(&self) -> bool {
        self.as_elementwise().is_some()
    }

    /// The op as an element-wise op, what a fused loop computes per element.
    pub fn as_elementwise(&self) -> Option<Elementwise<'_>> {
        match self.class() {
            OpClass::ElementWise(op) => Some(op),
            _ => None,
        }
    }

    /// The operand whose buffer the op overwrites with its result, if it asks to run in place
    /// (an `inplace` dropout: operand 0). Whether it may is [`crate::graph::verify`]'s
    /// invariant 9.
    pub fn reads_in_place(&self) -> Option<usize> {
        self.effects().overwrites
    }

    /// The dropout attributes whose mask the op draws (a dropout, its gradient or its mask),
    /// if it draws randomness at all: such a node's value depends on the run's step.
    pub fn draws(&self) -> Option<&Dropout> {
        self.effects().draws
    }

    /// The operand holding class indices that generated code checks against their bound
    /// before the op computes (a phase of its own; an index out of range is a run-time
    /// error): `cross_entropy`'s targets, an embedding's indices.
    pub fn checked_indices(&self) -> Option<usize> {
        self.effects().checked_indices
    }

    /// For an op with [`Op::checked_indices`], given its operands' types: the exclusive
    /// bound of the indices (the classes, the table's rows).
    pub fn index_bound(&self, operands: &[&TensorType]) -> usize {
        match self {
            Op::CrossEntropy => {
                *(operands[0].shape.dims().last()).expect("invariant: logits have rank 1 or 2")
            }
            Op::Embedding(_) => operands[1].shape.dims()[0],
            Op::EmbeddingGrad(e) => e.num_embeddings,
            _ => panic!("invariant: {} checks no indices", self.name()),
        }
    }

    /// The run-time error of node `node` (this op) for `index` at `position` of its checked
    /// indices, outside `0..bound`.
    pub fn index_error(&self, node: &str, bound: usize, index: i32, position: usize) -> Error {
        match self {
            Op::CrossEntropy => Error::TargetOutOfRange {
                node: node.to_string(),
                target: index,
                index: position,
                classes: bound,
            },
            _ => Error::IndexOutOfRange {
                node: node.to_string(),
                op: self.name(),
                index,
                position,
                bound,
            },
        }
    }

    /// True for every member of the dropout family (masks are not dropouts: see
    /// [`Op::as_dropout_mask`]).
    pub fn is_dropout(&self) -> bool {
        matches!(self, Op::Dropout(_))
    }

    /// The dropout attributes, if this is a dropout.
    pub fn as_dropout(&self) -> Option<&Dropout> {
        match self {
            Op::Dropout(d) => Some(d),
            _ => None,
        }
    }

    /// The attributes of the dropout whose keep mask this node draws and applies inside an
    /// element-wise loop: a dropout's own, or the forward dropout's for a dropout gradient.
    /// Masks (`dropout_mask`) draw in a kernel of their own and are not included.
    pub fn drawn_dropout(&self) -> Option<&Dropout> {
        self.as_elementwise().and_then(Elementwise::draws)
    }

    /// The attributes of the dropout whose mask this is, if this is a dropout mask.
    pub fn as_dropout_mask(&self) -> Option<&Dropout> {
        match self {
            Op::DropoutMask(d) => Some(d),
            _ => None,
        }
    }
}

/// What the compiler needs to know of an op to schedule, fuse, plan memory for and cut the
/// work of the kernel computing it, without naming the op ([`Op::class`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpClass<'a> {
    /// No operands: the value comes from the caller, the parameter store or the op itself.
    Leaf(Leaf),
    /// The operand's buffer under another shape (`reshape`): computes nothing.
    View,
    /// Each output element from the matching (broadcast) operand elements alone, as the
    /// element-wise op says: fused into one loop with its neighbours, the work cut into blocks
    /// of elements.
    ElementWise(Elementwise<'a>),
    /// Each output element is one operand element at permuted coordinates (`transpose`).
    Movement,
    /// Each output element folds the operand along axes (`sum`, `mean`, `amax`).
    Reduction,
    /// Each output element folds a window of its operand (the pools and their gradients):
    /// the output elements are the work units.
    Window,
    /// A convolution: per image, its columns (im2col) into a scratch buffer, then one matrix
    /// product per group on the GEMM; the images are the work units.
    Convolution,
    /// A convolution's weight gradient: per image, its columns and one product per group,
    /// added to the gradient image after image; one unit of work.
    ConvolutionWeightGrad,
    /// A convolution's input gradient: per image, one product per group into columns, then
    /// col2im; the images are the work units.
    ConvolutionInputGrad,
    /// Every row along `axis` computed as a whole (`softmax`, `log_softmax`,
    /// `cross_entropy_grad` along the classes): the rows are the work units.
    Rows { axis: i64 },
    /// A matrix product on the GEMM (`matmul`, `linear`): output rows are the work units, or
    /// output columns if `by_columns` and there are fewer rows than columns.
    Product { by_columns: bool },
    /// One unit of work for the whole value (`cross_entropy`'s batch mean sums in one fixed
    /// order; a dropout mask draws all its groups in one call).
    Whole,
}

/// What running an op does besides computing its value from its operands ([`Op::effects`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Effects<'a> {
    /// The dropout whose mask it draws: its value depends on the run's step, and passes must
    /// neither merge nor hoist it as if it did not.
    pub draws: Option<&'a Dropout>,
    /// The operand whose buffer it asks to overwrite with its result.
    pub overwrites: Option<usize>,
    /// The operand holding indices that generated code checks before the op computes: the op
    /// can fail at run time.
    pub checked_indices: Option<usize>,
}

impl Effects<'_> {
    /// No effect: a pure function of the operands.
    pub const NONE: Effects<'static> = Effects {
        draws: None,
        overwrites: None,
        checked_indices: None,
    };
}

/// The three leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leaf {
    /// A value the caller binds on every run.
    Input,
    /// A value of the parameter store, bound by name on every run.
    Parameter,
    /// The op's own data.
    Constant,
}

impl Leaf {
    /// True for inputs and parameters, whose values a run binds by name.
    pub fn is_bound(self) -> bool {
        match self {
            Leaf::Input | Leaf::Parameter => true,
            Leaf::Constant => false,
        }
    }

    /// `input`, `parameter` or `constant`, as messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Leaf::Input => "input",
            Leaf::Parameter => "parameter",
            Leaf::Constant => "constant",
        }
    }
}

/// An element-wise op as a fused loop computes it: one element from its operands' elements
/// ([`Op::as_elementwise`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Elementwise<'a> {
    /// A unary function.
    Unary(UnaryOp),
    /// A binary function of broadcast operands.
    Binary(BinaryOp),
    /// A dropout, applying its keep mask.
    Dropout(&'a Dropout),
    /// A dropout gradient, applying the same keep mask.
    DropoutGrad(&'a Dropout),
    /// The operand read at broadcast coordinates: the loop's load is the whole op.
    Expand,
    /// `cond ? a : b` of broadcast operands, `cond` a bool.
    Where,
}

impl<'a> Elementwise<'a> {
    /// The dropout whose keep mask the element applies, if it applies one.
    pub fn draws(self) -> Option<&'a Dropout> {
        match self {
            Elementwise::Dropout(d) | Elementwise::DropoutGrad(d) => Some(d),
            Elementwise::Unary(_)
            | Elementwise::Binary(_)
            | Elementwise::Expand
            | Elementwise::Where => None,
        }
    }

    /// True if four lanes of it compute exactly what four scalar elements do, so a fused loop
    /// of such ops may run on `f32x4` vectors. Calls (`exp`, `log` and what uses them) have no
    /// vector form; `expand` has one where the loop reads its operand in broadcast form.
    pub fn has_vector_form(self) -> bool {
        match self {
            Elementwise::Unary(op) => op.has_vector_form(),
            Elementwise::Binary(op) => op.has_vector_form(),
            // An expand is its operand read in broadcast form: the plan gives the vector
            // form only where the loop can read it so (`plan::vector`).
            Elementwise::Dropout(_) | Elementwise::DropoutGrad(_) | Elementwise::Expand => true,
            // Its condition is a byte per element, not an f32 lane.
            Elementwise::Where => false,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
