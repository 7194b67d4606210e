//! `exp`, `tanh` and `erf` ([`crate::math::exp_f32`], [`crate::math::tanh_f32`],
//! [`crate::math::erf_f32`]) and the functions built on them (sigmoid, SELU, GELU and their
//! gradients) in Cranelift IR, from one text for one lane (`f32`, the scalar loop:
//! [`super::arith`]) and for four (`f32x4`, the vector loop: [`super::vector_arith`]): the
//! definitions' IEEE operations in their order, their comparisons as all-ones lane masks and
//! their choices as bit selects (both sides computed; no branch), so every lane of either form
//! has the interpreter's bits.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};

use super::LowerCx;
use crate::graph::Approximate;
use crate::math::exp_constants as e;
use crate::math::{
    GELU_ALPHA, GELU_PDF_BETA, GELU_TANH_BETA, GELU_TANH_KAPPA, SELU_ALPHA, SELU_SCALE,
    erf_constants, tanh_constants,
};

/// How many lanes a value has: one `f32`, or an `f32x4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lanes {
    One,
    Four,
}

impl Lanes {
    fn float(self) -> Type {
        match self {
            Lanes::One => types::F32,
            Lanes::Four => types::F32X4,
        }
    }

    fn int(self) -> Type {
        match self {
            Lanes::One => types::I32,
            Lanes::Four => types::I32X4,
        }
    }
}

/// A float constant in every lane.
pub(super) fn float(cx: &mut LowerCx, lanes: Lanes, x: f32) -> Value {
    let v = cx.f32(x);
    match lanes {
        Lanes::One => v,
        Lanes::Four => cx.b.ins().splat(types::F32X4, v),
    }
}

/// An i32 constant in every lane.
fn int(cx: &mut LowerCx, lanes: Lanes, k: i32) -> Value {
    let v = cx.b.ins().iconst(types::I32, i64::from(k));
    match lanes {
        Lanes::One => v,
        Lanes::Four => cx.b.ins().splat(types::I32X4, v),
    }
}

/// The bits of a float value (i32 or i32x4).
fn bits(cx: &mut LowerCx, lanes: Lanes, x: Value) -> Value {
    cx.b.ins().bitcast(lanes.int(), MemFlagsData::new(), x)
}

/// Bits as a float value.
fn from_bits(cx: &mut LowerCx, lanes: Lanes, x: Value) -> Value {
    cx.b.ins().bitcast(lanes.float(), MemFlagsData::new(), x)
}

/// `a cc b` as a lane mask (all ones where true, i32 or i32x4).
pub(super) fn mask(cx: &mut LowerCx, lanes: Lanes, cc: FloatCC, a: Value, b: Value) -> Value {
    let truth = cx.b.ins().fcmp(cc, a, b);
    match lanes {
        Lanes::One => cx.b.ins().bmask(types::I32, truth),
        Lanes::Four => truth,
    }
}

/// Lane by lane `mask ? yes : no` on float values.
pub(super) fn select(cx: &mut LowerCx, lanes: Lanes, mask: Value, yes: Value, no: Value) -> Value {
    let (yes, no) = (bits(cx, lanes, yes), bits(cx, lanes, no));
    let kept_yes = cx.b.ins().band(yes, mask);
    let kept_no = cx.b.ins().band_not(no, mask);
    let both = cx.b.ins().bor(kept_yes, kept_no);
    from_bits(cx, lanes, both)
}

/// `x` with `limit` wherever `x cc limit` (NaN, comparing false, stays).
fn clamp(cx: &mut LowerCx, lanes: Lanes, x: Value, cc: FloatCC, limit: f32) -> Value {
    let limit = float(cx, lanes, limit);
    let beyond = mask(cx, lanes, cc, x, limit);
    select(cx, lanes, beyond, limit, x)
}

/// Horner's rule over `coefficients` (highest power first): a multiply and an add each.
fn horner(cx: &mut LowerCx, lanes: Lanes, coefficients: &[f32], v: Value) -> Value {
    let mut acc = float(cx, lanes, coefficients[0]);
    for &c in &coefficients[1..] {
        let c = float(cx, lanes, c);
        let product = cx.b.ins().fmul(acc, v);
        acc = cx.b.ins().fadd(product, c);
    }
    acc
}

/// `|x|` and the sign bit of `x` (bits).
fn abs_and_sign(cx: &mut LowerCx, lanes: Lanes, x: Value) -> (Value, Value) {
    let x_bits = bits(cx, lanes, x);
    let magnitude = int(cx, lanes, 0x7fff_ffff);
    let abs = cx.b.ins().band(x_bits, magnitude);
    let sign = cx.b.ins().band_not(x_bits, magnitude);
    (from_bits(cx, lanes, abs), sign)
}

/// `y` (not negative, or NaN) with the sign bit `sign` of [`abs_and_sign`].
fn with_sign(cx: &mut LowerCx, lanes: Lanes, y: Value, sign: Value) -> Value {
    let magnitude = int(cx, lanes, 0x7fff_ffff);
    let y_bits = bits(cx, lanes, y);
    let y_bits = cx.b.ins().band(y_bits, magnitude);
    let signed = cx.b.ins().bor(y_bits, sign);
    from_bits(cx, lanes, signed)
}

/// `2^k` from the exponent bits of `k` (i32 lanes, `-126 <= k <= 127`).
fn power_of_two(cx: &mut LowerCx, lanes: Lanes, k: Value) -> Value {
    let bias = int(cx, lanes, 127);
    let biased = cx.b.ins().iadd(k, bias);
    let shifted = cx.b.ins().ishl_imm_s(biased, 23);
    from_bits(cx, lanes, shifted)
}

/// [`crate::math::exp_f32`].
pub(super) fn exp(cx: &mut LowerCx, lanes: Lanes, x: Value) -> Value {
    let x = clamp(cx, lanes, x, FloatCC::GreaterThan, e::MAX);
    let x = clamp(cx, lanes, x, FloatCC::LessThan, e::MIN);
    let (log2e, magic) = (
        float(cx, lanes, e::LOG2_E),
        float(cx, lanes, e::ROUND_MAGIC),
    );
    let scaled = cx.b.ins().fmul(x, log2e);
    let t = cx.b.ins().fadd(scaled, magic);
    let kf = cx.b.ins().fsub(t, magic);
    let t_bits = bits(cx, lanes, t);
    let magic_bits = int(cx, lanes, e::ROUND_MAGIC.to_bits() as i32);
    let k = cx.b.ins().isub(t_bits, magic_bits);
    let (hi, lo) = (float(cx, lanes, e::LN2_HI), float(cx, lanes, e::LN2_LO));
    let k_hi = cx.b.ins().fmul(kf, hi);
    let reduced = cx.b.ins().fsub(x, k_hi);
    let k_lo = cx.b.ins().fmul(kf, lo);
    let r = cx.b.ins().fsub(reduced, k_lo);
    let p = horner(cx, lanes, &e::P, r);
    let r2 = cx.b.ins().fmul(r, r);
    let pr2 = cx.b.ins().fmul(p, r2);
    let sum = cx.b.ins().fadd(pr2, r);
    let one = float(cx, lanes, 1.0);
    let er = cx.b.ins().fadd(sum, one);
    let k1 = cx.b.ins().sshr_imm_s(k, 1);
    let k2 = cx.b.ins().isub(k, k1);
    let (s1, s2) = (power_of_two(cx, lanes, k1), power_of_two(cx, lanes, k2));
    let exact = cx.b.ins().fmul(er, s1);
    cx.b.ins().fmul(exact, s2)
}

/// [`crate::math::tanh_f32`].
pub(super) fn tanh(cx: &mut LowerCx, lanes: Lanes, x: Value) -> Value {
    let (a, sign) = abs_and_sign(cx, lanes, x);
    let z = cx.b.ins().fmul(a, a);
    let p = horner(cx, lanes, &tanh_constants::P, z);
    let pz = cx.b.ins().fmul(p, z);
    let pza = cx.b.ins().fmul(pz, a);
    let small = cx.b.ins().fadd(pza, a);
    let twice = cx.b.ins().fadd(a, a);
    let e = exp(cx, lanes, twice);
    let (one, two) = (float(cx, lanes, 1.0), float(cx, lanes, 2.0));
    let denominator = cx.b.ins().fadd(e, one);
    let ratio = cx.b.ins().fdiv(two, denominator);
    let large = cx.b.ins().fsub(one, ratio);
    let limit = float(cx, lanes, tanh_constants::SMALL);
    let is_small = mask(cx, lanes, FloatCC::LessThan, a, limit);
    let y = select(cx, lanes, is_small, small, large);
    with_sign(cx, lanes, y, sign)
}

/// [`crate::math::erf_f32`].
pub(super) fn erf(cx: &mut LowerCx, lanes: Lanes, x: Value) -> Value {
    let (a, sign) = abs_and_sign(cx, lanes, x);
    let s = cx.b.ins().fmul(a, a);
    let r = horner(cx, lanes, &erf_constants::R, s);
    let ar = cx.b.ins().fmul(a, r);
    let small = cx.b.ins().fadd(a, ar);
    let c = clamp(cx, lanes, a, FloatCC::GreaterThan, erf_constants::CLAMP);
    let one = float(cx, lanes, 1.0);
    let t = cx.b.ins().fdiv(one, c);
    let q = horner(cx, lanes, &erf_constants::Q, t);
    let c2 = cx.b.ins().fmul(c, c);
    let minus_c2 = cx.b.ins().fneg(c2);
    let e = exp(cx, lanes, minus_c2);
    let eq = cx.b.ins().fmul(e, q);
    let large = cx.b.ins().fsub(one, eq);
    let limit = float(cx, lanes, erf_constants::SMALL);
    let is_small = mask(cx, lanes, FloatCC::LessThan, a, limit);
    let y = select(cx, lanes, is_small, small, large);
    with_sign(cx, lanes, y, sign)
}

/// [`crate::math::sigmoid`]: `1 / (1 + exp(-x))`, in that order.
pub(super) fn sigmoid(cx: &mut LowerCx, lanes: Lanes, x: Value) -> Value {
    let one = float(cx, lanes, 1.0);
    let negated = cx.b.ins().fneg(x);
    let e = exp(cx, lanes, negated);
    let denominator = cx.b.ins().fadd(one, e);
    cx.b.ins().fdiv(one, denominator)
}

/// [`crate::math::selu`]: `x > 0 ? S * x : S * (A * (exp(x) - 1))`, both sides computed.
pub(super) fn selu(cx: &mut LowerCx, lanes: Lanes, x: Value) -> Value {
    let (zero, one) = (float(cx, lanes, 0.0), float(cx, lanes, 1.0));
    let alpha = float(cx, lanes, SELU_ALPHA as f32);
    let scale = float(cx, lanes, SELU_SCALE as f32);
    let positive = cx.b.ins().fmul(scale, x);
    let e = exp(cx, lanes, x);
    let em1 = cx.b.ins().fsub(e, one);
    let saturated = cx.b.ins().fmul(alpha, em1);
    let negative = cx.b.ins().fmul(scale, saturated);
    let is_positive = mask(cx, lanes, FloatCC::GreaterThan, x, zero);
    select(cx, lanes, is_positive, positive, negative)
}

/// [`crate::math::selu_grad`]: `x <= 0 ? (g * (A * S)) * exp(x) : g * S`, both sides computed.
pub(super) fn selu_grad(cx: &mut LowerCx, lanes: Lanes, g: Value, x: Value) -> Value {
    let zero = float(cx, lanes, 0.0);
    let negcoef = float(cx, lanes, SELU_ALPHA as f32 * SELU_SCALE as f32);
    let scale = float(cx, lanes, SELU_SCALE as f32);
    let positive = cx.b.ins().fmul(g, scale);
    let e = exp(cx, lanes, x);
    let scaled = cx.b.ins().fmul(g, negcoef);
    let negative = cx.b.ins().fmul(scaled, e);
    let is_negative = mask(cx, lanes, FloatCC::LessThanOrEqual, x, zero);
    select(cx, lanes, is_negative, negative, positive)
}

/// `(beta, kappa)` of GELU's tanh form, rounded to f32.
fn gelu_tanh_constants(cx: &mut LowerCx, lanes: Lanes) -> (Value, Value) {
    let beta = float(cx, lanes, GELU_TANH_BETA as f32);
    let kappa = float(cx, lanes, GELU_TANH_KAPPA as f32);
    (beta, kappa)
}

/// [`crate::math::gelu`], in PyTorch's order.
pub(super) fn gelu(cx: &mut LowerCx, lanes: Lanes, approximate: Approximate, x: Value) -> Value {
    let (half, one) = (float(cx, lanes, 0.5), float(cx, lanes, 1.0));
    match approximate {
        Approximate::None => {
            let alpha = float(cx, lanes, GELU_ALPHA as f32);
            let scaled = cx.b.ins().fmul(x, alpha);
            let e = erf(cx, lanes, scaled);
            let halved = cx.b.ins().fmul(x, half);
            let factor = cx.b.ins().fadd(one, e);
            cx.b.ins().fmul(halved, factor)
        }
        Approximate::Tanh => {
            let (beta, kappa) = gelu_tanh_constants(cx, lanes);
            let square = cx.b.ins().fmul(x, x);
            let cube = cx.b.ins().fmul(square, x);
            let scaled_cube = cx.b.ins().fmul(kappa, cube);
            let sum = cx.b.ins().fadd(x, scaled_cube);
            let inner = cx.b.ins().fmul(beta, sum);
            let t = tanh(cx, lanes, inner);
            let halved = cx.b.ins().fmul(half, x);
            let factor = cx.b.ins().fadd(one, t);
            cx.b.ins().fmul(halved, factor)
        }
    }
}

/// [`crate::math::gelu_grad`], in PyTorch's order.
pub(super) fn gelu_grad(
    cx: &mut LowerCx,
    lanes: Lanes,
    approximate: Approximate,
    g: Value,
    x: Value,
) -> Value {
    let (half, one) = (float(cx, lanes, 0.5), float(cx, lanes, 1.0));
    let slope = match approximate {
        Approximate::None => {
            let alpha = float(cx, lanes, GELU_ALPHA as f32);
            let beta = float(cx, lanes, GELU_PDF_BETA as f32);
            let minus_half = float(cx, lanes, -0.5);
            let scaled = cx.b.ins().fmul(x, alpha);
            let e = erf(cx, lanes, scaled);
            let sum = cx.b.ins().fadd(one, e);
            let cdf = cx.b.ins().fmul(half, sum);
            let square = cx.b.ins().fmul(x, x);
            let exponent = cx.b.ins().fmul(square, minus_half);
            let density = exp(cx, lanes, exponent);
            let pdf = cx.b.ins().fmul(beta, density);
            let x_pdf = cx.b.ins().fmul(x, pdf);
            cx.b.ins().fadd(cdf, x_pdf)
        }
        Approximate::Tanh => {
            let (beta, kappa) = gelu_tanh_constants(cx, lanes);
            let three_kappa = float(cx, lanes, 3.0 * GELU_TANH_KAPPA as f32);
            let square = cx.b.ins().fmul(x, x);
            let cube = cx.b.ins().fmul(square, x);
            let scaled_cube = cx.b.ins().fmul(kappa, cube);
            let sum = cx.b.ins().fadd(x, scaled_cube);
            let inner = cx.b.ins().fmul(beta, sum);
            let t = tanh(cx, lanes, inner);
            let left = cx.b.ins().fmul(half, x);
            let right = cx.b.ins().fadd(one, t);
            let left_derivative = cx.b.ins().fmul(half, right);
            let t2 = cx.b.ins().fmul(t, t);
            let tanh_derivative = cx.b.ins().fsub(one, t2);
            let scaled_square = cx.b.ins().fmul(three_kappa, square);
            let inner_sum = cx.b.ins().fadd(one, scaled_square);
            let inner_derivative = cx.b.ins().fmul(beta, inner_sum);
            let product = cx.b.ins().fmul(left, tanh_derivative);
            let right_derivative = cx.b.ins().fmul(product, inner_derivative);
            cx.b.ins().fadd(left_derivative, right_derivative)
        }
    };
    cx.b.ins().fmul(g, slope)
}
