//! Every element-wise function of the IR (each `UnaryOp` and `BinaryOp` in `ALL`, so an op
//! added to those lists is tested here without a line of its own), compiled, against the
//! interpreter bit for bit (any NaN matching any NaN) on the values where implementations
//! part: both zeros, both infinities, NaN, magnitudes of 10 and far beyond (where `exp`
//! overflows and `tanh` saturates), subnormals and ordinary values. Each runs alone and fused
//! after a `neg`, on 300 elements (two whole vector groups and a partial one), so an op with a
//! vector form is checked on both the vector and the scalar path; and again on 8,250 values
//! spread over every bit pattern and densely over `[-12, 12]`.

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use dropjit::graph::{Approximate, BinaryOp, UnaryOp};
use dropjit::{Compiler, Generator, Mode, ParameterStore, Tensor, interp, text};

/// The values every function is evaluated at.
const SPECIAL: [f32; 30] = [
    0.0,
    -0.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    10.0,
    -10.0,
    20.0,
    -20.0,
    88.8,
    -88.8,
    104.0,
    -104.0,
    1e30,
    -1e30,
    f32::MAX,
    f32::MIN,
    1e-40,
    -1e-40,
    f32::MIN_POSITIVE,
    1.4e-45,
    -1.4e-45,
    1e-7,
    -1e-7,
    0.5,
    -0.5,
    1.0,
    -1.0,
    3.25,
    -2.75,
];

/// Elements per run: two vector groups of 128 and a partial third.
const N: usize = 300;

/// `N` values cycling through [`SPECIAL`], starting at `offset`.
fn values(offset: usize) -> Tensor {
    let data = (0..N)
        .map(|i| SPECIAL[(i + offset) % SPECIAL.len()])
        .collect();
    Tensor::from_f32([N], data).expect("N values")
}

/// Runs `body` (lines defining `%y` from inputs `%a` and `%b` of `[n]` elements, written
/// for `n`) on both engines, fused and unfused, and compares `y`.
fn check(body: &str, what: &str, a: Tensor, b: Tensor) {
    let n = a.shape().numel();
    let source = format!(
        "graph g {{\n  %a: f32[{n}] = input\n  %b: f32[{n}] = input\n{body}\n  output y = %y\n}}\n"
    );
    let graph = text::parse(&source).unwrap_or_else(|e| panic!("{what}: {e}\n{source}"));
    let inputs = BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]);
    let expected = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &inputs).unwrap();
    for fuse in [true, false] {
        let compiled = (Compiler::new().mode(Mode::Eval).verify(true).fuse(fuse))
            .compile(&graph)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = compiled.run(&mut Generator::new(0), &inputs, &ParameterStore::new());
        let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
        compare(&expected[0].1, &got[0].1, Agreement::Bits)
            .unwrap_or_else(|e| panic!("{what} (fuse {fuse}): {e}"));
    }
}

/// Every unary function of [`UnaryOp::ALL`], alone and after a `neg`, on `a` (`n` elements).
fn check_unary(a: &Tensor, n: usize) {
    for op in UnaryOp::ALL {
        let name = op.name();
        let attrs = attributes(match op {
            UnaryOp::Gelu(approximate) => Some(approximate),
            _ => None,
        });
        let what = format!("{op:?}");
        check(
            &format!("  %y: f32[{n}] = {name} %a{attrs}"),
            &what,
            a.clone(),
            a.clone(),
        );
        check(
            &format!("  %m: f32[{n}] = neg %a\n  %y: f32[{n}] = {name} %m{attrs}"),
            &format!("neg then {what}"),
            a.clone(),
            a.clone(),
        );
    }
}

/// Every binary function of [`BinaryOp::ALL`], alone and with its right side negated first.
fn check_binary(a: &Tensor, b: &Tensor, n: usize) {
    for op in BinaryOp::ALL {
        let name = op.name();
        let attrs = attributes(match op {
            BinaryOp::GeluGrad(approximate) => Some(approximate),
            _ => None,
        });
        let what = format!("{op:?}");
        check(
            &format!("  %y: f32[{n}] = {name} %a, %b{attrs}"),
            &what,
            a.clone(),
            b.clone(),
        );
        check(
            &format!("  %m: f32[{n}] = neg %b\n  %y: f32[{n}] = {name} %a, %m{attrs}"),
            &format!("neg then {what}"),
            a.clone(),
            b.clone(),
        );
    }
}

/// The attribute list that selects GELU's tanh form; nothing for other functions.
fn attributes(approximate: Option<Approximate>) -> &'static str {
    match approximate {
        Some(Approximate::Tanh) => " {approximate = tanh}",
        Some(Approximate::None) | None => "",
    }
}

#[test]
fn every_unary_function_matches_the_interpreter_at_the_edges() {
    check_unary(&values(0), N);
}

#[test]
fn every_binary_function_matches_the_interpreter_at_the_edges() {
    // Offsets with no common period, so every pair of special values meets.
    check_binary(&values(0), &values(7), N);
}

/// `n` f32 values: every `n / 2`-th one of the bit patterns (so every sign, binade,
/// subnormal, infinity and NaN), then evenly spaced values over `[-12, 12]`, where the
/// transcendental functions change form.
fn sweep(n: usize, phase: u32) -> Tensor {
    let half = n / 2;
    let step = (u64::from(u32::MAX) / half as u64) as u32;
    let patterns =
        (0..half as u32).map(|i| f32::from_bits(i.wrapping_mul(step).wrapping_add(phase)));
    let dense =
        (0..n - half).map(|i| -12.0 + 24.0 * (i as f32 + phase as f32 / 7.0) / (n - half) as f32);
    Tensor::from_f32([n], patterns.chain(dense).collect()).expect("n values")
}

#[test]
fn every_function_matches_the_interpreter_across_the_whole_range() {
    // 64 vector groups and a partial one, so the vector and the scalar loop both see values
    // of every kind.
    let n = 8_250;
    check_unary(&sweep(n, 0), n);
    check_binary(&sweep(n, 0), &sweep(n, 3), n);
}

/// The functions that claim a vector form take the vector loop (so the checks above test
/// it), and the others (a call of `log`) do not.
#[test]
fn every_function_with_a_vector_form_compiles_to_the_vector_loop() {
    let unary = UnaryOp::ALL.map(|op| {
        let attrs = attributes(match op {
            UnaryOp::Gelu(approximate) => Some(approximate),
            _ => None,
        });
        (
            format!("{} %a{attrs}", op.name()),
            op.has_vector_form(),
            format!("{op:?}"),
        )
    });
    let binary = BinaryOp::ALL.map(|op| {
        let attrs = attributes(match op {
            BinaryOp::GeluGrad(approximate) => Some(approximate),
            _ => None,
        });
        (
            format!("{} %a, %b{attrs}", op.name()),
            op.has_vector_form(),
            format!("{op:?}"),
        )
    });
    for (call, vector, what) in unary.into_iter().chain(binary) {
        let source = format!(
            "graph g {{\n  %a: f32[{N}] = input\n  %b: f32[{N}] = input\n  %y: f32[{N}] = {call}\n  output y = %y\n}}\n"
        );
        let graph = text::parse(&source).unwrap_or_else(|e| panic!("{what}: {e}"));
        let compiled = (Compiler::new().mode(Mode::Eval).compile(&graph))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            compiled.clif().contains("f32x4"),
            vector,
            "{what}: vector loop?"
        );
    }
}
