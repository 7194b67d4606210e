//! Convolution against real PyTorch: `tests/fixtures/conv/forward.txt` holds
//! `torch.nn.functional.conv1d/2d/3d` values and `torch.autograd` gradients (torch 2.15.0,
//! generated once by `make_fixtures.py` beside it; these tests never need torch). Every case
//! goes through the textual IR, the interpreter (within relative 1e-5 of PyTorch, whose
//! kernels sum in their own order; gradients, from `autodiff`, within 1e-4) and the JIT (bit
//! for bit the interpreter's, on 1 and 2 threads). Then the shape rule's errors, and random
//! configurations on both engines.

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use common::differential::{self, BIT_EXACT, ONE_TWO_THREE};
use common::fixtures::{self, FixtureCase};
use dropjit::graph::Conv;
use dropjit::{Compiler, Gemm, Generator, Mode, ParameterStore, Tensor, interp, text};

fn cases() -> Vec<FixtureCase> {
    fixtures::read(include_str!("fixtures/conv/forward.txt"))
}

/// The case as an IR program: `y = convNd(x, w[, b])` with its attributes.
fn program(case: &FixtureCase) -> String {
    let ty = |role: &str| case.tensors[role].ty().to_string();
    let list = |key: &str| format!("[{}]", case.attr(key).replace(',', ", "));
    let bias = case.tensors.contains_key("b");
    let mut lines = vec![
        format!("graph {} {{", case.name),
        format!("  %x: {} = input", ty("x")),
        format!("  %w: {} = parameter", ty("w")),
    ];
    if bias {
        lines.push(format!("  %b: {} = parameter", ty("b")));
    }
    lines.push(format!(
        "  %y: {} = {} %x, %w{} {{stride = {}, padding = {}, padding_end = {}, dilation = {}, groups = {}}}",
        ty("y"),
        case.op,
        if bias { ", %b" } else { "" },
        list("stride"),
        list("padding"),
        list("padding_end"),
        list("dilation"),
        case.attr("groups")
    ));
    lines.push("  output y = %y".to_string());
    lines.push("}".to_string());
    lines.join("\n")
}

#[test]
fn every_case_matches_pytorch_on_both_engines() {
    let cases = cases();
    assert_eq!(cases.len(), 8);
    for case in &cases {
        let graph = text::parse(&program(case)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // The text form round-trips.
        assert_eq!(
            text::parse(&graph.to_string()).unwrap().to_string(),
            graph.to_string()
        );
        let mut values: BTreeMap<String, Tensor> = BTreeMap::new();
        for role in ["x", "w", "b"] {
            if let Some(t) = case.tensors.get(role) {
                values.insert(role.to_string(), t.clone());
            }
        }
        let expected = &case.tensors["y"];
        let got = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
        compare(expected, &got[0].1, Agreement::Within(1e-5))
            .unwrap_or_else(|m| panic!("{} (interpreter against PyTorch): {m}", case.name));
        let (inputs, params) = ParameterStore::split(&graph, values.clone());
        // The reference GEMM sums in the interpreter's order; the blocked one in fused
        // multiply-adds, within rounding.
        let gemms = [
            (Gemm::Reference, Agreement::Bits),
            (Gemm::Blocked, Agreement::Within(1e-5)),
        ];
        for (gemm, agreement) in gemms {
            for threads in [1, 2] {
                let compiler = Compiler::new().mode(Mode::Eval).threads(threads);
                let compiled = compiler.gemm(gemm).verify(true).compile(&graph).unwrap();
                let jit = compiled
                    .run(&mut Generator::new(0), &inputs, &params)
                    .unwrap();
                compare(&got[0].1, &jit[0].1, agreement).unwrap_or_else(|m| {
                    panic!("{} (JIT, {gemm:?}, {threads} threads): {m}", case.name)
                });
            }
        }
    }
}

#[test]
fn gradients_match_pytorchs_autograd_on_both_engines() {
    for case in &cases() {
        let ty = |role: &str| case.tensors[role].ty().to_string();
        let forward = program(case);
        let body = forward
            .trim_end()
            .trim_end_matches('}')
            .replace("  output y = %y\n", "");
        let source = format!(
            "{body}  %gy: {} = input\n  %weighted: {} = mul %y, %gy\n  %loss: f32[] = sum %weighted\n  output loss = %loss\n}}",
            ty("gy"),
            ty("y")
        );
        let mut graph =
            text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}\n{source}", case.name));
        let bias = case.tensors.contains_key("b");
        let roles: &[&str] = if bias { &["x", "w", "b"] } else { &["x", "w"] };
        let wrt: Vec<_> = roles.iter().map(|r| graph.lookup(r).unwrap()).collect();
        let loss = graph.lookup("loss").unwrap();
        let grads = dropjit::autodiff::gradients(&mut graph, loss, &wrt).unwrap();
        for (role, grad) in roles.iter().zip(grads) {
            graph.add_output(format!("g{role}"), grad).unwrap();
        }
        let values: BTreeMap<String, Tensor> = (["x", "w", "b", "gy"].iter())
            .filter_map(|r| case.tensors.get(*r).map(|t| (r.to_string(), t.clone())))
            .collect();
        let got = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
        for (name, value) in &got[1..] {
            compare(&case.tensors[name.as_str()], value, Agreement::Within(1e-4)).unwrap_or_else(
                |m| panic!("{} {name} (interpreter against PyTorch): {m}", case.name),
            );
        }
        let (inputs, params) = ParameterStore::split(&graph, values);
        for threads in [1, 2] {
            let compiler = Compiler::new()
                .mode(Mode::Eval)
                .threads(threads)
                .gemm(Gemm::Reference)
                .verify(true);
            let jit = (compiler.compile(&graph).unwrap())
                .run(&mut Generator::new(0), &inputs, &params)
                .unwrap();
            for ((name, expected), (_, value)) in got.iter().zip(&jit) {
                compare(expected, value, Agreement::Bits).unwrap_or_else(|m| {
                    panic!("{} {name} (JIT, {threads} threads): {m}", case.name)
                });
            }
        }
    }
}

#[test]
fn same_padding_is_pytorchs() {
    // PyTorch's "same": the total padding dilation * (k - 1), the odd one at the end.
    for case in cases().iter().filter(|c| c.name.contains("same")) {
        let w = case.tensors["w"].shape().dims();
        let dilation: Vec<usize> = (case.attr("dilation").split(','))
            .map(|d| d.parse().unwrap())
            .collect();
        let same = Conv::same(&w[2..], &dilation, true);
        let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        assert_eq!(join(&same.padding), case.attr("padding"), "{}", case.name);
        assert_eq!(
            join(&same.padding_end),
            case.attr("padding_end"),
            "{}",
            case.name
        );
    }
}

#[test]
fn shapes_that_do_not_fit_are_typed_errors_naming_them() {
    let error = |body: &str| {
        let source = format!("graph g {{\n{body}\n  output y = %y\n}}");
        text::parse(&source).unwrap_err().to_string()
    };
    let cases = [
        (
            "  %x: f32[1, 3, 5, 5] = input\n  %w: f32[4, 2, 3, 3] = parameter\n  %y: f32[1, 4, 3, 3] = conv2d %x, %w",
            "conv2d y: the input [1, 3, 5, 5] has 3 channels, but the weight [4, 2, 3, 3] expects 2 (in_channels / groups = 2, groups = 1)",
        ),
        (
            "  %x: f32[1, 4, 5, 5] = input\n  %w: f32[6, 2, 3, 3] = parameter\n  %y: f32[1, 6, 3, 3] = conv2d %x, %w {groups = 4}",
            "conv2d y: 4 input and 6 output channels have to be divisible by groups = 4",
        ),
        (
            "  %x: f32[1, 1, 2, 5] = input\n  %w: f32[1, 1, 3, 3] = parameter\n  %y: f32[1, 1, 1, 3] = conv2d %x, %w",
            "conv2d y: the kernel reaches 3 positions in spatial dimension 0, more than the padded input's 2",
        ),
        (
            "  %x: f32[2, 5] = input\n  %w: f32[1, 1, 3, 3] = parameter\n  %y: f32[1, 1] = conv2d %x, %w",
            "conv2d y: expects a 3-D (C, ...) or 4-D (N, C, ...) input, but got a 2-D input",
        ),
        (
            "  %x: f32[1, 1, 5] = input\n  %w: f32[1, 1, 3] = parameter\n  %y: f32[1, 1, 3] = conv1d %x, %w {stride = [0]}",
            "conv1d y: stride [0], dilation [1] and groups 1 have to be at least 1",
        ),
        (
            "  %x: f32[1, 1, 5, 5] = input\n  %w: f32[1, 1, 3, 3] = parameter\n  %y: f32[1, 1, 3, 3] = conv2d %x, %w {stride = [1]}",
            "attribute 'stride' has to be a list of 2 non-negative integers (one per spatial dimension), found 1 of them",
        ),
        (
            "  %x: f32[1, 2, 5] = input\n  %w: f32[3, 2, 3] = parameter\n  %b: f32[2] = parameter\n  %y: f32[1, 3, 3] = conv1d %x, %w, %b",
            "conv1d y: the bias has to be [3], one per output channel, but is [2]",
        ),
        // Hostile sizes: an error, never an overflow.
        (
            "  %x: f32[1, 1, 5] = input\n  %w: f32[1, 1, 3] = parameter\n  %y: f32[1, 1, 3] = conv1d %x, %w {padding = [18446744073709551615]}",
            "conv1d y: spatial dimension 0: an empty kernel, or sizes past the address space",
        ),
        (
            "  %x: f32[1, 1, 5] = input\n  %w: f32[1, 1, 3] = parameter\n  %y: f32[1, 1, 3] = conv1d %x, %w {dilation = [9223372036854775807]}",
            "conv1d y: the kernel reaches 18446744073709551615 positions in spatial dimension 0, more than the padded input's 5",
        ),
    ];
    for (body, message) in cases {
        let got = error(body);
        assert!(got.contains(message), "{got}\n  does not say: {message}");
    }
}

#[test]
fn random_configurations_agree_on_both_engines() {
    let mut rng = common::Rng::new(7);
    for case in 0..24 {
        let s = 1 + rng.below(3);
        let groups = 1 + rng.below(3);
        let per_group_in = 1 + rng.below(2);
        let per_group_out = 1 + rng.below(2);
        let (c, o) = (groups * per_group_in, groups * per_group_out);
        let kernel: Vec<usize> = (0..s).map(|_| 1 + rng.below(3)).collect();
        let stride: Vec<usize> = (0..s).map(|_| 1 + rng.below(2)).collect();
        let dilation: Vec<usize> = (0..s).map(|_| 1 + rng.below(2)).collect();
        let padding: Vec<usize> = (0..s).map(|_| rng.below(3)).collect();
        let padding_end: Vec<usize> = (0..s).map(|_| rng.below(3)).collect();
        // Big enough for the dilated kernel, sometimes empty of input and all padding.
        let size: Vec<usize> = (0..s)
            .map(|i| {
                (dilation[i] * (kernel[i] - 1) + 1).saturating_sub(padding[i] + padding_end[i])
                    + rng.below(4)
            })
            .collect();
        let batched = rng.chance(70);
        let mut x: Vec<usize> = if batched {
            vec![1 + rng.below(2), c]
        } else {
            vec![c]
        };
        x.extend(&size);
        let mut w = vec![o, per_group_in];
        w.extend(&kernel);
        let bias = rng.chance(50);
        let conv = Conv {
            stride,
            padding,
            padding_end,
            dilation,
            groups,
            bias,
        };
        let list = |v: &[usize]| {
            format!(
                "[{}]",
                v.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let out = conv
            .output_shape(
                &dropjit::Shape::new(x.clone()),
                &dropjit::Shape::new(w.clone()),
            )
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        let source = format!(
            "graph random_conv_{case} {{\n  %x: f32{} = input\n  %w: f32{} = parameter\n{}  %y: f32{} = {} %x, %w{} {{stride = {}, padding = {}, padding_end = {}, dilation = {}, groups = {groups}}}\n  %r: f32{} = relu %y\n{}  output r = %r\n}}",
            list(&x),
            list(&w),
            if bias {
                format!("  %b: f32[{o}] = parameter\n")
            } else {
                String::new()
            },
            list(out.dims()),
            conv.name(),
            if bias { ", %b" } else { "" },
            list(&conv.stride),
            list(&conv.padding),
            list(&conv.padding_end),
            list(&conv.dilation),
            list(out.dims()),
            // The ReLU is the convolution's epilogue (plan::fusion): with the convolution an
            // output too, its values reach their own buffer; without, the ReLU's in place.
            if case % 2 == 0 {
                "  output y = %y\n"
            } else {
                ""
            },
        );
        let graph = text::parse(&source).unwrap_or_else(|e| panic!("{e}\n{source}"));
        for setup in [BIT_EXACT[0], BIT_EXACT[1]] {
            let result = differential::check(
                &graph,
                Mode::Eval,
                setup,
                Agreement::Bits,
                case,
                &ONE_TWO_THREE,
            );
            assert_eq!(result, Ok(()), "{source}");
        }
    }
}
