//! Every element-wise function of the IR (each `UnaryOp` and `BinaryOp` in `ALL`, so an op
//! added to those lists is tested here without a line of its own), compiled, against the
//! interpreter bit for bit (any NaN matching any NaN) on the values where implementations
//! part: both zeros, both infinities, NaN, magnitudes of 10 and far beyond (where `exp`
//! overflows and `tanh` saturates), subnormals and ordinary values. Each runs alone and fused
//! after a `neg`, on 300 elements (two whole vector groups and a partial one), so an op with a
//! vector form is checked on both the vector and the scalar path.

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use dropjit::graph::{BinaryOp, UnaryOp};
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

/// Runs `body` (lines defining `%y` from inputs `%a` and `%b`) on both engines, fused and
/// unfused, and compares `y`.
fn check(body: &str, what: &str) {
    let source = format!(
        "graph g {{\n  %a: f32[{N}] = input\n  %b: f32[{N}] = input\n{body}\n  output y = %y\n}}\n"
    );
    let graph = text::parse(&source).unwrap_or_else(|e| panic!("{what}: {e}\n{source}"));
    // Offsets with no common period, so every pair of special values meets.
    let inputs = BTreeMap::from([("a".to_string(), values(0)), ("b".to_string(), values(7))]);
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

#[test]
fn every_unary_function_matches_the_interpreter_at_the_edges() {
    for op in UnaryOp::ALL {
        let name = op.name();
        check(&format!("  %y: f32[{N}] = {name} %a"), name);
        check(
            &format!("  %n: f32[{N}] = neg %a\n  %y: f32[{N}] = {name} %n"),
            &format!("neg then {name}"),
        );
    }
}

#[test]
fn every_binary_function_matches_the_interpreter_at_the_edges() {
    for op in BinaryOp::ALL {
        let name = op.name();
        check(&format!("  %y: f32[{N}] = {name} %a, %b"), name);
        check(
            &format!("  %n: f32[{N}] = neg %b\n  %y: f32[{N}] = {name} %a, %n"),
            &format!("neg then {name}"),
        );
    }
}
