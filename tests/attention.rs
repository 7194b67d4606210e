//! `where` and `tril`, the pieces of causal attention: their definitions (broadcasting, the
//! diagonal, the type rules), a masked softmax's exact zeros, and `ir/attention.ir` with its
//! gradients compiled to the interpreter's bits on one and two threads in every mode.

mod common;

use std::collections::BTreeMap;

use common::differential::check_every_mode;
use common::gradcheck::{f32_leaves, weighted_loss, with_gradients};
use common::parse;
use dropjit::{Compiler, Generator, Graph, Mode, ParameterStore, Tensor, interp, text};

fn run(graph: &Graph, values: &[(&str, Tensor)]) -> Vec<(String, Tensor)> {
    let values: BTreeMap<String, Tensor> = values
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    interp::run(graph, Mode::Eval, &mut Generator::new(0), &values).unwrap()
}

#[test]
fn tril_keeps_the_lower_triangle_from_its_diagonal() {
    let graph = parse(
        "graph masks {
  %a: bool[3, 4] = tril
  %b: bool[3, 4] = tril {diagonal = 1}
  %c: bool[2, 2, 3] = tril {diagonal = -1}
  output a = %a
  output b = %b
  output c = %c
}",
    );
    let out = run(&graph, &[]);
    let bits = |t: &Tensor| {
        t.as_bool()
            .unwrap()
            .iter()
            .map(|&b| u8::from(b))
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&out[0].1), [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0]);
    assert_eq!(bits(&out[1].1), [1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]);
    assert_eq!(bits(&out[2].1), [0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0]);
    // Printed by its type alone, and compiled to the same constant.
    assert!(
        graph
            .to_string()
            .contains("%b: bool[3, 4] = tril {diagonal = 1}\n")
    );
    check_every_mode(&graph, 1);
}

#[test]
fn where_picks_by_its_broadcast_condition() {
    let graph = parse(
        "graph pick {
  %cond: bool[3] = input
  %a: f32[2, 3] = input
  %b: f32[] = constant -inf
  %y: f32[2, 3] = where %cond, %a, %b
  output y = %y
}",
    );
    let cond = Tensor::from_bool([3], vec![true, false, true]).unwrap();
    let a = Tensor::from_f32([2, 3], vec![1.0, 2.0, f32::NAN, -0.0, 5.0, 6.0]).unwrap();
    let out = run(&graph, &[("cond", cond), ("a", a)]);
    let y = out[0].1.as_f32().unwrap();
    let inf = f32::NEG_INFINITY;
    assert_eq!(y[0], 1.0);
    assert_eq!((y[1], y[4]), (inf, inf));
    assert!(y[2].is_nan());
    assert_eq!(y[3].to_bits(), (-0.0f32).to_bits());
    check_every_mode(&graph, 2);
}

/// Above the diagonal a masked softmax gives exact zeros, whatever the scores (huge ones
/// included); each row sums to one over its kept part.
#[test]
fn a_causally_masked_softmax_has_exact_zeros_above_the_diagonal() {
    let graph = parse(
        "graph masked {
  %scores: f32[2, 4, 4] = input
  %causal: bool[4, 4] = tril
  %ninf: f32[] = constant -inf
  %masked: f32[2, 4, 4] = where %causal, %scores, %ninf
  %p: f32[2, 4, 4] = softmax %masked {axis = -1}
  output p = %p
}",
    );
    let mut scores: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    scores[3] = 1e30;
    scores[17] = f32::MAX;
    let scores = Tensor::from_f32([2, 4, 4], scores).unwrap();
    let values = [("scores", scores.clone())];
    let p = run(&graph, &values)[0].1.clone();
    let compiled = Compiler::new().compile(&graph).unwrap();
    let inputs = BTreeMap::from([("scores".to_string(), scores)]);
    let jit = compiled
        .run(&mut Generator::new(0), &inputs, &ParameterStore::new())
        .unwrap();
    for p in [p.as_f32().unwrap(), jit[0].1.as_f32().unwrap()] {
        for (k, &v) in p.iter().enumerate() {
            let (i, j) = ((k / 4) % 4, k % 4);
            if j > i {
                assert_eq!(v.to_bits(), 0, "element {k}");
            }
        }
        for row in p.chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        }
    }
}

#[test]
fn the_attention_program_and_its_gradients_compile_to_the_interpreters_bits() {
    let graph = parse(include_str!("../ir/attention.ir"));
    check_every_mode(&graph, 3);
    let graph = weighted_loss(graph, "y");
    let leaves = f32_leaves(&graph);
    let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
    let (grads, _) = with_gradients(&graph, &wrt);
    let printed = grads.to_string();
    assert!(printed.contains("= where %causal, "), "{printed}");
    assert_eq!(parse(&printed).to_string(), printed);
    check_every_mode(&grads, 4);
}

#[test]
fn conditions_and_masks_that_do_not_fit_are_type_errors() {
    let cases = [
        (
            "%c: f32[3] = input\n  %a: f32[3] = input\n  %y = where %c, %a, %a",
            "where y: operand 0 has to be bool, but is f32",
        ),
        (
            "%c: bool[2] = input\n  %a: f32[3] = input\n  %y = where %c, %a, %a",
            "cannot broadcast",
        ),
        (
            "%y: bool[4] = tril",
            "tril y: expects a [..., rows, columns] (rank 2 or more) mask, but got shape [4]",
        ),
        ("%y: f32[4, 4] = tril", "bool"),
        ("%y = tril", "needs a type annotation"),
    ];
    for (body, message) in cases {
        let source = format!("graph bad {{\n  {body}\n  output y = %y\n}}");
        let error = text::parse(&source).err().unwrap().to_string();
        assert!(error.contains(message), "{error}\nexpected: {message}");
    }
}
