//! The error of the f32 definitions of `exp`, `tanh` and `erf` in `dropjit::math`, in ulp of
//! the exact result, over dense sweeps of f32 inputs (every `STRIDE`-th bit pattern of the
//! range where the function is not yet constant, tens of millions of points, and the edges),
//! against f64 references: `f64::exp`, `f64::tanh` and `math::erf_f64`, itself checked here
//! against values from mpmath. The bounds asserted are the ones the doc comments state.

use dropjit::math::{erf_f32, erf_f64, exp_f32, tanh_f32};

/// The spacing of f32 values at `|exact|` (from its binade, subnormals included): one ulp.
fn ulp(exact: f64) -> f64 {
    let binade = ((exact.abs().to_bits() >> 52) as i32 - 1023).max(-126);
    2f64.powi(binade - 23)
}

/// `|got - exact|` in ulp of `exact`; an infinite `got` counts as `±2^128`, the next value
/// after `f32::MAX`, so overflowing one step early or late is one ulp.
fn error(got: f32, exact: f64) -> f64 {
    let got = if got.is_infinite() {
        2f64.powi(128).copysign(f64::from(got))
    } else {
        f64::from(got)
    };
    let exact = exact.clamp(-(2f64.powi(128)), 2f64.powi(128));
    (got - exact).abs() / ulp(exact)
}

/// The largest error of `f` against `exact` over every `stride`-th f32 bit pattern from
/// `from` to `to` (both of the same sign), with the input where it occurs.
fn sweep(f: fn(f32) -> f32, exact: fn(f64) -> f64, from: f32, to: f32, stride: u32) -> (f64, f32) {
    let (lo, hi) = {
        let (a, b) = (from.to_bits(), to.to_bits());
        (a.min(b), a.max(b))
    };
    let mut worst = (0.0, from);
    let mut bits = lo;
    while bits <= hi {
        let x = f32::from_bits(bits);
        let e = error(f(x), exact(f64::from(x)));
        assert!(
            !e.is_nan(),
            "{x:e}: {} against {}",
            f(x),
            exact(f64::from(x))
        );
        if e > worst.0 {
            worst = (e, x);
        }
        bits = match bits.checked_add(stride) {
            Some(next) => next,
            None => break,
        };
    }
    worst
}

/// Checks `f` on both signs of `[from, to]` (every `stride`-th pattern) against `bound`.
fn check(
    name: &str,
    f: fn(f32) -> f32,
    exact: fn(f64) -> f64,
    [from, to]: [f32; 2],
    stride: u32,
    bound: f64,
) {
    for (from, to) in [(from, to), (-from, -to)] {
        let (worst, at) = sweep(f, exact, from, to, stride);
        println!("{name} on [{from}, {to}]: at most {worst:.3} ulp (at {at:e})");
        assert!(
            worst <= bound,
            "{name}: {worst} ulp at {at:e} ({} against {})",
            f(at),
            exact(f64::from(at))
        );
    }
}

#[test]
fn exp_is_within_one_ulp() {
    // Past 89 it overflows and below -104 it is +0.0; both ranges are swept to their ends.
    check("exp", exp_f32, f64::exp, [0.0, f32::MAX], 61, 1.0);
}

#[test]
fn tanh_is_within_one_and_a_half_ulp() {
    check("tanh", tanh_f32, f64::tanh, [0.0, f32::MAX], 61, 1.5);
}

#[test]
fn erf_is_within_one_and_a_half_ulp() {
    // Every f32 from 4 on rounds erf to 1; past 5 a coarser sweep suffices.
    check("erf", erf_f32, erf_f64, [0.0, 5.0], 61, 1.5);
    check("erf", erf_f32, erf_f64, [5.0, f32::MAX], 4099, 0.5);
}

#[test]
fn the_functions_keep_their_values_at_the_edges() {
    let bits = |x: f32| x.to_bits();
    assert_eq!(exp_f32(0.0), 1.0);
    assert_eq!(exp_f32(-0.0), 1.0);
    assert_eq!(bits(exp_f32(f32::NEG_INFINITY)), bits(0.0));
    assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
    assert_eq!(exp_f32(88.8), f32::INFINITY);
    assert!(exp_f32(f32::NAN).is_nan());
    // The smallest subnormal, 2^-149, is exp(-103.28); a half of it rounds to zero.
    assert_eq!(exp_f32(-103.28), f32::from_bits(1));
    assert_eq!(bits(exp_f32(-103.98)), bits(0.0));
    for (x, y) in [(0.0, 0.0), (f32::INFINITY, 1.0), (20.0, 1.0)] {
        for f in [tanh_f32, erf_f32] {
            assert_eq!(bits(f(x)), bits(y));
            assert_eq!(bits(f(-x)), bits(-y), "odd at {x}");
        }
    }
    assert_eq!(tanh_f32(1e-30), 1e-30);
    assert_eq!(bits(tanh_f32(-0.0)), bits(-0.0));
    assert_eq!(bits(erf_f32(-0.0)), bits(-0.0));
    assert!(tanh_f32(f32::NAN).is_nan());
    assert!(erf_f32(f32::NAN).is_nan());
    assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
}

#[test]
#[allow(clippy::excessive_precision)] // mpmath's digits, as printed
fn the_f64_erf_matches_mpmath() {
    // erf at 40 digits from mpmath 1.3.0, rounded to 20.
    let known: [(f64, f64); 14] = [
        (1e-10, 1.1283791670955125739e-10),
        (0.1, 0.1124629160182848922),
        (0.5, 0.52049987781304653768),
        (1.0, 0.84270079294971486934),
        (1.5, 0.96610514647531072707),
        (2.0, 0.99532226501895273416),
        (2.5, 0.99959304798255504106),
        (2.999, 0.99997776983140016593),
        (3.0, 0.99997790950300141456),
        (3.001, 0.99997804833908226271),
        (3.5, 0.99999925690162765859),
        (4.0, 0.99999998458274209972),
        (5.0, 0.99999999999846254021),
        (6.0, 0.99999999999999997848),
    ];
    for (x, y) in known {
        let got = erf_f64(x);
        // 16 f64 ulp: the series sums terms up to e^(a^2) before exp(-a^2) scales them down.
        assert!(
            (got - y).abs() <= 16.0 * f64::EPSILON * y,
            "erf({x}) = {got}, not {y}"
        );
        assert_eq!(erf_f64(-x), -got);
    }
    assert_eq!(erf_f64(f64::INFINITY), 1.0);
    assert!(erf_f64(f64::NAN).is_nan());
}
