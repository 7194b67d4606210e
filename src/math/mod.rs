//! The scalar definition of every element-wise function: one place that says what `relu(-0.0)`,
//! `maximum(NaN, 1)` or a kept alpha-dropout element is.
//!
//! The interpreter maps these over tensors; the JIT must reproduce them bit for bit. `exp`,
//! `tanh` and `erf` in f32 are this module's own definitions ([`exp_f32`], [`tanh_f32`],
//! [`erf_f32`]: range reduction and polynomials in IEEE operations, comparisons, selects and
//! exponent bits), which the JIT emits inline in the same order, scalar and in `f32x4` lanes,
//! so the ops built on them (sigmoid, SELU, GELU, softmax) run in vector loops. `log` stays
//! the platform's, an `extern "C"` function the JIT imports (`crate::jit`'s imports); `sqrt`
//! is one correctly rounded IEEE operation, an instruction on either side. Everything else is
//! a handful of IEEE operations the JIT emits inline, in the order written here (no FMA: Rust
//! never fuses `a * b + c` on its own). The f64 functions, for gradient checks, are libm's
//! (`exp`, `log`, `tanh`) and a series ([`erf_f64`]).
//!
//! The definitions are generic over [`Element`] (`f32`, and `f64` for gradient checks) so both
//! precisions share one text.

use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::graph::{Approximate, BinaryOp, Dropout, UnaryOp};

mod transcendental;

pub(crate) use transcendental::{erf_constants, exp_constants, tanh_constants};
pub use transcendental::{erf_f32, erf_f64, exp_f32, tanh_f32};

/// SELU's alpha, as PyTorch writes it (rounded to the float type in use).
#[allow(clippy::excessive_precision)]
pub const SELU_ALPHA: f64 = 1.6732632423543772848170429916717;

/// SELU's scale, as PyTorch writes it (rounded to the float type in use).
#[allow(clippy::excessive_precision)]
pub const SELU_SCALE: f64 = 1.0507009873554804934193349852946;

/// The natural logarithm in f32 (`log(0) = -inf`, `log(-1) = NaN`).
pub extern "C" fn log_f32(x: f32) -> f32 {
    x.ln()
}

/// The square root in f32 (`sqrt(-0.0) = -0.0`, `sqrt(-1) = NaN`).
pub extern "C" fn sqrt_f32(x: f32) -> f32 {
    x.sqrt()
}

/// `e^x` in f64.
pub extern "C" fn exp_f64(x: f64) -> f64 {
    x.exp()
}

/// The natural logarithm in f64.
pub extern "C" fn log_f64(x: f64) -> f64 {
    x.ln()
}

/// The square root in f64.
pub extern "C" fn sqrt_f64(x: f64) -> f64 {
    x.sqrt()
}

/// The hyperbolic tangent in f64.
pub extern "C" fn tanh_f64(x: f64) -> f64 {
    x.tanh()
}

/// A float type the element-wise definitions (and the interpreter's kernels) are written for:
/// `f32`, the graph's element type, and `f64`, for checking gradients.
pub trait Element:
    Copy
    + PartialOrd
    + fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    /// `+0.0`.
    const ZERO: Self;
    /// `1.0`.
    const ONE: Self;
    /// `-inf`, the identity of `maximum`.
    const NEG_INFINITY: Self;
    /// [`SELU_ALPHA`] rounded to this type.
    const SELU_ALPHA: Self;
    /// [`SELU_SCALE`] rounded to this type.
    const SELU_SCALE: Self;

    /// `e^x` ([`exp_f32`] / [`exp_f64`]).
    fn exp(self) -> Self;
    /// The natural logarithm ([`log_f32`] / [`log_f64`]).
    fn ln(self) -> Self;
    /// The square root ([`sqrt_f32`] / [`sqrt_f64`]).
    fn sqrt(self) -> Self;
    /// The hyperbolic tangent ([`tanh_f32`] / [`tanh_f64`]).
    fn tanh(self) -> Self;
    /// The error function ([`erf_f32`] / [`erf_f64`]).
    fn erf(self) -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// An f32 value (a graph constant) in this type; exact.
    fn from_f32(x: f32) -> Self;
    /// An f64 constant rounded to this type (as C++'s `opmath_t(M_SQRT1_2)` is).
    fn from_f64(x: f64) -> Self;
    /// An element count in this type (`n as f32` for f32), for `mean` and `cross_entropy`.
    fn from_count(n: usize) -> Self;
    /// The keep-scale of the zeroing dropouts: [`Dropout::scale`] in f32, `1 / (1 - p)` in f64.
    fn dropout_scale(d: &Dropout) -> Self;
    /// The kept-gradient factor of a dropout gradient: [`Dropout::grad_scale`] in f32,
    /// [`Dropout::grad_scale_f64`] in f64.
    fn dropout_grad_scale(d: &Dropout) -> Self;
    /// `(a, b, c)` of the alpha dropouts: [`Dropout::alpha_coefficients`] in f32,
    /// [`Dropout::alpha_coefficients_f64`] in f64.
    fn alpha_coefficients(d: &Dropout) -> (Self, Self, Self);
}

impl Element for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
    const SELU_ALPHA: f32 = SELU_ALPHA as f32;
    const SELU_SCALE: f32 = SELU_SCALE as f32;

    fn exp(self) -> f32 {
        exp_f32(self)
    }
    fn ln(self) -> f32 {
        log_f32(self)
    }
    fn sqrt(self) -> f32 {
        sqrt_f32(self)
    }
    fn tanh(self) -> f32 {
        tanh_f32(self)
    }
    fn erf(self) -> f32 {
        erf_f32(self)
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn from_f32(x: f32) -> f32 {
        x
    }
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn from_count(n: usize) -> f32 {
        n as f32
    }
    fn dropout_scale(d: &Dropout) -> f32 {
        d.scale()
    }
    fn dropout_grad_scale(d: &Dropout) -> f32 {
        d.grad_scale()
    }
    fn alpha_coefficients(d: &Dropout) -> (f32, f32, f32) {
        d.alpha_coefficients()
    }
}

impl Element for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
    const SELU_ALPHA: f64 = SELU_ALPHA;
    const SELU_SCALE: f64 = SELU_SCALE;

    fn exp(self) -> f64 {
        exp_f64(self)
    }
    fn ln(self) -> f64 {
        log_f64(self)
    }
    fn sqrt(self) -> f64 {
        sqrt_f64(self)
    }
    fn tanh(self) -> f64 {
        tanh_f64(self)
    }
    fn erf(self) -> f64 {
        erf_f64(self)
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn from_f32(x: f32) -> f64 {
        f64::from(x)
    }
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn from_count(n: usize) -> f64 {
        n as f64
    }
    fn dropout_scale(d: &Dropout) -> f64 {
        1.0 / (1.0 - d.p)
    }
    fn dropout_grad_scale(d: &Dropout) -> f64 {
        d.grad_scale_f64()
    }
    fn alpha_coefficients(d: &Dropout) -> (f64, f64, f64) {
        d.alpha_coefficients_f64()
    }
}

/// `-x`: flips the sign bit, so `neg(+0.0) = -0.0` and NaN stays NaN.
pub fn neg<T: Element>(x: T) -> T {
    -x
}

/// `x > 0 ? x : (x is NaN ? x : +0.0)`: NaN propagates and `relu(-0.0) = +0.0`.
pub fn relu<T: Element>(x: T) -> T {
    if x > T::ZERO || x.is_nan() {
        x
    } else {
        T::ZERO
    }
}

/// `x > 0 ? SCALE * x : SCALE * (ALPHA * (exp(x) - 1))`, in that order of roundings. NaN takes
/// the second branch, where `exp(NaN)` propagates it.
pub fn selu<T: Element>(x: T) -> T {
    if x > T::ZERO {
        T::SELU_SCALE * x
    } else {
        T::SELU_SCALE * (T::SELU_ALPHA * (x.exp() - T::ONE))
    }
}

/// The logistic function as PyTorch's CPU kernel computes it: `1 / (1 + exp(-x))`, three
/// roundings and the shared `exp`. `exp(-x)` overflows for `x < -88.7`, so those give `+0.0`
/// (`sigmoid(-inf) = 0`, `sigmoid(inf) = 1`, NaN stays NaN).
pub fn sigmoid<T: Element>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

/// `1 / sqrt 2` (C's `M_SQRT1_2`), GELU's `kAlpha`.
pub const GELU_ALPHA: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// `sqrt 2 * (2 / sqrt pi) * 0.5 = sqrt(2 / pi)`, the tanh form's `kBeta`, computed in f64 as
/// PyTorch's constant is (then rounded to the float type).
pub const GELU_TANH_BETA: f64 = std::f64::consts::SQRT_2 * std::f64::consts::FRAC_2_SQRT_PI * 0.5;

/// `0.044715`, the tanh form's `kKappa`.
pub const GELU_TANH_KAPPA: f64 = 0.044715;

/// `(2 / sqrt pi) * (1 / sqrt 2) * 0.5 = 1 / sqrt(2 pi)`, the exact form's `kBeta` in its
/// gradient (the normal density's factor).
pub const GELU_PDF_BETA: f64 =
    std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2 * 0.5;

/// [`UnaryOp::Gelu`] as PyTorch's CPU kernel computes it (`Gelu.h`, one order for its scalar
/// and vector forms): `(x * 0.5) * (1 + erf(x * ALPHA))`, or for the tanh form
/// `(0.5 * x) * (1 + tanh(BETA * (x + KAPPA * ((x * x) * x))))`, the constants rounded to the
/// float type. `gelu(inf) = inf`; `gelu(-inf)` is `-inf * 0 = NaN`, as in PyTorch; NaN stays.
pub fn gelu<T: Element>(approximate: Approximate, x: T) -> T {
    let half = T::from_f64(0.5);
    match approximate {
        Approximate::None => {
            let alpha = T::from_f64(GELU_ALPHA);
            (x * half) * (T::ONE + (x * alpha).erf())
        }
        Approximate::Tanh => {
            let (beta, kappa) = (T::from_f64(GELU_TANH_BETA), T::from_f64(GELU_TANH_KAPPA));
            let cube = (x * x) * x;
            let inner = beta * (x + kappa * cube);
            (half * x) * (T::ONE + inner.tanh())
        }
    }
}

/// [`BinaryOp::GeluGrad`]: `g` times GELU's derivative at `x`, PyTorch's
/// `GeluBackwardKernelImpl` in its order:
/// - none: `g * (cdf + x * pdf)` with `cdf = 0.5 * (1 + erf(x * ALPHA))` and
///   `pdf = PDF_BETA * exp((x * x) * -0.5)`;
/// - tanh: with `s = x * x`, `t = tanh(BETA * (x + KAPPA * (s * x)))`,
///   `g * ((0.5 * (1 + t)) + ((0.5 * x) * (1 - t * t)) * (BETA * (1 + (3 * KAPPA) * s)))`,
///   `3 * KAPPA` one rounding in the float type.
pub fn gelu_grad<T: Element>(approximate: Approximate, g: T, x: T) -> T {
    let half = T::from_f64(0.5);
    match approximate {
        Approximate::None => {
            let alpha = T::from_f64(GELU_ALPHA);
            let beta = T::from_f64(GELU_PDF_BETA);
            let cdf = half * (T::ONE + (x * alpha).erf());
            let pdf = beta * ((x * x) * T::from_f64(-0.5)).exp();
            g * (cdf + x * pdf)
        }
        Approximate::Tanh => {
            let (beta, kappa) = (T::from_f64(GELU_TANH_BETA), T::from_f64(GELU_TANH_KAPPA));
            let square = x * x;
            let cube = square * x;
            let t = (beta * (x + kappa * cube)).tanh();
            let left = half * x;
            let right = T::ONE + t;
            let left_derivative = half * right;
            let tanh_derivative = T::ONE - t * t;
            let three_kappa = T::from_f64(3.0) * kappa;
            let inner_derivative = beta * (T::ONE + three_kappa * square);
            let right_derivative = (left * tanh_derivative) * inner_derivative;
            g * (left_derivative + right_derivative)
        }
    }
}

/// `torch.maximum`: the first NaN operand if either is NaN; `+0.0` for `-0.0` against `+0.0`
/// (either order); otherwise the larger.
pub fn maximum<T: Element>(a: T, b: T) -> T {
    if a.is_nan() {
        a
    } else if b.is_nan() {
        b
    } else if a == b && a == T::ZERO {
        // Two zeros: IEEE addition gives -0 only for -0 + -0, exactly the sign maximum needs.
        a + b
    } else if b > a {
        b
    } else {
        a
    }
}

/// [`BinaryOp::ReluGrad`]: `x <= 0 ? +0.0 : g` (a select: NaN `x` passes `g` through, and
/// a dropped element is `+0.0` even for non-finite `g`).
pub fn relu_grad<T: Element>(g: T, x: T) -> T {
    if x <= T::ZERO { T::ZERO } else { g }
}

/// [`BinaryOp::SeluGrad`]: `x <= 0 ? (g * (ALPHA * SCALE)) * exp(x) : g * SCALE`, with
/// `ALPHA * SCALE` one rounding in the float type (PyTorch's `negcoef`).
pub fn selu_grad<T: Element>(g: T, x: T) -> T {
    if x <= T::ZERO {
        (g * (T::SELU_ALPHA * T::SELU_SCALE)) * x.exp()
    } else {
        g * T::SELU_SCALE
    }
}

/// [`BinaryOp::Equal`]: `a == b ? 1.0 : 0.0`.
pub fn equal<T: Element>(a: T, b: T) -> T {
    if a == b { T::ONE } else { T::ZERO }
}

/// [`BinaryOp::MaxWeight`]: `a < b ? 0.0 : (a == b ? 0.5 : 1.0)`.
pub fn max_weight<T: Element>(a: T, b: T) -> T {
    if a < b {
        T::ZERO
    } else if a == b {
        T::ONE / (T::ONE + T::ONE)
    } else {
        T::ONE
    }
}

/// A dropout gradient's element: `keep ? g * scale : +0.0` (one multiply), with
/// [`Dropout::grad_scale`].
pub fn dropout_grad<T: Element>(keep: bool, g: T, scale: T) -> T {
    dropout_zeroing(keep, g, scale)
}

/// One unary op on one element.
pub fn unary<T: Element>(op: UnaryOp, x: T) -> T {
    match op {
        UnaryOp::Neg => neg(x),
        UnaryOp::Relu => relu(x),
        UnaryOp::Selu => selu(x),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Gelu(approximate) => gelu(approximate, x),
    }
}

/// One binary op on one pair of elements.
pub fn binary<T: Element>(op: BinaryOp, a: T, b: T) -> T {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => maximum(a, b),
        BinaryOp::ReluGrad => relu_grad(a, b),
        BinaryOp::SeluGrad => selu_grad(a, b),
        BinaryOp::Equal => equal(a, b),
        BinaryOp::MaxWeight => max_weight(a, b),
        BinaryOp::GeluGrad(approximate) => gelu_grad(approximate, a, b),
    }
}

/// A zeroing dropout's element: `keep ? x * scale : +0.0` (one multiply).
pub fn dropout_zeroing<T: Element>(keep: bool, x: T, scale: T) -> T {
    if keep { x * scale } else { T::ZERO }
}

/// An alpha dropout's element: `keep ? (x * a) + b : c` (two roundings, no FMA).
pub fn dropout_alpha<T: Element>(keep: bool, x: T, (a, b, c): (T, T, T)) -> T {
    if keep { (x * a) + b } else { c }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(x: f32) -> u32 {
        x.to_bits()
    }

    #[test]
    fn relu_keeps_nan_and_clears_negative_zero() {
        assert!(relu(f32::NAN).is_nan());
        assert_eq!(bits(relu(-0.0f32)), bits(0.0));
        assert_eq!(relu(-3.0f32), 0.0);
        assert_eq!(relu(2.5f32), 2.5);
        assert_eq!(relu(f32::INFINITY), f32::INFINITY);
    }

    #[test]
    fn maximum_orders_zeros_and_propagates_nan() {
        assert_eq!(bits(maximum(-0.0f32, 0.0)), bits(0.0));
        assert_eq!(bits(maximum(0.0f32, -0.0)), bits(0.0));
        assert_eq!(bits(maximum(-0.0f32, -0.0)), bits(-0.0));
        assert!(maximum(f32::NAN, 1.0).is_nan());
        assert!(maximum(1.0, f32::NAN).is_nan());
        assert_eq!(maximum(2.0f32, 2.0), 2.0);
        assert_eq!(maximum(-1.0f32, f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn selu_matches_its_formula() {
        let (alpha, scale) = (SELU_ALPHA as f32, SELU_SCALE as f32);
        assert_eq!(selu(1.0f32), scale);
        assert_eq!(selu(-1.0f32), scale * (alpha * ((-1.0f32).exp() - 1.0)));
        assert_eq!(bits(selu(0.0f32)), bits(0.0));
        assert!(selu(f32::NAN).is_nan());
        assert_eq!(selu(f32::NEG_INFINITY), -scale * alpha);
    }

    #[test]
    fn gradient_selects_follow_pytorch_at_the_edges() {
        // threshold_backward: x <= 0 drops (even a NaN or infinite g), NaN x passes g.
        assert_eq!(bits(relu_grad(f32::NAN, -0.0f32)), bits(0.0));
        assert_eq!(bits(relu_grad(-2.0f32, 0.0)), bits(0.0));
        assert_eq!(relu_grad(3.0f32, f32::NAN), 3.0);
        assert_eq!(relu_grad(3.0f32, 1e-30), 3.0);
        let (alpha, scale) = (SELU_ALPHA as f32, SELU_SCALE as f32);
        assert_eq!(selu_grad(2.0f32, 1.0), 2.0 * scale);
        assert_eq!(
            selu_grad(2.0f32, -1.0),
            (2.0 * (alpha * scale)) * (-1.0f32).exp()
        );
        assert_eq!(selu_grad(2.0f32, 0.0), 2.0 * (alpha * scale));
        assert_eq!(selu_grad(2.0f32, f32::NAN), 2.0 * scale);
        assert_eq!(max_weight(1.0f32, 2.0), 0.0);
        assert_eq!(max_weight(2.0f32, 2.0), 0.5);
        assert_eq!(max_weight(3.0f32, 2.0), 1.0);
        assert_eq!(max_weight(f32::NAN, 2.0), 1.0);
        assert_eq!(max_weight(2.0f32, f32::NAN), 1.0);
        assert_eq!(equal(-0.0f32, 0.0), 1.0);
        assert_eq!(equal(f32::NAN, f32::NAN), 0.0);
    }

    #[test]
    fn f64_dropout_coefficients_round_to_the_f32_ones() {
        let d = Dropout::new(crate::graph::DropoutKind::AlphaDropout, 0.3, 0);
        assert_eq!(f64::dropout_scale(&d) as f32, f32::dropout_scale(&d));
        let (a, b, c) = f64::alpha_coefficients(&d);
        assert_eq!((a as f32, b as f32, c as f32), f32::alpha_coefficients(&d));
        assert_eq!(
            f64::dropout_grad_scale(&d) as f32,
            f32::dropout_grad_scale(&d)
        );
        assert_eq!(f32::dropout_grad_scale(&d), a as f32);
    }
}
