//! The `f32x4` forms of the element-wise ops that have exact ones, for the vector loop of
//! [`super::simd`]: lane for lane the same IEEE operations as the scalar [`super::arith`]
//! (`sqrtps` and `sqrtss` round alike; comparisons give all-ones lane masks, and choices are
//! bit masks, never branches). `exp`, `tanh` and what is built on them are
//! [`super::transcendental`]'s four-lane form.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::LowerCx;
use super::transcendental::{self, Lanes};
use crate::graph::{BinaryOp, Dropout, Elementwise, UnaryOp};

/// One element-wise op on four lanes, from its operands' vectors `args`; `mask` is a drawing
/// dropout's lane mask (i32x4, the top bit of a lane set = kept; the other bits do not
/// matter), given iff it draws at random. The lanes of [`super::arith::element`].
pub(super) fn element(
    cx: &mut LowerCx,
    op: Elementwise,
    args: &[Value],
    mask: Option<Value>,
) -> Value {
    match op {
        Elementwise::Unary(op) => unary(cx, op, args[0]),
        Elementwise::Binary(op) => binary(cx, op, args[0], args[1]),
        Elementwise::Dropout(d) => dropout(cx, d, args[0], mask, false),
        Elementwise::DropoutGrad(d) => dropout(cx, d, args[0], mask, true),
        // The loop read the operand in its broadcast form (a row of the trailing dimensions,
        // or one element splatted): that is the expansion.
        Elementwise::Expand => args[0],
        Elementwise::Where => panic!("invariant: where has no vector form"),
    }
}

/// `d` (or with `gradient` its vector-Jacobian product) applied to four elements `x`
/// (f32x4) with their lane mask, given iff `d` draws at random: the lanes of
/// `super::arith`'s dropout.
fn dropout(cx: &mut LowerCx, d: &Dropout, x: Value, mask: Option<Value>, gradient: bool) -> Value {
    let Some(mask) = mask else {
        assert!(
            !d.is_random(),
            "invariant: a drawing dropout has a lane mask"
        );
        return if d.p == 1.0 { splat_f32(cx, 0.0) } else { x };
    };
    if d.kind.is_alpha() && !gradient {
        let (a, b, c) = d.alpha_coefficients();
        let (a, b, c) = (splat_f32(cx, a), splat_f32(cx, b), splat_f32(cx, c));
        let product = cx.b.ins().fmul(x, a);
        let kept = cx.b.ins().fadd(product, b);
        return select_by_sign(cx, mask, kept, c);
    }
    let scale = if gradient { d.grad_scale() } else { d.scale() };
    let scale = splat_f32(cx, scale);
    let scaled = cx.b.ins().fmul(x, scale);
    let zero = splat_f32(cx, 0.0);
    select_by_sign(cx, mask, scaled, zero)
}

/// Lane by lane `yes` where the top bit of `mask` (i32x4) is set, else `no` (f32x4 values):
/// one `blendvps`, so a dropout's mask needs no shift to spread its bit over the lane.
fn select_by_sign(cx: &mut LowerCx, mask: Value, yes: Value, no: Value) -> Value {
    let (yes, no) = (bits(cx, yes), bits(cx, no));
    let chosen = cx.b.ins().blendv(mask, yes, no);
    float(cx, chosen)
}

fn unary(cx: &mut LowerCx, op: UnaryOp, x: Value) -> Value {
    match op {
        UnaryOp::Neg => cx.b.ins().fneg(x),
        UnaryOp::Relu => relu(cx, x),
        UnaryOp::Sqrt => cx.b.ins().sqrt(x),
        UnaryOp::Selu => transcendental::selu(cx, Lanes::Four, x),
        UnaryOp::Exp => transcendental::exp(cx, Lanes::Four, x),
        UnaryOp::Tanh => transcendental::tanh(cx, Lanes::Four, x),
        UnaryOp::Sigmoid => transcendental::sigmoid(cx, Lanes::Four, x),
        UnaryOp::Gelu(approximate) => transcendental::gelu(cx, Lanes::Four, approximate, x),
        UnaryOp::Log => {
            panic!("invariant: calls have no vector form (UnaryOp::has_vector_form)")
        }
    }
}

fn binary(cx: &mut LowerCx, op: BinaryOp, a: Value, b: Value) -> Value {
    match op {
        BinaryOp::Add => cx.b.ins().fadd(a, b),
        BinaryOp::Sub => cx.b.ins().fsub(a, b),
        BinaryOp::Mul => cx.b.ins().fmul(a, b),
        BinaryOp::Div => cx.b.ins().fdiv(a, b),
        BinaryOp::Max => maximum(cx, a, b),
        BinaryOp::ReluGrad => relu_grad(cx, a, b),
        BinaryOp::Equal => {
            let equal = cx.b.ins().fcmp(FloatCC::Equal, a, b);
            let one = splat_f32(cx, 1.0);
            keep_or_zero(cx, equal, one)
        }
        BinaryOp::MaxWeight => max_weight(cx, a, b),
        BinaryOp::SeluGrad => transcendental::selu_grad(cx, Lanes::Four, a, b),
        BinaryOp::GeluGrad(approximate) => {
            transcendental::gelu_grad(cx, Lanes::Four, approximate, a, b)
        }
    }
}

/// An f32x4 with every lane `x`.
pub(super) fn splat_f32(cx: &mut LowerCx, x: f32) -> Value {
    let lane = cx.f32(x);
    cx.b.ins().splat(types::F32X4, lane)
}

/// `x` as i32x4 bits.
fn bits(cx: &mut LowerCx, x: Value) -> Value {
    cx.b.ins().bitcast(types::I32X4, MemFlagsData::new(), x)
}

/// Bits (i32x4) as f32x4.
fn float(cx: &mut LowerCx, bits: Value) -> Value {
    cx.b.ins().bitcast(types::F32X4, MemFlagsData::new(), bits)
}

/// `x` where `mask` (i32x4) is all ones, `+0.0` where it is zero.
fn keep_or_zero(cx: &mut LowerCx, mask: Value, x: Value) -> Value {
    let x = bits(cx, x);
    let kept = cx.b.ins().band(x, mask);
    float(cx, kept)
}

/// Lane by lane `mask ? yes : no` (f32x4 values, i32x4 mask).
fn select(cx: &mut LowerCx, mask: Value, yes: Value, no: Value) -> Value {
    let (yes, no) = (bits(cx, yes), bits(cx, no));
    let kept_yes = cx.b.ins().band(yes, mask);
    let kept_no = cx.b.ins().band_not(no, mask);
    let both = cx.b.ins().bor(kept_yes, kept_no);
    float(cx, both)
}

/// [`crate::math::relu`]: `x` unless `x <= 0` (so NaN stays and `-0.0` becomes `+0.0`).
fn relu(cx: &mut LowerCx, x: Value) -> Value {
    let zero = splat_f32(cx, 0.0);
    let not_positive = cx.b.ins().fcmp(FloatCC::LessThanOrEqual, x, zero);
    let x_bits = bits(cx, x);
    let kept = cx.b.ins().band_not(x_bits, not_positive);
    float(cx, kept)
}

/// [`crate::math::maximum`], in the order of [`super::arith::maximum`].
fn maximum(cx: &mut LowerCx, a: Value, b: Value) -> Value {
    let zero = splat_f32(cx, 0.0);
    let b_greater = cx.b.ins().fcmp(FloatCC::GreaterThan, b, a);
    let equal = cx.b.ins().fcmp(FloatCC::Equal, a, b);
    let a_zero = cx.b.ins().fcmp(FloatCC::Equal, a, zero);
    let both_zero = cx.b.ins().band(equal, a_zero);
    let sum = cx.b.ins().fadd(a, b);
    let b_nan = cx.b.ins().fcmp(FloatCC::Unordered, b, b);
    let a_nan = cx.b.ins().fcmp(FloatCC::Unordered, a, a);
    let larger = select(cx, b_greater, b, a);
    let zeros = select(cx, both_zero, sum, larger);
    let with_b_nan = select(cx, b_nan, b, zeros);
    select(cx, a_nan, a, with_b_nan)
}

/// [`crate::math::relu_grad`]: `g` unless `x <= 0`, where `+0.0` (a NaN `x` passes `g`).
fn relu_grad(cx: &mut LowerCx, g: Value, x: Value) -> Value {
    let zero = splat_f32(cx, 0.0);
    let dropped = cx.b.ins().fcmp(FloatCC::LessThanOrEqual, x, zero);
    let g_bits = bits(cx, g);
    let kept = cx.b.ins().band_not(g_bits, dropped);
    float(cx, kept)
}

/// [`crate::math::max_weight`]: `a < b ? 0.0 : (a == b ? 0.5 : 1.0)`.
fn max_weight(cx: &mut LowerCx, a: Value, b: Value) -> Value {
    let (half, one) = (splat_f32(cx, 0.5), splat_f32(cx, 1.0));
    let less = cx.b.ins().fcmp(FloatCC::LessThan, a, b);
    let equal = cx.b.ins().fcmp(FloatCC::Equal, a, b);
    let tie = select(cx, equal, half, one);
    let tie_bits = bits(cx, tie);
    let weight = cx.b.ins().band_not(tie_bits, less);
    float(cx, weight)
}
