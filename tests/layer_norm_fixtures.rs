//! Layer normalization against real PyTorch: `tests/fixtures/layer_norm/forward.txt` holds
//! `torch.nn.functional.layer_norm` values and `torch.autograd` gradients (torch 2.15.0,
//! generated once by `make_fixtures.py` beside it; these tests never need torch). Every case
//! goes through the textual IR, the interpreter (the output within 1e-5 of PyTorch, whose
//! kernel computes the row moments in its own order; gradients, from `autodiff`, within 1e-4,
//! both scaled by `1 + |value|`) in train and eval mode (layer norm has no mode), and the JIT
//! (bit for bit the interpreter's, on 1 and 2 threads).

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use common::differential::assert_jit_equals;
use common::fixtures::{self, FixtureCase};
use dropjit::{Generator, Graph, Mode, Tensor, interp, text};

fn cases() -> Vec<FixtureCase> {
    fixtures::read(include_str!("fixtures/layer_norm/forward.txt"))
}

/// The case as an IR program: `y = layer_norm(x[, w[, b]])`.
fn program(case: &FixtureCase) -> String {
    let ty = |role: &str| case.tensor(role).ty().to_string();
    let normalized = case.attr("normalized_shape").replace('x', ", ");
    let eps: f64 = case.attr("eps").parse().unwrap();
    let mut lines = vec![
        format!("graph {} {{", case.name),
        format!("  %x: {} = input", ty("x")),
    ];
    let mut operands = String::new();
    for role in ["w", "b"] {
        if case.tensors.contains_key(role) {
            lines.push(format!("  %{role}: {} = parameter", ty(role)));
            operands.push_str(&format!(", %{role}"));
        }
    }
    lines.push(format!(
        "  %y: {} = layer_norm %x{operands} {{normalized_shape = [{normalized}], eps = {eps}}}",
        ty("x"),
    ));
    lines.push("  output y = %y".to_string());
    lines.push("}".to_string());
    lines.join("\n")
}

/// The program with `loss = sum(y * gy)` and the gradients of x (and w, b) as outputs `gx`,
/// `gw`, `gb`.
fn with_gradients(case: &FixtureCase, graph: &mut Graph) -> Vec<&'static str> {
    let y = graph.lookup("y").unwrap();
    let mut wrt = vec![("x", "gx")];
    for (role, grad) in [("w", "gw"), ("b", "gb")] {
        if case.tensors.contains_key(role) {
            wrt.push((role, grad));
        }
    }
    fixtures::add_vjp_outputs(graph, y, case.tensor("gy").ty(), &wrt);
    wrt.into_iter().map(|(_, g)| g).collect()
}

#[test]
fn every_case_matches_pytorch_on_both_engines() {
    let cases = cases();
    assert_eq!(cases.len(), 8);
    for case in &cases {
        let source = program(case);
        let mut graph = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            text::parse(&graph.to_string()).unwrap().to_string(),
            graph.to_string()
        );
        let grads = with_gradients(case, &mut graph);
        let mut values: BTreeMap<String, Tensor> = BTreeMap::new();
        for role in ["x", "w", "b", "gy"] {
            if let Some(t) = case.tensors.get(role) {
                values.insert(role.to_string(), t.clone());
            }
        }
        let mut expected: Vec<(&str, f32)> = vec![("y", 1e-5)];
        expected.extend(grads.iter().map(|g| (*g, 1e-4)));
        for mode in [Mode::Train, Mode::Eval] {
            let got = interp::run(&graph, mode, &mut Generator::new(0), &values).unwrap();
            let got: BTreeMap<String, Tensor> = got.into_iter().collect();
            for &(role, tolerance) in &expected {
                compare(case.tensor(role), &got[role], Agreement::Within(tolerance))
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
