//! The operations a node can perform: one plain data enum, matched exhaustively everywhere.
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
//!   holds `i32` class targets, and the dropout masks, which produce `bool`.
//! - The gradient ops (`relu_grad`, `selu_grad`, `equal`, `maximum_weight`, `expand`,
//!   `cross_entropy_grad`, the `*_dropout_grad` family) are what [`crate::autodiff`] emits;
//!   they are ordinary ops, printed, interpreted, fused and compiled like the others.

use std::fmt;

use super::dropout::Dropout;
use super::types::TensorType;
use crate::tensor::Tensor;

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
    /// leading (batch) dimensions broadcast, as in `torch.matmul`.
    MatMul,
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
}

/// Element-wise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x` (flips the sign bit, so `-(+0.0) = -0.0`).
    Neg,
    /// `x > 0 ? x : +0.0`, with NaN kept.
    Relu,
    /// `scale * (x > 0 ? x : alpha * (exp(x) - 1))` with PyTorch's alpha and scale.
    Selu,
    /// `e^x`.
    Exp,
    /// The natural logarithm.
    Log,
    /// The square root (`sqrt(-0.0) = -0.0`).
    Sqrt,
}

/// Element-wise functions of two operands, broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `torch.maximum`: NaN if either side is NaN.
    Max,
    /// `relu_grad(g, x) = x <= 0 ? +0.0 : g` (PyTorch's `threshold_backward`, a select, not
    /// a multiply): NaN `x` passes `g` through, as relu passes NaN through.
    ReluGrad,
    /// `selu_grad(g, x) = x <= 0 ? (g * (ALPHA * SCALE)) * exp(x) : g * SCALE` (PyTorch's
    /// `elu_backward` with `input_scale = 1`, `ALPHA * SCALE` rounded once to the float type).
    SeluGrad,
    /// `a == b ? 1.0 : 0.0` (the tie mask of `amax`'s gradient).
    Equal,
    /// `maximum_weight(a, b) = a < b ? 0.0 : (a == b ? 0.5 : 1.0)`: the share of
    /// `maximum(a, b)`'s gradient that flows to `a` (PyTorch: half to each side of a tie; a
    /// NaN on either side gives `a` the whole gradient).
    MaxWeight,
}

/// Reductions over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum in row-major order of the reduced elements.
    Sum,
    /// Sum divided by the number of reduced elements.
    Mean,
    /// The largest element; NaN if any is NaN (`torch.amax`).
    Max,
}

impl UnaryOp {
    /// Every unary op, for tests and the parser.
    pub const ALL: [UnaryOp; 6] = [
        UnaryOp::Neg,
        UnaryOp::Relu,
        UnaryOp::Selu,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
    ];

    /// The op's name in the textual IR.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Relu => "relu",
            UnaryOp::Selu => "selu",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
        }
    }
}

impl BinaryOp {
    /// Every binary op, for tests and the parser.
    pub const ALL: [BinaryOp; 9] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::ReluGrad,
        BinaryOp::SeluGrad,
        BinaryOp::Equal,
        BinaryOp::MaxWeight,
    ];

    /// The op's name in the textual IR.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::ReluGrad => "relu_grad",
            BinaryOp::SeluGrad => "selu_grad",
            BinaryOp::Equal => "equal",
            BinaryOp::MaxWeight => "maximum_weight",
        }
    }
}

impl ReduceOp {
    /// Every reduction, for tests and the parser.
    pub const ALL: [ReduceOp; 3] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max];

    /// The op's name in the textual IR.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "amax",
        }
    }
}

impl Op {
    /// The op's name in the textual IR and in messages (`linear`, `dropout2d`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input(_) => "input",
            Op::Parameter(_) => "parameter",
            Op::Constant(_) => "constant",
            Op::Unary(op) => op.name(),
            Op::Binary(op) => op.name(),
            Op::MatMul => "matmul",
            Op::Linear { .. } => "linear",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Reduce { op, .. } => op.name(),
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::CrossEntropy => "cross_entropy",
            Op::Dropout(d) => d.kind.name(),
            Op::DropoutGrad(d) => d.kind.grad_name(),
            Op::Expand { .. } => "expand",
            Op::CrossEntropyGrad => "cross_entropy_grad",
            Op::DropoutMask(d) => d.kind.mask_name(),
        }
    }

    /// How many operands the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input(_) | Op::Parameter(_) | Op::Constant(_) => 0,
            Op::Unary(_)
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Reduce { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Dropout(_)
            | Op::DropoutGrad(_)
            | Op::Expand { .. }
            | Op::DropoutMask(_) => 1,
            Op::Binary(_) | Op::MatMul | Op::CrossEntropy => 2,
            Op::CrossEntropyGrad => 3,
            Op::Linear { bias } => 2 + usize::from(*bias),
        }
    }

    /// True for ops without operands whose value comes from outside the graph or the op.
    pub fn is_leaf(&self) -> bool {
        self.arity() == 0
    }

    /// `"input"` or `"parameter"` for the leaves whose value the caller binds by name on every
    /// run (a compiled function's signature), `None` for every other op.
    pub fn bound_kind(&self) -> Option<&'static str> {
        match self {
            Op::Input(_) => Some("input"),
            Op::Parameter(_) => Some("parameter"),
            Op::Constant(_)
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::MatMul
            | Op::Linear { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Reduce { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::CrossEntropy
            | Op::Dropout(_)
            | Op::DropoutGrad(_)
            | Op::Expand { .. }
            | Op::CrossEntropyGrad
            | Op::DropoutMask(_) => None,
        }
    }

    /// True for ops that map each output element from the matching (broadcast) input
    /// elements alone: the candidates for loop fusion.
    pub fn is_elementwise(&self) -> bool {
        match self {
            // An expand reads its operand with broadcast strides, like a binary op does.
            Op::Unary(_)
            | Op::Binary(_)
            | Op::Dropout(_)
            | Op::DropoutGrad(_)
            | Op::Expand { .. } => true,
            Op::Input(_)
            | Op::Parameter(_)
            | Op::Constant(_)
            | Op::MatMul
            | Op::Linear { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Reduce { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::CrossEntropy
            | Op::CrossEntropyGrad
            // A mask has the mask shape, not its operand's, and reads no operand element.
            | Op::DropoutMask(_) => false,
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
        match self {
            Op::Dropout(d) | Op::DropoutGrad(d) => Some(d),
            _ => None,
        }
    }

    /// The attributes of the dropout whose mask this is, if this is a dropout mask.
    pub fn as_dropout_mask(&self) -> Option<&Dropout> {
        match self {
            Op::DropoutMask(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
