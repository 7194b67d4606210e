//! The backward's masks are the forward's: for every dropout kind (with and without
//! `broadcast_dims`), a graph exposes the forward dropout `y`, its mask (`dropout_mask`, the
//! same draw) and the gradient `x.grad` of `sum(y * w)`; on both engines, `x.grad` is nonzero
//! exactly where the mask keeps (w is nonzero everywhere), and the JIT's three values equal
//! the interpreter's bit for bit.

mod common;

use std::collections::BTreeMap;

use common::gradcheck::{weighted_loss, with_gradients};
use dropjit::{
    Compiler, Generator, Graph, Mode, ParameterStore, Shape, Tensor, init, interp, text,
};

/// (kind, shape, extra attributes) of every case.
const CASES: &[(&str, &str, &str)] = &[
    ("dropout", "[8, 40]", ""),
    ("dropout", "[6, 5, 7]", ", broadcast_dims = [0]"),
    ("dropout", "[4, 3, 5, 5]", ", broadcast_dims = [1, 2, 3]"),
    ("dropout1d", "[4, 6, 9]", ""),
    ("dropout1d", "[6, 9]", ""),
    ("dropout2d", "[3, 6, 4, 5]", ""),
    ("dropout3d", "[2, 6, 3, 2, 2]", ""),
    ("alpha_dropout", "[8, 40]", ""),
    ("alpha_dropout", "[6, 5, 7]", ", broadcast_dims = [2]"),
    ("feature_alpha_dropout", "[4, 6, 9]", ""),
];

fn case_graph(kind: &str, shape: &str, extra: &str) -> Graph {
    let source = format!(
        "graph masks {{
           %x: f32{shape} = input
           %y: f32{shape} = {kind} %x {{p = 0.5{extra}, stream = 3}}
           %mask = {kind}_mask %x {{p = 0.5{extra}, stream = 3}}
           output y = %y
           output mask = %mask
         }}"
    );
    let graph = weighted_loss(text::parse(&source).expect("a mask case parses"), "y");
    with_gradients(&graph, &["x"]).0
}

/// The row-major index in `mask` (the input's shape with broadcast dimensions 1) of every
/// element of `input`, in row-major order.
fn mask_indices(input: &Shape, mask: &Shape) -> Vec<usize> {
    let strides = mask.strides();
    (0..input.numel())
        .map(|mut flat| {
            let mut index = 0;
            for d in (0..input.rank()).rev() {
                let coordinate = flat % input.dims()[d];
                flat /= input.dims()[d];
                if mask.dims()[d] != 1 {
                    index += coordinate * strides[d];
                }
            }
            index
        })
        .collect()
}

fn by_name(outputs: Vec<(String, Tensor)>) -> BTreeMap<String, Tensor> {
    outputs.into_iter().collect()
}

#[test]
fn gradients_are_nonzero_exactly_where_the_forward_keeps() {
    for &(kind, shape, extra) in CASES {
        let graph = case_graph(kind, shape, extra);
        let seed = 17;
        let values = init::random_values(&graph, seed).unwrap();
        let interp = interp::run(
            &graph,
            Mode::Train,
            &mut Generator::new(seed).with_step(3),
            &values,
        )
        .unwrap();
        let compiled = Compiler::new()
            .mode(Mode::Train)
            .verify(true)
            .compile(&graph)
            .unwrap();
        let (inputs, params) = ParameterStore::split(&graph, values);
        let jit = compiled
            .run(&mut Generator::new(seed).with_step(3), &inputs, &params)
            .unwrap();
        let (interp, jit) = (by_name(interp), by_name(jit));
        for name in ["y", "mask", "x.grad"] {
            // Tensor equality is bitwise.
            assert!(
                interp[name] == jit[name],
                "{kind}{extra}: {name} differs between the engines"
            );
        }
        let mask = interp["mask"].as_bool().unwrap();
        let grad = interp["x.grad"].as_f32().unwrap();
        let y = interp["y"].as_f32().unwrap();
        let indices = mask_indices(interp["y"].shape(), interp["mask"].shape());
        let kept = mask.iter().filter(|&&k| k).count();
        assert!(
            kept > 0 && kept < mask.len(),
            "{kind}{extra}: a degenerate mask"
        );
        for (i, &j) in indices.iter().enumerate() {
            assert_eq!(grad[i] != 0.0, mask[j], "{kind}{extra}: element {i}");
            if !kind.contains("alpha") {
                assert_eq!(y[i] != 0.0, mask[j], "{kind}{extra}: y at {i}");
            }
        }
    }
}
