//! Layer normalization compiled against the interpreter, its definition, in all three modes on
//! one and two threads, fused and not, every value exposed or not: `ir/layer_norm.ir`, a
//! training step's gradient graph, and the random graphs that draw layer norm. Every value is
//! bit-identical, as `passes::expand_layer_norm` rewrites each node into the interpreter's
//! operations in its order. Also the text form of the gradient ops and the type errors.

mod common;

use common::differential::check_every_mode;
use common::gradcheck::{f32_leaves, weighted_loss, with_gradients};
use common::parse;
use dropjit::{Mode, Op, text};

#[test]
fn the_ir_program_compiles_to_the_interpreters_bits_in_every_mode() {
    let graph = parse(include_str!("../ir/layer_norm.ir"));
    check_every_mode(&graph, 3);
}

/// Layer norms over one and two trailing dimensions, with a weight and a bias, a weight alone
/// and neither, one of them reading the same input twice (shared statistics), and the
/// gradients of a loss with respect to every leaf.
const TRAINING: &str = "graph ln_step {
  %x: f32[3, 2, 6] = input
  %w: f32[6] = parameter
  %b: f32[6] = parameter
  %w2: f32[2, 6] = parameter
  %a: f32[3, 2, 6] = layer_norm %x, %w, %b {normalized_shape = [6]}
  %t: f32[3, 2, 6] = tanh %a
  %u: f32[3, 2, 6] = layer_norm %t, %w2 {normalized_shape = [2, 6], eps = 0.001}
  %v: f32[3, 2, 6] = layer_norm %t {normalized_shape = [6]}
  %s: f32[3, 2, 6] = add %u, %v
  %y: f32[3, 2, 6] = dropout %s {p = 0.25}
  output y = %y
}";

#[test]
fn a_training_steps_gradients_compile_to_the_interpreters_bits_in_every_mode() {
    let graph = weighted_loss(parse(TRAINING), "y");
    let leaves = f32_leaves(&graph);
    let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
    let (grads, _) = with_gradients(&graph, &wrt);
    let ops: Vec<&str> = grads.node_ids().map(|id| grads[id].op.name()).collect();
    assert!(ops.contains(&"layer_norm_input_grad") && ops.contains(&"layer_norm_weight_grad"));
    check_every_mode(&grads, 5);
}

#[test]
fn random_graphs_with_layer_norm_compile_to_the_interpreters_bits_in_every_mode() {
    let mut checked = 0;
    for seed in 0..4000u64 {
        let graph = common::random_graph(seed);
        if !(graph.node_ids()).any(|id| matches!(graph[id].op, Op::LayerNorm(_))) {
            continue;
        }
        check_every_mode(&graph, seed);
        checked += 1;
        if checked == 40 {
            break;
        }
    }
    assert_eq!(checked, 40);
}

#[test]
fn the_gradient_ops_round_trip_through_the_text_form() {
    let graph = weighted_loss(parse(TRAINING), "y");
    let leaves = f32_leaves(&graph);
    let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
    let (grads, _) = with_gradients(&graph, &wrt);
    let printed = grads.to_string();
    let reparsed = parse(&printed);
    assert_eq!(reparsed.to_string(), printed);
    // The input gradient reads the weight if the node has one; eps prints unless it is 1e-5.
    for line in [
        "= layer_norm_input_grad %a.grad, %x, %w {normalized_shape = [6]}\n",
        "= layer_norm_weight_grad %a.grad, %x {normalized_shape = [6]}\n",
        "= layer_norm_input_grad %s.grad, %t, %w2 {normalized_shape = [2, 6], eps = 0.001}\n",
        "= layer_norm_weight_grad %s.grad, %t {normalized_shape = [2, 6], eps = 0.001}\n",
        "= layer_norm_input_grad %s.grad, %t {normalized_shape = [6]}\n",
    ] {
        assert!(printed.contains(line), "{line}\n{printed}");
    }
}

/// A row of equal values normalizes to exactly the bias on both engines (the corrected mean
/// is the value itself), as PyTorch's Welford moments give.
#[test]
fn a_row_of_equal_values_normalizes_to_the_bias() {
    let graph = parse(
        "graph equal {
  %x: f32[2, 7] = constant [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 3000.7, 3000.7, 3000.7, 3000.7, 3000.7, 3000.7, 3000.7]
  %w: f32[7] = constant [2, 2, 2, 2, 2, 2, 2]
  %b: f32[7] = constant [0.5, -1, 0, 1, 2, 3, -0.25]
  %y: f32[2, 7] = layer_norm %x, %w, %b {normalized_shape = [7]}
  output y = %y
}",
    );
    let expected = [0.5f32, -1.0, 0.0, 1.0, 2.0, 3.0, -0.25].repeat(2);
    let values = Default::default();
    let interpreted =
        dropjit::interp::run(&graph, Mode::Eval, &mut dropjit::Generator::new(0), &values).unwrap();
    assert_eq!(interpreted[0].1.as_f32().unwrap(), &expected[..]);
    check_every_mode(&graph, 1);
}

#[test]
fn shapes_that_do_not_fit_are_type_errors_naming_them() {
    let cases = [
        (
            "%x: f32[2, 3, 8] = input\n  %y = layer_norm %x {normalized_shape = [3]}",
            "given normalized_shape = [3], the input has to be [*, 3], but is [2, 3, 8]",
        ),
        (
            "%x: f32[8] = input\n  %y = layer_norm %x {normalized_shape = [2, 8]}",
            "given normalized_shape = [2, 8], the input has to be [*, 2, 8], but is [8]",
        ),
        (
            "%x: f32[2, 8] = input\n  %w: f32[4] = input\n  %y = layer_norm %x, %w {normalized_shape = [8]}",
            "weight has to be [8] (the normalized shape), but is [4]",
        ),
        (
            "%x: f32[2, 8] = input\n  %w: f32[8] = input\n  %b: f32[2, 8] = input\n  %y = layer_norm %x, %w, %b {normalized_shape = [8]}",
            "bias has to be [8] (the normalized shape), but is [2, 8]",
        ),
        (
            "%x: f32[2, 8] = input\n  %y = layer_norm %x {normalized_shape = []}",
            "normalized_shape has to name at least one dimension, but is []",
        ),
        (
            "%x: f32[2, 8] = input\n  %g: f32[8] = input\n  %y = layer_norm_input_grad %g, %x {normalized_shape = [8]}",
            "the gradient has to have the input's shape [2, 8], but is [8]",
        ),
        (
            "%x: i32[2, 8] = input\n  %y = layer_norm %x {normalized_shape = [8]}",
            "f32",
        ),
    ];
    for (body, message) in cases {
        let source = format!("graph bad {{\n  {body}\n  output y = %y\n}}");
        let error = text::parse(&source).err().unwrap().to_string();
        assert!(error.contains(message), "{error}\nexpected: {message}");
        assert!(error.contains("layer_norm"), "{error}");
    }
    let source = "graph bad {\n  %x: f32[2, 8] = input\n  %y = layer_norm %x\n  output y = %y\n}";
    let error = text::parse(source).err().unwrap().to_string();
    assert!(error.contains("normalized_shape"), "{error}");
}
