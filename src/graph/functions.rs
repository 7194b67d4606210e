//! The functions inside the element-wise and reduction ops ([`super::Op::Unary`],
//! [`super::Op::Binary`], [`super::Op::Reduce`]): their names in the textual IR and which of
//! them have vector forms. Their arithmetic is defined once, in [`crate::math`].

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
    /// The hyperbolic tangent (`tanh(±0) = ±0`, `tanh(±inf) = ±1`).
    Tanh,
    /// The logistic function `1 / (1 + exp(-x))` (`sigmoid(-inf) = 0`, `sigmoid(inf) = 1`).
    Sigmoid,
    /// `torch.nn.functional.gelu`: `(x * 0.5) * (1 + erf(x * (1 / sqrt 2)))`, or with
    /// [`Approximate::Tanh`] `(0.5 * x) * (1 + tanh(b * (x + k * ((x * x) * x))))` with
    /// `b = sqrt(2 / pi)` and `k = 0.044715` (PyTorch's CPU kernel, its order).
    Gelu(Approximate),
}

/// GELU's `approximate` argument, as PyTorch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Approximate {
    /// The exact form, with `erf` (PyTorch's default, `approximate='none'`).
    None,
    /// The tanh approximation (`approximate='tanh'`).
    Tanh,
}

impl Approximate {
    /// Both, the default first.
    pub const ALL: [Approximate; 2] = [Approximate::None, Approximate::Tanh];

    /// The value of the `approximate` attribute in the textual IR.
    pub fn name(self) -> &'static str {
        match self {
            Approximate::None => "none",
            Approximate::Tanh => "tanh",
        }
    }
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
    /// `gelu_grad(g, x)`: `g` times GELU's derivative at `x`, PyTorch's `gelu_backward` in
    /// its order ([`crate::math::gelu_grad`]), for either approximation.
    GeluGrad(Approximate),
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
    /// Every unary op, each GELU approximation apart, for tests and the parser.
    pub const ALL: [UnaryOp; 10] = [
        UnaryOp::Neg,
        UnaryOp::Relu,
        UnaryOp::Selu,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Gelu(Approximate::None),
        UnaryOp::Gelu(Approximate::Tanh),
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
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Gelu(_) => "gelu",
        }
    }

    /// True if the op has an `f32x4` form bit-identical to its scalar one (`log`, a call of
    /// the platform's, has none).
    pub fn has_vector_form(self) -> bool {
        match self {
            UnaryOp::Neg
            | UnaryOp::Relu
            | UnaryOp::Sqrt
            | UnaryOp::Selu
            | UnaryOp::Exp
            | UnaryOp::Tanh
            | UnaryOp::Sigmoid
            | UnaryOp::Gelu(_) => true,
            UnaryOp::Log => false,
        }
    }
}

impl BinaryOp {
    /// Every binary op, each GELU approximation apart, for tests and the parser.
    pub const ALL: [BinaryOp; 11] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::ReluGrad,
        BinaryOp::SeluGrad,
        BinaryOp::Equal,
        BinaryOp::MaxWeight,
        BinaryOp::GeluGrad(Approximate::None),
        BinaryOp::GeluGrad(Approximate::Tanh),
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
            BinaryOp::GeluGrad(_) => "gelu_grad",
        }
    }

    /// True if the op has an `f32x4` form bit-identical to its scalar one (all do).
    pub fn has_vector_form(self) -> bool {
        match self {
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Max
            | BinaryOp::ReluGrad
            | BinaryOp::SeluGrad
            | BinaryOp::Equal
            | BinaryOp::MaxWeight
            | BinaryOp::GeluGrad(_) => true,
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
