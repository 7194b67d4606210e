//! `softmax`, `log_softmax` and `cross_entropy` compiled against the interpreter, bit for bit
//! (any NaN matching any NaN), on rows of every length from 1 to 13 (a contiguous row runs
//! four elements at a time and its last `len % 4` one by one) along the last axis and along
//! the first, with values where the row statistics part: large magnitudes whose `exp`
//! overflows or underflows after the shift, infinities, NaN, zeros of both signs.

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use dropjit::{Compiler, Generator, Mode, ParameterStore, Tensor, interp, text};

/// Row values: ordinary, spread, tied, and the edges.
const VALUES: [f32; 17] = [
    0.5,
    -1.25,
    3.0,
    80.0,
    -80.0,
    0.0,
    -0.0,
    2.0,
    2.0,
    -100.0,
    f32::NEG_INFINITY,
    7.5,
    1e-40,
    -20.0,
    f32::INFINITY,
    f32::NAN,
    0.25,
];

/// `[rows, len]` values cycling through [`VALUES`] from `offset`; the first rows stay finite.
fn values(rows: usize, len: usize, offset: usize) -> Tensor {
    let data = (0..rows * len)
        .map(|i| {
            let v = VALUES[(i + offset) % VALUES.len()];
            if i < 2 * len && !v.is_finite() {
                1.5
            } else {
                v
            }
        })
        .collect();
    Tensor::from_f32([rows, len], data).expect("rows * len values")
}

fn check(source: &str, inputs: &BTreeMap<String, Tensor>) {
    let graph = text::parse(source).unwrap_or_else(|e| panic!("{e}\n{source}"));
    let expected = interp::run(&graph, Mode::Eval, &mut Generator::new(0), inputs).unwrap();
    for threads in [1, 2] {
        let compiled = (Compiler::new().verify(true).threads(threads))
            .compile(&graph)
            .unwrap_or_else(|e| panic!("{e}\n{source}"));
        let got = compiled.run(&mut Generator::new(0), inputs, &ParameterStore::new());
        let got = got.unwrap_or_else(|e| panic!("{e}\n{source}"));
        for ((name, e), (_, g)) in expected.iter().zip(&got) {
            compare(e, g, Agreement::Bits)
                .unwrap_or_else(|m| panic!("{name}, {threads} threads: {m}\n{source}"));
        }
    }
}

#[test]
fn softmax_rows_of_every_length_match_the_interpreter() {
    let rows = 5;
    for len in 1..=13 {
        for offset in [0, 3, 11] {
            let source = format!(
                "graph rows {{
  %x: f32[{rows}, {len}] = input
  %t: i32[{rows}] = input
  %p: f32[{rows}, {len}] = softmax %x {{axis = 1}}
  %l: f32[{rows}, {len}] = log_softmax %x {{axis = -1}}
  %q: f32[{rows}, {len}] = softmax %x {{axis = 0}}
  %c: f32[] = cross_entropy %x, %t
  output p = %p
  output l = %l
  output q = %q
  output c = %c
}}"
            );
            let targets = (0..rows).map(|r| ((r * 7 + offset) % len) as i32).collect();
            let inputs = BTreeMap::from([
                ("x".to_string(), values(rows, len, offset)),
                ("t".to_string(), Tensor::from_i32([rows], targets).unwrap()),
            ]);
            check(&source, &inputs);
        }
    }
}
