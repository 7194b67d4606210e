//! Batch normalization against real PyTorch: `tests/fixtures/batch_norm/forward.txt` holds
//! `torch.nn.functional.batch_norm` values, `torch.autograd` gradients and the running
//! statistics after a training call (torch 2.15.0, generated once by `make_fixtures.py`
//! beside it; these tests never need torch). Every case goes through the textual IR, the
//! interpreter (the output and the running statistics within relative 1e-5 of PyTorch, whose
//! kernels sum in their own order and in double for the statistics; gradients, from
//! `autodiff`, within 1e-4) in its mode (train; eval, and Monte Carlo mode alike), and the JIT
//! (bit for bit the interpreter's, on 1 and 2 threads).

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use common::differential::assert_jit_equals;
use common::fixtures::{self, FixtureCase};
use dropjit::{Generator, Graph, Mode, Tensor, interp, text};

fn cases() -> Vec<FixtureCase> {
    fixtures::read(include_str!("fixtures/batch_norm/forward.txt"))
}

fn training(case: &FixtureCase) -> bool {
    case.attr("training") == "true"
}

/// The case as an IR program: `y = batch_norm(x, rm, rv[, w, b])` and, in training, the
/// running statistics after it.
fn program(case: &FixtureCase) -> String {
    let ty = |role: &str| case.tensors[role].ty().to_string();
    let affine = case.attr("affine") == "true";
    let eps: f64 = case.attr("eps").parse().unwrap();
    let momentum: f64 = case.attr("momentum").parse().unwrap();
    let mut lines = vec![
        format!("graph {} {{", case.name),
        format!("  %x: {} = input", ty("x")),
        format!("  %rm: {} = input", ty("rm")),
        format!("  %rv: {} = input", ty("rv")),
    ];
    if affine {
        lines.push(format!("  %w: {} = parameter", ty("w")));
        lines.push(format!("  %b: {} = parameter", ty("b")));
    }
    lines.push(format!(
        "  %y: {} = batch_norm %x, %rm, %rv{} {{eps = {eps}}}",
        ty("x"),
        if affine { ", %w, %b" } else { "" },
    ));
    lines.push("  output y = %y".to_string());
    if training(case) {
        for (stat, name) in [("mean", "rm"), ("var", "rv")] {
            lines.push(format!(
                "  %{name}_next: {} = batch_norm_running_{stat} %x, %{name} {{momentum = {momentum}}}",
                ty(name)
            ));
            lines.push(format!("  output {name}_next = %{name}_next"));
        }
    }
    lines.push("}".to_string());
    lines.join("\n")
}

/// The program with `loss = sum(y * gy)` and the gradients of x (and w, b) as outputs `gx`,
/// `gw`, `gb`.
fn with_gradients(case: &FixtureCase, graph: &mut Graph) -> Vec<&'static str> {
    let y = graph.lookup("y").unwrap();
    let mut wrt = vec![("x", "gx")];
    if case.tensors.contains_key("w") {
        wrt.extend([("w", "gw"), ("b", "gb")]);
    }
    fixtures::add_vjp_outputs(graph, y, case.tensor("gy").ty(), &wrt);
    wrt.into_iter().map(|(_, g)| g).collect()
}

#[test]
fn every_case_matches_pytorch_on_both_engines() {
    let cases = cases();
    assert_eq!(cases.len(), 9);
    for case in &cases {
        let source = program(case);
        let mut graph = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            text::parse(&graph.to_string()).unwrap().to_string(),
            graph.to_string()
        );
        let grads = with_gradients(case, &mut graph);
        let mut values: BTreeMap<String, Tensor> = BTreeMap::new();
        for role in ["x", "rm", "rv", "w", "b", "gy"] {
            if let Some(t) = case.tensors.get(role) {
                values.insert(role.to_string(), t.clone());
            }
        }
        let mut expected: Vec<(&str, f32)> = vec![("y", 1e-5)];
        expected.extend(grads.iter().map(|g| (*g, 1e-4)));
        let modes: &[Mode] = if training(case) {
            expected.extend([("rm_next", 1e-5), ("rv_next", 1e-5)]);
            &[Mode::Train]
        } else {
            &[Mode::Eval, Mode::Mc]
        };
        for &mode in modes {
            let got = interp::run(&graph, mode, &mut Generator::new(0), &values).unwrap();
            let got: BTreeMap<String, Tensor> = got.into_iter().collect();
            for &(role, tolerance) in &expected {
                compare(
                    &case.tensors[role],
                    &got[role],
                    Agreement::Within(tolerance),
                )
                .unwrap_or_else(|m| {
                    panic!(
                        "{} {mode:?} {role} (interpreter against PyTorch): {m}",
                        case.name
                    )
                });
            }
            assert_jit_equals(&graph, mode, &values, &got, &case.name);
        }
    }
}
