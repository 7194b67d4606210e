//! `autodiff::gradients` as an API: its errors, names, zero gradients, repeated calls, and
//! the new ops' place in the IR (verifier rule 8, text round trip, eval mode).

mod common;

use common::gradcheck::{weighted_loss, with_gradients};
use dropjit::graph::verify::verify;
use dropjit::passes::{PipelineOptions, run_pipeline};
use dropjit::{Generator, Graph, Mode, NodeId, Op, autodiff, init, interp, text};

fn parse(body: &str) -> Graph {
    text::parse(&format!("graph g {{\n{body}\n}}\n")).unwrap()
}

fn ids(graph: &Graph, names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|n| graph.lookup(n).unwrap()).collect()
}

fn error(graph: &Graph, loss: &str, wrt: &[&str]) -> String {
    let mut graph = graph.clone();
    let loss = graph.lookup(loss).unwrap();
    let wrt = ids(&graph, wrt);
    autodiff::gradients(&mut graph, loss, &wrt)
        .unwrap_err()
        .to_string()
}

#[test]
fn refuses_what_it_cannot_differentiate() {
    let graph = parse(
        "%x: f32[3] = input
         %t: i32[] = input
         %g: f32[3] = input
         %s: f32[3] = selu_grad %g, %x
         %l: f32[] = sum %s
         %c: f32[] = cross_entropy %x, %t
         %cg: f32[3] = cross_entropy_grad %x, %t, %c
         %cl: f32[] = sum %cg
         output l = %l
         output cl = %cl",
    );
    assert_eq!(
        error(&graph, "s", &["x"]),
        "cannot differentiate selu_grad s: a loss has to be an f32 scalar f32[], but it is f32[3]"
    );
    assert_eq!(
        error(&graph, "t", &["x"]),
        "cannot differentiate input t: a loss has to be an f32 scalar f32[], but it is i32[]"
    );
    assert_eq!(
        error(&graph, "l", &["t"]),
        "cannot differentiate input t: only f32 values have gradients, but it is i32[]"
    );
    assert_eq!(
        error(&graph, "l", &["x"]),
        "cannot differentiate selu_grad s: selu_grad has no derivative with respect to x (operand 1)"
    );
    assert_eq!(
        error(&graph, "cl", &["x"]),
        "cannot differentiate cross_entropy_grad cg: cross_entropy_grad has no derivative"
    );
    // With respect to g alone, selu_grad is linear: fine.
    let mut ok = graph.clone();
    let (l, g) = (ok.lookup("l").unwrap(), ok.lookup("g").unwrap());
    autodiff::gradients(&mut ok, l, &[g]).unwrap();
    verify(&ok).unwrap();
}

#[test]
fn names_derive_from_the_forward_and_stay_unique() {
    let graph = weighted_loss(
        parse(
            "%a: f32[2, 3] = input
             %b: f32[2, 3] = input
             %u: f32[4] = input
             %y: f32[2, 3] = add %a, %b
             output y = %y",
        ),
        "y",
    );
    let (mut graph, names) = with_gradients(&graph, &["a", "b", "u", "y"]);
    assert_eq!(names, ["a.grad", "b.grad", "u.grad", "y.grad"]);
    // a and b receive y's gradient itself: each gets a view under its own name.
    assert!(matches!(
        graph[graph.lookup("a.grad").unwrap()].op,
        Op::Reshape { .. }
    ));
    // u is not on the loss's path: a zero.
    let values = init::random_values(&graph, 1).unwrap();
    let outputs = interp::run(&graph, Mode::Train, &mut Generator::new(1), &values).unwrap();
    let get = |name: &str| outputs.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(get("u.grad").as_f32().unwrap(), [0.0; 4]);
    assert_eq!(get("a.grad"), values["loss_w"]);
    // A second call takes fresh names.
    let loss = graph.lookup("loss").unwrap();
    let wrt = ids(&graph, &["a", "y"]);
    let again = autodiff::gradients(&mut graph, loss, &wrt).unwrap();
    let names: Vec<&str> = again.iter().map(|&id| graph[id].name.as_str()).collect();
    assert_eq!(names, ["a.grad_1", "y.grad_1"]);
    assert!(
        graph.find("y.grad_2").is_none(),
        "no alias for a gradient of its own"
    );
    verify(&graph).unwrap();
}

#[test]
fn the_new_ops_round_trip_and_eval_mode_removes_dropout_gradients() {
    let graph = weighted_loss(
        parse(
            "%x: f32[4, 6] = input
             %m: f32[4, 1] = amax %x {axes = [1], keepdim = true}
             %d: f32[4, 6] = feature_alpha_dropout %x {p = 0.5, stream = 4}
             %e: f32[4, 6] = sub %d, %m
             %y: f32[4, 6] = selu %e
             output y = %y",
        ),
        "y",
    );
    let (graph, _) = with_gradients(&graph, &["x"]);
    let printed = graph.to_string();
    for op in ["feature_alpha_dropout_grad", "selu_grad", "equal", "expand"] {
        assert!(
            printed.contains(&format!("= {op} ")),
            "{op} missing:\n{printed}"
        );
    }
    assert_eq!(text::parse(&printed).unwrap(), graph);
    let eval = run_pipeline(&graph, &PipelineOptions::new(Mode::Eval))
        .unwrap()
        .graph;
    assert!(
        eval.node_ids()
            .all(|id| eval[id].op.drawn_dropout().is_none()),
        "{eval}"
    );
    // The eliminated graph computes what eval mode computes.
    let values = init::random_values(&graph, 3).unwrap();
    let eval_run = interp::run(&graph, Mode::Eval, &mut Generator::new(3), &values).unwrap();
    let optimized_run = interp::run(&eval, Mode::Eval, &mut Generator::new(3), &values).unwrap();
    assert_eq!(eval_run, optimized_run);
}

#[test]
fn the_verifier_ties_a_dropout_gradient_to_its_stream() {
    let good = "%x: f32[4, 6] = input
                %d: f32[4, 6] = dropout %x {p = 0.5, stream = 0}
                %g: f32[4, 6] = dropout_grad %x {p = 0.5, stream = 0}
                %o: f32[4, 6] = dropout_grad %x {p = 0.25, stream = 9}
                output g = %g
                output o = %o";
    verify(&parse(good)).unwrap();
    let cases = [
        (
            good.replace(
                "%g: f32[4, 6] = dropout_grad %x {p = 0.5",
                "%g: f32[4, 6] = dropout_grad %x {p = 0.3",
            ),
            "dropout_grad g: p differs from d on stream 0: 0.3 vs 0.5",
        ),
        (
            good.replace(
                "%g: f32[4, 6] = dropout_grad %x",
                "%g: f32[4, 6] = alpha_dropout_grad %x",
            ),
            "alpha_dropout_grad g: kind differs from d on stream 0: alpha_dropout vs dropout",
        ),
        (
            good.replace(
                "%o: f32[4, 6] = dropout_grad %x {p = 0.25, stream = 9}",
                "%o: f32[4, 6] = dropout_grad %x {p = 0.5, broadcast_dims = [0], stream = 0}",
            ),
            "dropout_grad o: broadcast_dims differs from d on stream 0: [0] vs []",
        ),
    ];
    for (source, expected) in cases {
        let err = text::parse(&format!("graph g {{\n{source}\n}}\n")).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{err}\nexpected {expected}"
        );
    }
}
