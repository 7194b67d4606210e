//! The plain-Rust fused bit-plane dropout of the benchmarks (`benches/support/bitplane.rs`)
//! against the interpreter, bit for bit: the benchmark's reference implements the contract.

#[path = "../benches/support/bitplane.rs"]
mod bitplane;

use std::collections::BTreeMap;

use dropjit::{Generator, Mode, Tensor, interp, text};

/// The interpreter's dropout of `x` (length `n`) at `p`, seed 11, step 0, stream 2.
fn interpreted(p: f64, x: &Tensor, n: usize) -> Vec<f32> {
    let graph = text::parse(&format!(
        "graph g {{\n %x: f32[{n}] = input\n %y: f32[{n}] = dropout %x {{p = {p:?}, stream = 2}}\n output y = %y\n}}"
    ))
    .expect("a valid graph");
    let values = BTreeMap::from([("x".to_string(), x.clone())]);
    let out = interp::run(&graph, Mode::Train, &mut Generator::new(11), &values).expect("runs");
    out[0].1.as_f32().expect("f32").to_vec()
}

#[test]
fn fused_bitplane_reference_equals_the_interpreter() {
    let source = bitplane::Source {
        seed: 11,
        stream: 2,
        step: 0,
    };
    for p in [
        0.5,
        0.25,
        0.1,
        0.3,
        2f64.powi(-33),
        1.0 - 2f64.powi(-24),
        0.999,
    ] {
        for n in [1, 127, 128, 300, 1000] {
            let x = Generator::new(5).normal([n], 0.0, 1.0).unwrap();
            let expected = interpreted(p, &x, n);
            let mut y = vec![f32::NAN; n];
            bitplane::dropout(source, p, 0, x.as_f32().expect("f32"), &mut y);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&expected), "p = {p}, n = {n}");
        }
    }
}
