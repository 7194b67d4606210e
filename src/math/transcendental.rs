//! `exp`, `tanh` and `erf` in f32, this crate's own definitions: range reduction and
//! polynomials in IEEE operations (no FMA), comparisons, selects and exponent bits, which
//! `crate::lower::transcendental` emits in the same order for one lane and for four, so both
//! engines compute the same bits. Their error against f64, measured by
//! `tests/math_accuracy.rs`, is in each doc comment. And `erf` in f64, the reference.

/// The constants of [`exp_f32`], shared with its lowering.
pub(crate) mod exp_constants {
    /// `log2(e)`, rounded to f32: turns `x` into a power of two in [`super::exp_f32`].
    pub const LOG2_E: f32 = std::f32::consts::LOG2_E;

    /// `1.5 * 2^23`: added to a float of magnitude below `2^22`, it rounds it to the nearest
    /// integer (ties to even), which then sits in the low bits of the sum's significand.
    pub const ROUND_MAGIC: f32 = 12_582_912.0;

    /// `ln 2` split in two (Cody and Waite): `LN2_HI` has 9 significant bits, so `k * LN2_HI`
    /// is exact for every `|k| <= 150` and `x - k * LN2_HI` is exact by Sterbenz's lemma.
    pub const LN2_HI: f32 = 0.693_359_4;
    /// `ln 2 - LN2_HI`.
    pub const LN2_LO: f32 = -2.121_944_4e-4;

    /// Cephes' `expf` polynomial: `e^r ≈ 1 + r + r^2 * P(r)` on `|r| <= ln(2) / 2`,
    /// coefficients from the highest power of `P` down, rounded to f32 (the last,
    /// 5.0000001201e-1, is 0.5).
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
/// `x = k ln 2 + r` with `k` the integer nearest `x * log2(e)` (rounded by adding and
/// subtracting `1.5 * 2^23`) and `r = (x - k * LN2_HI) - k * LN2_LO`;
/// `e^r = ((P(r) * r^2) + r) + 1` and the result is
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

    /// `erf(a) / a - 1 ≈ R(a^2)` on `[0, 1]` (a weighted least-squares fit to the relative
    /// error, made for this crate with mpmath), highest power first; `erf(a) = a + a * R(a^2)` then
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

    /// The largest `|x|` [`super::erf_f32`]'s second form is evaluated at: `erf(4)` rounds to
    /// 1 in f32, and clamping keeps `1 / a` and `exp(-a^2)` away from `0 * inf`.
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
    use erf_constants::{CLAMP, Q, R, SMALL};
    let a = abs_f32(x);
    let y = if a < SMALL {
        a + a * horner(&R, a * a)
    } else {
        let c = if a > CLAMP { CLAMP } else { a };
        let q = horner(&Q, 1.0 / c);
        1.0 - exp_f32(-(c * c)) * q
    };
    with_sign_of(y, x)
}

/// The error function in f64, for gradient checks and as the reference [`erf_f32`] is
/// measured against; its relative error is below 16 f64 ulp (`tests/math_accuracy.rs` checks
/// it against values from mpmath). Below 3,
/// `erf(a) = (2 / sqrt(pi)) exp(-a^2) sum (2a^2)^n a / (1 * 3 * ... * (2n + 1))`, a series of
/// positive terms (so nothing cancels); from 3 on, `1 - erfc(a)` with
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
