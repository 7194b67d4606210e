//! Batch normalization compiled against the interpreter, its definition, in all three modes
//! (train: batch statistics; eval and Monte Carlo: the running ones) on one and two threads,
//! fused and not, every value exposed or not: `ir/batch_norm.ir`, a training step's gradient
//! graph, and the random graphs that draw batch norm. With the reference GEMM every value is
//! bit-identical, as `passes::specialize_batch_norm` rewrites each node into the interpreter's
//! operations in its order. Also the text form of the gradient ops.

mod common;

use common::compare::Agreement;
use common::differential::{BIT_EXACT, ONE_TWO_THREE, check, check_every_mode};
use common::gradcheck::{f32_leaves, weighted_loss, with_gradients};
use common::parse;
use dropjit::{Graph, Mode, Op};

#[test]
fn the_ir_program_compiles_to_the_interpreters_bits_in_every_mode() {
    let graph = parse(include_str!("../ir/batch_norm.ir"));
    check_every_mode(&graph, 3);
}

/// A forward with batch norm over `[N, C]`, `[N, C, L]` and `[N, C, H, W]` inputs (affine and
/// not), its running statistics, and the gradients of a loss with respect to every leaf.
const TRAINING: &str = "graph bn_step {
  %x: f32[3, 2, 2, 3] = input
  %rm: f32[2] = input
  %rv0: f32[2] = input
  %rv: f32[2] = exp %rv0
  %w: f32[2] = parameter
  %b: f32[2] = parameter
  %a: f32[3, 2, 2, 3] = batch_norm %x, %rm, %rv, %w, %b
  %t: f32[3, 2, 6] = reshape %a {shape = [3, 2, 6]}
  %u: f32[3, 2, 6] = tanh %t
  %v: f32[3, 2, 6] = batch_norm %u, %rm, %rv {eps = 0.001}
  %f: f32[3, 12] = reshape %v {shape = [3, 12]}
  %c: f32[12] = parameter
  %y: f32[3, 12] = batch_norm %f, %c, %c
  %rm.next: f32[2] = batch_norm_running_mean %x, %rm {momentum = 0.25}
  %rv.next: f32[2] = batch_norm_running_var %x, %rv
  output y = %y
  output rm.next = %rm.next
  output rv.next = %rv.next
}";

#[test]
fn a_training_steps_gradients_compile_to_the_interpreters_bits_in_every_mode() {
    let graph = weighted_loss(parse(TRAINING), "y");
    let leaves = f32_leaves(&graph);
    let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
    let (grads, _) = with_gradients(&graph, &wrt);
    let ops: Vec<&str> = grads.node_ids().map(|id| grads[id].op.name()).collect();
    assert!(ops.contains(&"batch_norm_input_grad") && ops.contains(&"batch_norm_weight_grad"));
    check_every_mode(&grads, 5);
}

#[test]
fn random_graphs_with_batch_norm_compile_to_the_interpreters_bits_in_every_mode() {
    let is_batch_norm = |op: &Op| matches!(op, Op::BatchNorm(_) | Op::BatchNormRunning(_));
    let mut checked = 0;
    for seed in 0..2000u64 {
        let graph = common::random_graph(seed);
        if !graph.node_ids().any(|id| is_batch_norm(&graph[id].op)) {
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
    assert!(printed.contains("= batch_norm_weight_grad %"), "{printed}");
    let reparsed = parse(&printed);
    assert_eq!(reparsed.to_string(), printed);
    // The affine form reads the weight, the other not; eps prints unless it is 1e-5.
    assert!(
        printed.contains("= batch_norm_input_grad %y.grad, %f, %c, %c\n"),
        "{printed}"
    );
    assert!(printed.contains("{eps = 0.001}"), "{printed}");
}

#[test]
fn a_dead_train_mode_batch_norm_over_one_value_per_channel_fails_nothing() {
    let graph = parse(
        "graph dead {
  %x: f32[1, 3] = input
  %rm: f32[3] = input
  %rv: f32[3] = input
  %bn: f32[1, 3] = batch_norm %x, %rm, %rv
  %rv.next: f32[3] = batch_norm_running_var %x, %rv
  %y: f32[1, 3] = relu %x
  output y = %y
}",
    );
    let setup = BIT_EXACT[1];
    assert!(!setup.trace);
    check(
        &graph,
        Mode::Train,
        setup,
        Agreement::Bits,
        1,
        &ONE_TWO_THREE[..1],
    )
    .unwrap();
    let live = Graph::with_every_node_as_output(&graph);
    let err = dropjit::Compiler::new()
        .mode(Mode::Train)
        .compile(&live)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "batch_norm bn: expected more than 1 value per channel when training, got input size [1, 3]"
    );
}

/// An empty batch leaves the running statistics as they are, as PyTorch does (found by the
/// `compile` fuzz target: `n - 1` of the unbiased variance underflowed), on both engines.
#[test]
fn an_empty_batch_leaves_the_running_statistics_as_they_are() {
    for x in ["[0, 3, 2, 2]", "[2, 3, 0]"] {
        let graph = parse(&format!(
            "graph empty {{
  %x: f32{x} = input
  %rm: f32[3] = input
  %rv: f32[3] = input
  %y = batch_norm %x, %rm, %rv
  %rm.next = batch_norm_running_mean %x, %rm
  %rv.next = batch_norm_running_var %x, %rv
  output y = %y
  output mean = %rm.next
  output var = %rv.next
}}"
        ));
        check_every_mode(&graph, 5);
        let values = dropjit::init::random_values(&graph, 5).unwrap();
        let mut generator = dropjit::Generator::new(0);
        let out = dropjit::interp::run(&graph, Mode::Train, &mut generator, &values).unwrap();
        for (name, input) in [("mean", "rm"), ("var", "rv")] {
            let got = &out.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(
                got.to_le_bytes(),
                values[input].to_le_bytes(),
                "{name} of {x}"
            );
        }
    }
}
