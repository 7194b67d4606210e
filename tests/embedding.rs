//! Embedding lookup and its table gradient: against PyTorch (`tests/fixtures/embedding`,
//! torch 2.15.0, generated once by `make_fixtures.py` there: the forward exactly, the
//! scatter-add's sums within 1e-6 since PyTorch may add repeated rows in another order), the
//! JIT against the interpreter bit for bit on one and two threads in every mode
//! (`ir/embedding.ir`, a training step's gradients, random graphs), the padding row, and the
//! run-time and type errors, alike on both engines.

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use common::differential::{assert_jit_equals, check_every_mode};
use common::fixtures::{self, FixtureCase};
use common::gradcheck::{f32_leaves, weighted_loss, with_gradients};
use common::parse;
use dropjit::{Compiler, Generator, Graph, Mode, Op, ParameterStore, Tensor, interp, text};

#[test]
fn the_ir_program_compiles_to_the_interpreters_bits_in_every_mode() {
    check_every_mode(&parse(include_str!("../ir/embedding.ir")), 3);
}

#[test]
fn a_training_steps_table_gradients_compile_to_the_interpreters_bits() {
    let graph = weighted_loss(parse(include_str!("../ir/embedding.ir")), "y");
    let leaves = f32_leaves(&graph);
    let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
    let (grads, names) = with_gradients(&graph, &wrt);
    let printed = grads.to_string();
    assert!(
        printed
            .contains("= embedding_grad %sum.grad, %tokens {num_embeddings = 11, padding_idx = 0}"),
        "{printed}"
    );
    assert_eq!(parse(&printed).to_string(), printed);
    assert!(names.iter().any(|n| n == "wte.grad"));
    check_every_mode(&grads, 5);
}

fn cases() -> Vec<FixtureCase> {
    fixtures::read(include_str!("fixtures/embedding/forward.txt"))
}

/// The case as a program: `y = embedding(indices, w)`, `loss = sum(y * gy)`, and the table's
/// gradient as output `gw`.
fn program(case: &FixtureCase) -> Graph {
    let padding = match case.attr("padding_idx") {
        "none" => String::new(),
        p => format!(" {{padding_idx = {p}}}"),
    };
    let source = format!(
        "graph {} {{\n  %indices: {} = input\n  %w: {} = parameter\n  %y = embedding %indices, %w{padding}\n  output y = %y\n}}",
        case.name,
        case.tensor("indices").ty(),
        case.tensor("w").ty(),
    );
    let mut graph = parse(&source);
    let y = graph.lookup("y").unwrap();
    fixtures::add_vjp_outputs(&mut graph, y, case.tensor("gy").ty(), &[("w", "gw")]);
    graph
}

#[test]
fn every_case_matches_pytorch_on_both_engines() {
    let cases = cases();
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let graph = program(case);
        let values: BTreeMap<String, Tensor> = ["indices", "w", "gy"]
            .map(|role| (role.to_string(), case.tensor(role).clone()))
            .into();
        let got = interp::run(&graph, Mode::Train, &mut Generator::new(0), &values).unwrap();
        let got: BTreeMap<String, Tensor> = got.into_iter().collect();
        compare(case.tensor("y"), &got["y"], Agreement::Bits)
            .unwrap_or_else(|m| panic!("{} y: {m}", case.name));
        compare(case.tensor("gw"), &got["gw"], Agreement::Within(1e-6))
            .unwrap_or_else(|m| panic!("{} gw: {m}", case.name));
        assert_jit_equals(&graph, Mode::Train, &values, &got, &case.name);
    }
}

#[test]
fn the_padding_row_gets_no_gradient() {
    for case in cases().iter().filter(|c| c.attr("padding_idx") != "none") {
        let graph = program(case);
        let values: BTreeMap<String, Tensor> = ["indices", "w", "gy"]
            .map(|role| (role.to_string(), case.tensor(role).clone()))
            .into();
        let got = interp::run(&graph, Mode::Train, &mut Generator::new(0), &values).unwrap();
        let gw = got
            .iter()
            .find(|(n, _)| n == "gw")
            .unwrap()
            .1
            .as_f32()
            .unwrap();
        let p: i64 = case.attr("padding_idx").parse().unwrap();
        let row = p.rem_euclid(9) as usize;
        assert!(
            gw[row * 4..(row + 1) * 4].iter().all(|&v| v.to_bits() == 0),
            "{}",
            case.name
        );
        assert!(gw.iter().any(|&v| v != 0.0));
    }
}

/// An index outside the table is the same typed error on both engines, naming the node, the
/// index and its position, for the lookup and for a gradient given hostile indices.
#[test]
fn indices_outside_the_table_are_run_time_errors_on_both_engines() {
    let graph = parse(
        "graph lookup {
  %tokens: i32[2, 3] = input
  %w: f32[4, 2] = input
  %g: f32[2, 3, 2] = input
  %y = embedding %tokens, %w
  %gw = embedding_grad %g, %tokens {num_embeddings = 4}
  output y = %y
  output gw = %gw
}",
    );
    let w = Tensor::from_f32([4, 2], vec![1.0; 8]).unwrap();
    let g = Tensor::from_f32([2, 3, 2], vec![1.0; 12]).unwrap();
    for (tokens, message) in [
        ([0, 1, 2, 3, 4, 0], "index 4 at position 4 is outside 0..4"),
        (
            [0, -1, 2, 3, 3, 0],
            "index -1 at position 1 is outside 0..4",
        ),
    ] {
        let tokens = Tensor::from_i32([2, 3], tokens.to_vec()).unwrap();
        let values = BTreeMap::from([
            ("tokens".to_string(), tokens),
            ("w".to_string(), w.clone()),
            ("g".to_string(), g.clone()),
        ]);
        let interpreted = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values);
        let error = interpreted.err().unwrap().to_string();
        assert!(
            error.starts_with("embedding") && error.ends_with(message),
            "{error}"
        );
        let compiled = Compiler::new().mode(Mode::Eval).compile(&graph).unwrap();
        let (inputs, params) = ParameterStore::split(&graph, values);
        let jit = compiled.run(&mut Generator::new(0), &inputs, &params);
        let jit_error = jit.err().unwrap().to_string();
        assert!(jit_error.ends_with(message), "{jit_error}");
        // The gradient alone checks its indices too.
        let lone = parse(
            "graph lone {
  %tokens: i32[2, 3] = input
  %g: f32[2, 3, 2] = input
  %gw = embedding_grad %g, %tokens {num_embeddings = 4}
  output gw = %gw
}",
        );
        let compiled = Compiler::new().mode(Mode::Eval).compile(&lone).unwrap();
        let values = BTreeMap::from([
            ("tokens".to_string(), inputs["tokens"].clone()),
            ("g".to_string(), g.clone()),
        ]);
        let error = compiled
            .run(&mut Generator::new(0), &values, &ParameterStore::new())
            .err()
            .unwrap();
        assert_eq!(error.to_string(), format!("embedding_grad gw: {message}"));
    }
}

#[test]
fn tables_and_attributes_that_do_not_fit_are_type_errors() {
    let cases = [
        (
            "%i: i32[3] = input\n  %w: f32[4] = input\n  %y = embedding %i, %w",
            "embedding y: the table has to be [num_embeddings, embedding_dim], but is [4]",
        ),
        (
            "%i: i32[3] = input\n  %w: f32[4, 2] = input\n  %y = embedding %i, %w {padding_idx = 4}",
            "embedding y: padding_idx has to be within -4..4, but is 4",
        ),
        (
            "%i: i32[3] = input\n  %w: f32[4, 2] = input\n  %y = embedding %i, %w {padding_idx = -5}",
            "embedding y: padding_idx has to be within -4..4, but is -5",
        ),
        (
            "%i: f32[3] = input\n  %w: f32[4, 2] = input\n  %y = embedding %i, %w",
            "i32",
        ),
        (
            "%i: i32[3] = input\n  %g: f32[2, 2] = input\n  %y = embedding_grad %g, %i {num_embeddings = 4}",
            "embedding_grad y: the gradient has to be [*indices, embedding_dim] for indices [3], but is [2, 2]",
        ),
    ];
    for (body, message) in cases {
        let source = format!("graph bad {{\n  {body}\n  output y = %y\n}}");
        let error = text::parse(&source).err().unwrap().to_string();
        assert!(error.contains(message), "{error}\nexpected: {message}");
    }
}

#[test]
fn random_graphs_with_embeddings_compile_to_the_interpreters_bits() {
    let mut checked = 0;
    for seed in 0..4000u64 {
        let graph = common::random_graph(seed);
        if !(graph.node_ids()).any(|id| matches!(graph[id].op, Op::Embedding(_))) {
            continue;
        }
        check_every_mode(&graph, seed);
        checked += 1;
        if checked == 30 {
            break;
        }
    }
    assert_eq!(checked, 30);
}
