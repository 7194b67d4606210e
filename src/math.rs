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

/// SELU's alpha, as PyTorch writes it (rounded to the float type in use).
#[allow(clippy::excessive_precision)]
pub const SELU_ALPHA: f64 = 1.6732632423543772848170429916717;

/// SELU's scale, as PyTorch writes it (rounded to the float type in use).
#[allow(clippy::excessive_precision)]
pub const SELU_SCALE: f64 = 1.0507009873554804934193349852946;

/// The constants of [`exp_f32`], shared with its lowering.
pub(crate) mod exp_constants {
    /// `log2(e)`, rounded to f32: turns `x` into a power of two in [`super::exp_f32`].
    pub const LOG2_E: f32 = std::f32::consts::LOG2_E;

    /// `1.5 * 2^23`: added to a float of magnitude below `2^22`, it rounds it to the nearest
    /// integer (ties to even), which then sits in the low bits of the sum's significand.
    pub const ROUND_MAGIC: f32 = 12_582_912.0;

    /// `ln 2` split in two (Cody and Waite): `LN2_HI` has 9 significant bits, so `k * LN2_HI` is
    /// exact for every `|k| <= 150` and `x - k * LN2_HI` is exact by Sterbenz's lemma.
    pub const LN2_HI: f32 = 0.693_359_4;
    /// `ln 2 - LN2_HI`.
    pub const LN2_LO: f32 = -2.121_944_4e-4;

    /// Cephes' `expf` polynomial: `e^r ≈ 1 + r + r^2 * P(r)` on `|r| <= ln(2) / 2`, coefficients
    /// from the highest power of `P` down, rounded to f32 (its last, 5.0000001201e-1, is 0.5).
    pub const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_6e-1,
        0.5,
    ];

    /// Inputs outside `[MIN, MAX]` are clamped to them: `e^MAX` overflows to `inf`
    /// and `e^MIN` rounds to `+0.0`, as the results of everything beyond do, and the clamped
    /// `k` keeps both halves of `2^k` normal.
    pub const MAX: f32 = 89.0;
    /// See [`MAX`].
    pub const MIN: f32 = -104.0;
}

/// `e^x` in f32: the one definition both engines compute, in IEEE operations the JIT emits
/// inline, scalar and in `f32x4` lanes (`crate::lower::transcendental`).
///
/// `x` is clamped to `[-104, 89]` (NaN passes, comparisons with it being false), then
/// `x = k ln 2 + r` with `k` the integer nearest `x * log2(e)` (rounded by adding and subtracting `1.5 * 2^23`) and
/// `r = (x - k * LN2_HI) - k * LN2_LO`; `e^r = ((P(r) * r^2) + r) + 1` and the result is
/// `(e^r * 2^(k >> 1)) * 2^(k - (k >> 1))`, two factors built from exponent bits so each is
/// normal: the first product is exact and the second rounds once, which gives correctly
/// rounded subnormal results near underflow and `inf` past `ln(f32::MAX)`. So `exp(-inf) = 0`,
/// `exp(inf) = inf`, NaN stays NaN.
///
/// Measured error: at most 0.96 ulp against `f64::exp` (so below 1 ulp) over a sweep of every
/// 61st f32 (`tests/math_accuracy.rs`, which asserts 1 ulp).
pub fn exp_f32(x: f32) -> f32 {
    use exp_constants::{LN2_HI, LN2_LO, LOG2_E, MAX, MIN, P, ROUND_MAGIC};
    let x = if x > MAX { MAX } else { x };
    let x = if x < MIN { MIN } else { x };
    let t = x * LOG2_E + ROUND_MAGIC;
    let kf = t - ROUND_MAGIC;
    // The integer `kf` in the low bits of `t`'s significand.
    let k = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let p = horner(&P, r);
    let er = ((p * (r * r)) + r) + 1.0;
    let k1 = k >> 1;
    let k2 = k.wrapping_sub(k1);
    (er * power_of_two(k1)) * power_of_two(k2)
}

/// `2^k` for `-126 <= k <= 127`, from its exponent bits.
fn power_of_two(k: i32) -> f32 {
    f32::from_bits((k.wrapping_add(127) as u32) << 23)
}

/// `c[0] * v^(n-1) + ... + c[n-1]` by Horner's rule: `((c[0] * v + c[1]) * v + c[2]) ...`, a
/// multiply and an add per coefficient (no FMA).
fn horner(c: &[f32], v: f32) -> f32 {
    let mut acc = c[0];
    for &coefficient in &c[1..] {
        acc = acc * v + coefficient;
    }
    acc
}

/// `|x|`: the sign bit cleared.
fn abs_f32(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// `y` with the sign bit of `x`.
fn with_sign_of(y: f32, x: f32) -> f32 {
    f32::from_bits((y.to_bits() & 0x7fff_ffff) | (x.to_bits() & 0x8000_0000))
}

/// The constants of [`tanh_f32`], shared with its lowering.
pub(crate) mod tanh_constants {
    /// Below this `|x|`, [`super::tanh_f32`] is its odd polynomial (Cephes `tanhf`).
    pub const SMALL: f32 = 0.625;

    /// Cephes' `tanhf` polynomial: `tanh a ≈ a + a * (a^2 * P(a^2))` for `a < 0.625`.
    pub const P: [f32; 5] = [
        -5.704_988_7e-3,
        2.063_908_8e-2,
        -5.373_971_5e-2,
        1.333_144_2e-1,
        -3.333_328e-1,
    ];
}

/// The natural logarithm in f32 (`log(0) = -inf`, `log(-1) = NaN`).
pub extern "C" fn log_f32(x: f32) -> f32 {
    x.ln()
}

/// The square root in f32 (`sqrt(-0.0) = -0.0`, `sqrt(-1) = NaN`).
pub extern "C" fn sqrt_f32(x: f32) -> f32 {
    x.sqrt()
}

/// The hyperbolic tangent in f32: the one definition both engines compute inline
/// (`crate::lower::transcendental`). With `a = |x|`: `a < 0.625` gives Cephes' odd polynomial
/// `((P(a^2) * a^2) * a) + a`, otherwise `1 - 2 / (exp(2a) + 1)` with [`exp_f32`] (which
/// saturates to 1 as `exp` overflows); the sign of `x` is put back last, so `tanh(±0) = ±0`,
/// `tanh(±inf) = ±1` and NaN stays NaN.
///
/// Measured error: at most 1.27 ulp against `f64::tanh` (near `|x| = 0.65`, where the
/// second form begins) over a sweep of every 61st f32 (`tests/math_accuracy.rs`, which
/// asserts 1.5 ulp).
pub fn tanh_f32(x: f32) -> f32 {
    let a = abs_f32(x);
    let y = if a < tanh_constants::SMALL {
        let z = a * a;
        ((horner(&tanh_constants::P, z) * z) * a) + a
    } else {
        1.0 - 2.0 / (exp_f32(a + a) + 1.0)
    };
    with_sign_of(y, x)
}

/// The constants of [`erf_f32`], shared with its lowering.
pub(crate) mod erf_constants {
    /// Below this `|x|`, [`super::erf_f32`] is its odd polynomial; from it on, `1 - erfc`.
    pub const SMALL: f32 = 1.0;

    /// `erf(a) / a - 1 ≈ R(a^2)` on `[0, 1]` (a weighted least-squares fit to the relative error,
    /// made for this crate with mpmath), highest power first; `erf(a) = a + a * R(a^2)` then
    /// rounds once, at the last addition, where it matters.
    pub const R: [f32; 8] = [
        -9.763_802e-6,
        1.129_344_8e-4,
        -8.486_806e-4,
        5.221_129_4e-3,
        -2.686_542_6e-2,
        1.128_378_1e-1,
        -3.761_263_8e-1,
        1.283_791_7e-1,
    ];

    /// `erfc(a) * exp(a^2) ≈ Q(1 / a)` on `[1, 4]` (fit as [`R`]), highest power first.
    pub const Q: [f32; 10] = [
        3.071_951_9e-2,
        -1.797_435_4e-1,
        4.383_142e-1,
        -5.370_499_5e-1,
        2.384_207_4e-1,
        2.303_468_4e-1,
        -3.758_456_7e-1,
        2.053_192_8e-2,
        5.617_685e-1,
        1.210_509_4e-4,
    ];

    /// The largest `|x|` [`super::erf_f32`]'s second form is evaluated at: `erf(4)` rounds to 1 in f32,
    /// and clamping keeps `1 / a` and `exp(-a^2)` away from `0 * inf`.
    pub const CLAMP: f32 = 4.0;
}

/// The error function in f32 (`f32::erf` is not stable): the one definition both engines
/// compute inline (`crate::lower::transcendental`). With `a = |x|`: `a < 1` gives
/// `a + a * R(a^2)`; otherwise, with `c = min(a, 4)`, `1 - exp(-(c * c)) * Q(1 / c)` with
/// [`exp_f32`]. The sign of `x` is put back last: `erf(-x) = -erf(x)`, `erf(±0) = ±0`,
/// `erf(±inf) = ±1`, NaN stays NaN.
///
/// Measured error: at most 1.23 ulp against [`erf_f64`] (near `|x| = 0.98`) over a sweep of
/// every 61st f32 below 5 and correctly rounded (1) beyond (`tests/math_accuracy.rs`, which
/// asserts 1.5 ulp).
pub fn erf_f32(x: f32) -> f32 {
    let a = abs_f32(x);
    use erf_constants::{CLAMP, Q, R, SMALL};
    let y = if a < SMALL {
        a + a * horner(&R, a * a)
    } else {
        let c = if a > CLAMP { CLAMP } else { a };
        let q = horner(&Q, 1.0 / c);
        1.0 - exp_f32(-(c * c)) * q
    };
    with_sign_of(y, x)
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

/// The error function in f64, for gradient checks and as the reference [`erf_f32`] is
/// measured against; its relative error is below 16 f64 ulp (`tests/math_accuracy.rs` checks it
/// against values from mpmath). Below 3, `erf(a) = (2 / sqrt(pi)) exp(-a^2) sum (2a^2)^n a / (1 * 3 * ... *
/// (2n + 1))`, a series of positive terms (so nothing cancels); from 3 on, `1 - erfc(a)` with
/// `erfc(a) = exp(-a^2) / (sqrt(pi) (a + (1/2) / (a + (2/2) / (a + (3/2) / ...))))`, the
/// continued fraction evaluated from depth 60 up.
pub fn erf_f64(x: f64) -> f64 {
    use std::f64::consts::{FRAC_2_SQRT_PI, PI};
    let a = x.abs();
    if a.is_nan() {
        return x;
    }
    let y = if a < 3.0 {
        let a2 = a * a;
        let (mut term, mut sum) = (a, a);
        let mut n = 0.0;
        while term > sum * 1e-18 {
            n += 1.0;
            term *= 2.0 * a2 / (2.0 * n + 1.0);
            sum += term;
        }
        FRAC_2_SQRT_PI * (-a2).exp() * sum
    } else {
        let mut f = a;
        for k in (1..=60).rev() {
            f = a + (f64::from(k) / 2.0) / f;
        }
        1.0 - (-(a * a)).exp() / (PI.sqrt() * f)
    };
    y.copysign(x)
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
