//! The scalar arithmetic of every element-wise op in Cranelift IR: the one place that says how
//! generated code computes `relu`, `maximum` or a kept dropout element.
//!
//! Each function reproduces its definition in [`crate::math`] bit for bit: the same IEEE
//! operations in the same order, no FMA (Cranelift fuses nothing on its own). Choices are
//! branch-free: both sides are computed and a bit mask selects one (`select` on floats
//! becomes a branch on x86-64).
//! - `exp` and `tanh`, and the functions built on them (sigmoid, SELU, GELU and their
//!   gradients), are [`super::transcendental`]'s one-lane form, the text its four-lane form
//!   shares.
//! - `log` calls [`crate::math::log_f32`] through an imported symbol, so both engines run the
//!   very same code.
//! - `sqrt` is Cranelift's `sqrt` instruction (`sqrtss`): IEEE square root is correctly rounded,
//!   so it equals `f32::sqrt`, which is the same instruction on x86-64 (NaN bits included).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::LowerCx;
use super::transcendental::{self, Lanes};
use crate::graph::{BinaryOp, Dropout, Elementwise, UnaryOp};
use crate::jit::Import;

/// `if cond { yes } else { no }` on `f32` without a branch: `cond` (an i8 truth value) becomes
/// an all-ones or all-zeros mask over the bits.
pub fn select(cx: &mut LowerCx, cond: Value, yes: Value, no: Value) -> Value {
    let ins = &mut cx.b;
    let mask = ins.ins().bmask(types::I32, cond);
    let yes = ins.ins().bitcast(types::I32, MemFlagsData::new(), yes);
    let no = ins.ins().bitcast(types::I32, MemFlagsData::new(), no);
    let kept_yes = ins.ins().band(yes, mask);
    let kept_no = ins.ins().band_not(no, mask);
    let bits = ins.ins().bor(kept_yes, kept_no);
    ins.ins().bitcast(types::F32, MemFlagsData::new(), bits)
}

/// `e^x`: [`crate::math::exp_f32`], inline.
pub fn exp(cx: &mut LowerCx, x: Value) -> Value {
    transcendental::exp(cx, Lanes::One, x)
}

/// `ln x`: a call to [`crate::math::log_f32`].
pub fn log(cx: &mut LowerCx, x: Value) -> Value {
    (cx.call(Import::Log, &[x])).expect("invariant: an element-wise import returns its value")
}

/// [`crate::math::relu`]: `x > 0 || x is NaN ? x : +0.0` ("unordered or greater").
pub fn relu(cx: &mut LowerCx, x: Value) -> Value {
    let zero = cx.f32(0.0);
    let keep = cx.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
    select(cx, keep, x, zero)
}

/// [`crate::math::maximum`]: the first NaN operand; `a + b` for two zeros (so `+0.0` unless
/// both are `-0.0`); otherwise the larger. The common case is one `maxss` (Cranelift lowers
/// `b > a ? b : a` to it); the rare ones (zeros, NaN) are `select`s that stay in vector
/// registers, since a row's maximum is a chain of them (bit masks through the integer
/// registers made softmax rows several times slower).
pub fn maximum(cx: &mut LowerCx, a: Value, b: Value) -> Value {
    let zero = cx.f32(0.0);
    let ins = &mut cx.b;
    let a_less = ins.ins().fcmp(FloatCC::LessThan, a, b);
    let equal = ins.ins().fcmp(FloatCC::Equal, a, b);
    let a_zero = ins.ins().fcmp(FloatCC::Equal, a, zero);
    let both_zero = ins.ins().band(equal, a_zero);
    let sum = ins.ins().fadd(a, b);
    let b_nan = ins.ins().fcmp(FloatCC::Unordered, b, b);
    let a_nan = ins.ins().fcmp(FloatCC::Unordered, a, a);
    // Applied from the last rule of `math::maximum` to the first, so earlier rules win.
    let larger = ins.ins().select(a_less, b, a);
    let zeros = ins.ins().select(both_zero, sum, larger);
    let with_b_nan = ins.ins().select(b_nan, b, zeros);
    ins.ins().select(a_nan, a, with_b_nan)
}

/// [`crate::math::relu_grad`]: `x <= 0 ? +0.0 : g`.
pub fn relu_grad(cx: &mut LowerCx, g: Value, x: Value) -> Value {
    let zero = cx.f32(0.0);
    let dropped = cx.b.ins().fcmp(FloatCC::LessThanOrEqual, x, zero);
    select(cx, dropped, zero, g)
}

/// [`crate::math::equal`]: `a == b ? 1.0 : 0.0`.
pub fn equal(cx: &mut LowerCx, a: Value, b: Value) -> Value {
    let (zero, one) = (cx.f32(0.0), cx.f32(1.0));
    let equal = cx.b.ins().fcmp(FloatCC::Equal, a, b);
    select(cx, equal, one, zero)
}

/// [`crate::math::max_weight`]: `a < b ? 0.0 : (a == b ? 0.5 : 1.0)`.
pub fn max_weight(cx: &mut LowerCx, a: Value, b: Value) -> Value {
    let (zero, half, one) = (cx.f32(0.0), cx.f32(0.5), cx.f32(1.0));
    let less = cx.b.ins().fcmp(FloatCC::LessThan, a, b);
    let equal = cx.b.ins().fcmp(FloatCC::Equal, a, b);
    let tie = select(cx, equal, half, one);
    select(cx, less, zero, tie)
}

/// One element-wise op on one element, from its operands' values `args`; `kept` is the keep
/// byte (an i8 truth value) of a dropout that draws its mask, loaded iff it draws.
pub fn element(cx: &mut LowerCx, op: Elementwise, args: &[Value], kept: Option<Value>) -> Value {
    match op {
        Elementwise::Unary(op) => unary(cx, op, args[0]),
        Elementwise::Binary(op) => binary(cx, op, args[0], args[1]),
        Elementwise::Dropout(d) => dropout(cx, d, args[0], kept, false),
        Elementwise::DropoutGrad(d) => dropout(cx, d, args[0], kept, true),
        // The operand was loaded at its broadcast offset: that is the expansion.
        Elementwise::Expand => args[0],
        // The condition is a byte, 0 or 1.
        Elementwise::Where => {
            let cond = cx.b.ins().icmp_imm_u(IntCC::NotEqual, args[0], 0);
            select(cx, cond, args[1], args[2])
        }
    }
}

/// One unary op on one element.
pub fn unary(cx: &mut LowerCx, op: UnaryOp, x: Value) -> Value {
    match op {
        UnaryOp::Neg => cx.b.ins().fneg(x),
        UnaryOp::Relu => relu(cx, x),
        UnaryOp::Selu => transcendental::selu(cx, Lanes::One, x),
        UnaryOp::Exp => exp(cx, x),
        UnaryOp::Log => log(cx, x),
        UnaryOp::Sqrt => cx.b.ins().sqrt(x),
        UnaryOp::Tanh => transcendental::tanh(cx, Lanes::One, x),
        UnaryOp::Sigmoid => transcendental::sigmoid(cx, Lanes::One, x),
        UnaryOp::Gelu(approximate) => transcendental::gelu(cx, Lanes::One, approximate, x),
    }
}

/// One binary op on one pair of elements.
pub fn binary(cx: &mut LowerCx, op: BinaryOp, a: Value, b: Value) -> Value {
    match op {
        BinaryOp::Add => cx.b.ins().fadd(a, b),
        BinaryOp::Sub => cx.b.ins().fsub(a, b),
        BinaryOp::Mul => cx.b.ins().fmul(a, b),
        BinaryOp::Div => cx.b.ins().fdiv(a, b),
        BinaryOp::Max => maximum(cx, a, b),
        BinaryOp::ReluGrad => relu_grad(cx, a, b),
        BinaryOp::SeluGrad => transcendental::selu_grad(cx, Lanes::One, a, b),
        BinaryOp::Equal => equal(cx, a, b),
        BinaryOp::MaxWeight => max_weight(cx, a, b),
        BinaryOp::GeluGrad(approximate) => {
            transcendental::gelu_grad(cx, Lanes::One, approximate, a, b)
        }
    }
}

/// `d` applied to one element `x`, or with `gradient` its vector-Jacobian product at the
/// element `g = x`: `keep ? g * s : +0.0` with `s` = [`Dropout::grad_scale`] (PyTorch's alpha
/// dropout backward is `g * a * noise` too). `kept` is the keep byte, given iff `d` draws at
/// random; without one, `p = 1` drops everything (even NaN) to `+0.0` and `p = 0` keeps the
/// input's bits.
fn dropout(cx: &mut LowerCx, d: &Dropout, x: Value, kept: Option<Value>, gradient: bool) -> Value {
    let Some(kept) = kept else {
        assert!(
            !d.is_random(),
            "invariant: a drawing dropout reads its keep byte"
        );
        return if d.p == 1.0 { cx.f32(0.0) } else { x };
    };
    if gradient {
        dropout_zeroing(cx, kept, x, d.grad_scale())
    } else if d.kind.is_alpha() {
        dropout_alpha(cx, kept, x, d.alpha_coefficients())
    } else {
        dropout_zeroing(cx, kept, x, d.scale())
    }
}

/// [`crate::math::dropout_zeroing`]: `keep ? x * scale : +0.0` (`keep` an i8 truth value).
fn dropout_zeroing(cx: &mut LowerCx, keep: Value, x: Value, scale: f32) -> Value {
    let scale = cx.f32(scale);
    let zero = cx.f32(0.0);
    let scaled = cx.b.ins().fmul(x, scale);
    select(cx, keep, scaled, zero)
}

/// [`crate::math::dropout_alpha`]: `keep ? (x * a) + b : c`, two roundings.
fn dropout_alpha(cx: &mut LowerCx, keep: Value, x: Value, (a, b, c): (f32, f32, f32)) -> Value {
    let (a, b, c) = (cx.f32(a), cx.f32(b), cx.f32(c));
    let product = cx.b.ins().fmul(x, a);
    let kept = cx.b.ins().fadd(product, b);
    select(cx, keep, kept, c)
}
