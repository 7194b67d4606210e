//! Pooling against real PyTorch: `tests/fixtures/pool/forward.txt` holds
//! `torch.nn.functional` max, average and adaptive average pooling values and their
//! `torch.autograd` gradients (torch 2.15.0, generated once by `make_fixtures.py` beside it;
//! these tests never need torch), NaN, -inf and ties included. Every case goes through the textual IR, the interpreter (bit for bit
//! PyTorch's maxima, averages within relative 1e-6) and the JIT (bit for bit the
//! interpreter's, on 1 and 2 threads); then the shape rules' errors, and random pools on both
//! engines.

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use common::differential::{self, BIT_EXACT, ONE_TWO_THREE};
use common::fixtures::{self, FixtureCase};
use dropjit::{Compiler, Generator, Mode, ParameterStore, interp, text};

fn cases() -> Vec<FixtureCase> {
    fixtures::read(include_str!("fixtures/pool/forward.txt"))
}

fn program(case: &FixtureCase) -> String {
    let x = case.tensor("x").ty();
    let y = case.tensor("y").ty();
    let attrs: Vec<String> = (case.attrs.iter())
        .map(|(k, v)| {
            if v == "true" || v == "false" {
                format!("{k} = {v}")
            } else {
                format!("{k} = [{}]", v.replace(',', ", "))
            }
        })
        .collect();
    format!(
        "graph {} {{\n  %x: {x} = input\n  %y: {y} = {} %x {{{}}}\n  output y = %y\n}}",
        case.name,
        case.op,
        attrs.join(", ")
    )
}

#[test]
fn every_case_matches_pytorch_on_both_engines() {
    let cases = cases();
    assert_eq!(cases.len(), 13);
    for case in &cases {
        let graph = text::parse(&program(case)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            text::parse(&graph.to_string()).unwrap().to_string(),
            graph.to_string()
        );
        let values = BTreeMap::from([("x".to_string(), case.tensor("x").clone())]);
        let got = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
        let agreement = if case.op.starts_with("max") {
            Agreement::Bits
        } else {
            Agreement::Within(1e-6)
        };
        compare(case.tensor("y"), &got[0].1, agreement)
            .unwrap_or_else(|m| panic!("{} (interpreter against PyTorch): {m}", case.name));
        let (inputs, params) = ParameterStore::split(&graph, values);
        for threads in [1, 2] {
            let compiler = Compiler::new()
                .mode(Mode::Eval)
                .threads(threads)
                .verify(true);
            let jit = (compiler.compile(&graph).unwrap())
                .run(&mut Generator::new(0), &inputs, &params)
                .unwrap();
            compare(&got[0].1, &jit[0].1, Agreement::Bits)
                .unwrap_or_else(|m| panic!("{} (JIT, {threads} threads): {m}", case.name));
        }
    }
}

#[test]
fn gradients_match_pytorchs_autograd_on_both_engines() {
    for case in &cases() {
        let (gy, gx) = (case.tensor("gy"), case.tensor("gx"));
        let forward = program(case);
        let body = forward
            .trim_end()
            .trim_end_matches('}')
            .replace("  output y = %y\n", "");
        let source = format!(
            "{body}  %gy: {} = input\n  %weighted: {} = mul %y, %gy\n  %loss: f32[] = sum %weighted\n  output loss = %loss\n}}",
            gy.ty(),
            gy.ty()
        );
        let mut graph = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let (x, loss) = (graph.lookup("x").unwrap(), graph.lookup("loss").unwrap());
        let grads = dropjit::autodiff::gradients(&mut graph, loss, &[x]).unwrap();
        graph.add_output("gx", grads[0]).unwrap();
        let values = BTreeMap::from([
            ("x".to_string(), case.tensor("x").clone()),
            ("gy".to_string(), gy.clone()),
        ]);
        let got = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
        // Max pooling routes each gradient to one element: the sums are PyTorch's, in the same
        // order, bit for bit. Averages divide first, as PyTorch does, within rounding.
        let agreement = if case.op.starts_with("max") {
            Agreement::Bits
        } else {
            Agreement::Within(1e-5)
        };
        compare(gx, &got[1].1, agreement)
            .unwrap_or_else(|m| panic!("{} gx (interpreter against PyTorch): {m}", case.name));
        let (inputs, params) = ParameterStore::split(&graph, values);
        for threads in [1, 2] {
            let compiler = Compiler::new()
                .mode(Mode::Eval)
                .threads(threads)
                .verify(true);
            let jit = (compiler.compile(&graph).unwrap())
                .run(&mut Generator::new(0), &inputs, &params)
                .unwrap();
            compare(&got[1].1, &jit[1].1, Agreement::Bits)
                .unwrap_or_else(|m| panic!("{} gx (JIT, {threads} threads): {m}", case.name));
        }
    }
}

#[test]
fn pools_that_do_not_fit_are_typed_errors_naming_them() {
    let error = |x: &str, y: &str, op: &str| {
        let source =
            format!("graph g {{\n  %x: {x} = input\n  %y: {y} = {op}\n  output y = %y\n}}");
        text::parse(&source).unwrap_err().to_string()
    };
    let cases = [
        (
            "f32[1, 1, 5, 5]",
            "f32[1, 1, 2, 2]",
            "max_pool2d %x {kernel = [2, 2], padding = [2, 0]}",
            "max_pool2d y: padding 2 in spatial dimension 0 is more than half the kernel 2",
        ),
        (
            "f32[1, 1, 2]",
            "f32[1, 1, 1]",
            "avg_pool1d %x {kernel = [3]}",
            "avg_pool1d y: the window reaches 3 positions in spatial dimension 0, more than the padded input's 2",
        ),
        (
            "f32[5, 5]",
            "f32[2, 2]",
            "max_pool2d %x {kernel = [2, 2]}",
            "max_pool2d y: expects a 3-D (C, ...) or 4-D (N, C, ...) input, but got a 2-D input",
        ),
        (
            "f32[1, 1, 4]",
            "f32[1, 1, 2]",
            "max_pool1d %x {kernel = [2], stride = [0]}",
            "max_pool1d y: kernel [2], stride [0] and dilation [1] have to be at least 1",
        ),
        (
            "f32[1, 1, 4]",
            "f32[1, 1, 2]",
            "avg_pool1d %x {kernel = [2], dilation = [2]}",
            "avg_pool1d has no attribute 'dilation'",
        ),
        (
            "f32[1, 1, 0]",
            "f32[1, 1, 2]",
            "adaptive_avg_pool1d %x {output = [2]}",
            "adaptive_avg_pool1d y: cannot pool 0 positions into 2 in spatial dimension 0",
        ),
        (
            "f32[1, 1, 4]",
            "f32[1, 1, 2]",
            "max_pool1d %x",
            "max_pool1d y needs attribute 'kernel'",
        ),
        // Hostile sizes: an error, never an overflow.
        (
            "f32[1, 1, 4]",
            "f32[1, 1, 2]",
            "max_pool1d %x {kernel = [18446744073709551615], padding = [9223372036854775807]}",
            "max_pool1d y: spatial dimension 0: sizes past the address space",
        ),
        (
            "f32[1, 1, 4]",
            "f32[1, 1, 2]",
            "avg_pool1d %x {kernel = [18446744073709551615], stride = [18446744073709551615], ceil_mode = true}",
            "avg_pool1d y: the window reaches 18446744073709551615 positions",
        ),
    ];
    for (x, y, op, message) in cases {
        let got = error(x, y, op);
        assert!(got.contains(message), "{got}\n  does not say: {message}");
    }
}

#[test]
fn random_pools_agree_on_both_engines() {
    let mut rng = common::Rng::new(11);
    let (mut checked, mut fused, mut fused_grads) = (0, 0, 0);
    for case in 0..60 {
        let s = 1 + rng.below(3);
        let kind = rng.below(3);
        let batched = rng.chance(60);
        let mut x: Vec<usize> = if batched {
            vec![1 + rng.below(2)]
        } else {
            vec![]
        };
        x.push(1 + rng.below(3));
        let size: Vec<usize> = (0..s)
            .map(|_| if rng.chance(10) { 0 } else { 2 + rng.below(6) })
            .collect();
        x.extend(&size);
        let list = |v: &[usize]| {
            format!(
                "[{}]",
                v.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let op = if kind == 2 {
            let output: Vec<usize> = (0..s)
                .map(|i| {
                    if size[i] == 0 {
                        0
                    } else {
                        1 + rng.below(size[i] + 2)
                    }
                })
                .collect();
            format!("adaptive_avg_pool{s}d %x {{output = {}}}", list(&output))
        } else {
            let kernel: Vec<usize> = (0..s).map(|_| 1 + rng.below(3)).collect();
            let stride: Vec<usize> = (0..s).map(|_| 1 + rng.below(3)).collect();
            let padding: Vec<usize> = (0..s).map(|i| rng.below(kernel[i] / 2 + 1)).collect();
            let name = if kind == 0 { "max" } else { "avg" };
            let extra = if kind == 0 {
                let dilation: Vec<usize> = (0..s).map(|_| 1 + rng.below(2)).collect();
                format!(", dilation = {}", list(&dilation))
            } else {
                format!(", count_include_pad = {}", rng.chance(50))
            };
            format!(
                "{name}_pool{s}d %x {{kernel = {}, stride = {}, padding = {}, ceil_mode = {}{extra}}}",
                list(&kernel),
                list(&stride),
                list(&padding),
                rng.chance(50)
            )
        };
        // A max pool may take a channel dropout of its planes, which the pool's kernel
        // applies in the same pass (plan::fusion, rule 5), in train mode.
        let dropout = (kind == 0 && rng.chance(60)).then(|| {
            let p = rng.pick(&[0.25, 0.5, 0.9]);
            format!("  %dropped = dropout{s}d %y {{p = {p}, stream = 0}}\n")
        });
        let output = if dropout.is_some() { "%dropped" } else { "%y" };
        // The output type comes from inference: parse once without the check to learn it.
        let probe = format!(
            "graph probe {{\n  %x: f32{} = input\n  %y = {op}\n{}  output out = {output}\n}}",
            list(&x),
            dropout.clone().unwrap_or_default()
        );
        let Ok(graph) = text::parse(&probe) else {
            continue; // a window larger than the padded input
        };
        let mode = if dropout.is_some() {
            Mode::Train
        } else {
            Mode::Eval
        };
        for setup in [BIT_EXACT[0], BIT_EXACT[1]] {
            let result =
                differential::check(&graph, mode, setup, Agreement::Bits, case, &ONE_TWO_THREE);
            assert_eq!(result, Ok(()), "{graph}");
        }
        if dropout.is_some() {
            // One kernel computes both: the pooled values never reach memory.
            let compiled = Compiler::new().mode(Mode::Train).compile(&graph).unwrap();
            let kernels = &compiled.schedule().kernels;
            assert_eq!(kernels.len(), 1, "{graph}");
            assert_eq!(kernels[0].nodes.len(), 2, "{graph}");
            fused += 1;
        }
        if kind == 0 {
            // The gradient of a max pool and the ReLU gradient of it, one kernel (plan::fusion,
            // rule 5); with the pooling gradient an output too, it reaches its own buffer.
            let y = &graph[graph.outputs()[0].node].ty.shape;
            let attributes = &op[op.find('{').expect("the pool has attributes")..];
            let grad = format!(
                "graph pool_grad {{\n  %x: f32{x} = input\n  %g: f32{y} = input\n  %pre: f32{x} = input\n  %pg = max_pool{s}d_grad %g, %x {attributes}\n  %rg = relu_grad %pg, %pre\n  output rg = %rg\n{}}}",
                if case % 2 == 0 {
                    "  output pg = %pg\n"
                } else {
                    ""
                },
                x = list(&x),
                y = list(y.dims()),
            );
            let graph = text::parse(&grad).unwrap_or_else(|e| panic!("{e}\n{grad}"));
            for setup in [BIT_EXACT[0], BIT_EXACT[1]] {
                let result = differential::check(
                    &graph,
                    Mode::Train,
                    setup,
                    Agreement::Bits,
                    case,
                    &ONE_TWO_THREE,
                );
                assert_eq!(result, Ok(()), "{graph}");
            }
            let compiled = Compiler::new().mode(Mode::Train).compile(&graph).unwrap();
            assert_eq!(compiled.schedule().kernels.len(), 1, "{graph}");
            fused_grads += 1;
        }
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} of 60 random pools fit");
    assert!(fused >= 8, "only {fused} max pools with a channel dropout");
    assert!(fused_grads >= 10, "only {fused_grads} max pool gradients");
}
