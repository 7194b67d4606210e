//! GELU (both approximations), `exp`, `tanh` and `sigmoid` against real PyTorch:
//! `tests/fixtures/gelu/forward.txt` holds `torch.nn.functional.gelu` values and
//! `torch.autograd` gradients, and `torch.exp`/`tanh`/`sigmoid` values, each in float32 and
//! float64 (torch 2.15.0, generated once by `make_fixtures.py` beside it; these tests never
//! need torch), on 600 inputs: edges, a grid over [-8, 8] and normal values times 3.
//!
//! Every case goes through the textual IR and the interpreter (gradients from `autodiff`), and
//! the JIT must give the interpreter's bits. Against PyTorch the values agree within relative
//! 1e-5 and the gradients within relative 1e-4, each with an absolute floor where both
//! results are quantized: `1 + erf(..)` (or `1 + tanh(..)`) is an f32 near 1 whose ulp is
//! 2^-24, and GELU multiplies it by `x / 2` (its gradient's `cdf` by `g / 2`), so far left
//! both are multiples of `|x| 2^-24` that need not agree; the floor is `|x| 2^-22` for a
//! value and `|g| (1 + |x|) 2^-22` for a gradient (for exp, tanh and sigmoid, the smallest
//! normal f32). PyTorch's own vectorized `erf` is accurate to about 1e-7 absolute; against
//! its float64 results (the exact values, rounded) dropjit's agree within the same bounds.
//! The test prints how much of each bound the worst element uses.

mod common;

use std::collections::BTreeMap;

use common::differential::assert_jit_equals;
use common::fixtures::{self, FixtureCase};
use dropjit::graph::{Builder, Naming};
use dropjit::{Generator, Graph, Mode, Tensor, autodiff, interp, text};

fn cases() -> Vec<FixtureCase> {
    fixtures::read(include_str!("fixtures/gelu/forward.txt"))
}

/// The case as an IR program `y = op(x)`.
fn program(case: &FixtureCase) -> String {
    let ty = case.tensor("x").ty().to_string();
    let attrs = match case.attr("approximate") {
        "tanh" => " {approximate = tanh}",
        _ => "",
    };
    format!(
        "graph {} {{\n  %x: {ty} = input\n  %y: {ty} = {} %x{attrs}\n  output y = %y\n}}\n",
        case.name, case.op
    )
}

/// The program with `loss = sum(y * gy)` and the gradient of x as output `gx`.
fn with_gradient(case: &FixtureCase, graph: &mut Graph) {
    let y = graph.lookup("y").unwrap();
    let x = graph.lookup("x").unwrap();
    let mut b = Builder::new(graph, Naming::Exact);
    let gy = b.input("gy", case.tensor("gy").ty()).unwrap();
    let product = b.mul("product", y, gy).unwrap();
    let loss = b.sum("loss", product, Vec::new(), false).unwrap();
    let grads = autodiff::gradients(graph, loss, &[x]).unwrap();
    graph.add_output("gx", grads[0]).unwrap();
}

/// Panics unless every element of `got` is within `relative * |want| + floor(i)` of `want`
/// (NaN only against NaN, or where PyTorch's float32 result `torch32` is NaN too: the tanh
/// form's gradient overflows `x^2` in f32 past 1.8e19); returns the largest error in units
/// of that bound.
fn check(
    what: &str,
    want: &Tensor,
    torch32: &Tensor,
    got: &Tensor,
    relative: f32,
    floor: &dyn Fn(usize) -> f32,
) -> f32 {
    let (want, got) = (want.as_f32().unwrap(), got.as_f32().unwrap());
    let torch32 = torch32.as_f32().unwrap();
    let mut worst: f32 = 0.0;
    for (i, (&w, &g)) in want.iter().zip(got).enumerate() {
        if g.is_nan() && torch32[i].is_nan() {
            continue;
        }
        if w.is_nan() || g.is_nan() {
            assert!(w.is_nan() && g.is_nan(), "{what}[{i}]: {g} against {w}");
            continue;
        }
        let bound = relative * w.abs() + floor(i);
        let error = if g == w { 0.0 } else { (g - w).abs() / bound };
        assert!(
            error <= 1.0,
            "{what}[{i}]: {g} against {w} (bound {bound:e})"
        );
        worst = worst.max(error);
    }
    worst
}

#[test]
fn gelu_exp_tanh_and_sigmoid_match_pytorch_on_both_engines() {
    let cases = cases();
    assert_eq!(cases.len(), 5);
    for case in &cases {
        assert!(case.attr("torch").starts_with("2.15.0"));
        let mut graph =
            text::parse(&program(case)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let gelu = case.op == "gelu";
        if gelu {
            with_gradient(case, &mut graph);
        }
        let mut values = BTreeMap::from([("x".to_string(), case.tensor("x").clone())]);
        if gelu {
            values.insert("gy".to_string(), case.tensor("gy").clone());
        }
        let got = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
        let got: BTreeMap<String, Tensor> = got.into_iter().collect();
        let x = case.tensor("x").as_f32().unwrap().to_vec();
        let quantum = 2f32.powi(-22);
        // Elsewhere, subnormal results (sigmoid(-100) overflows exp(100) in f32, in PyTorch's
        // float32 too) count to the smallest normal.
        let value_floor = |i: usize| {
            if gelu {
                x[i].abs() * quantum
            } else {
                f32::MIN_POSITIVE
            }
        };
        for want in ["y", "y64"] {
            let what = format!("{} {want}", case.name);
            let torch32 = case.tensor("y");
            let worst = check(
                &what,
                case.tensor(want),
                torch32,
                &got["y"],
                1e-5,
                &value_floor,
            );
            println!("{what}: at most {worst:.3} of the bound");
        }
        if gelu {
            let gy = case.tensor("gy").as_f32().unwrap().to_vec();
            let gradient_floor = |i: usize| gy[i].abs() * (1.0 + x[i].abs()) * quantum;
            for want in ["gx", "gx64"] {
                let what = format!("{} {want}", case.name);
                let torch32 = case.tensor("gx");
                let worst = check(
                    &what,
                    case.tensor(want),
                    torch32,
                    &got["gx"],
                    1e-4,
                    &gradient_floor,
                );
                println!("{what}: at most {worst:.3} of the bound");
            }
        }
        assert_jit_equals(&graph, Mode::Eval, &values, &got, &case.name);
    }
}
