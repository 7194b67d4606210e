//! Masks as outputs (`dropout_mask`): the mask agrees with the dropout's output on both
//! engines, eval mode and `p = 0` give all true, `p = 1` all false, the verifier ties every
//! mask to its dropout, the text form round-trips, and the passes and the memory planner treat
//! masks as documented. The `nn` API's `dropout_with_mask` is tested in `nn_masks.rs`.

use std::collections::BTreeMap;

use dropjit::graph::UnaryOp;
use dropjit::{
    Compiler, Dropout, DropoutKind, Error, Generator, Graph, Mode, Op, ParameterStore, Shape,
    Tensor, TensorType, interp, passes, text,
};

/// The input shape each kind is tested on: batched, with a partial last group of 128.
fn input_shape(kind: DropoutKind) -> Shape {
    match kind {
        DropoutKind::Dropout | DropoutKind::AlphaDropout => Shape::new([3, 70]),
        DropoutKind::Dropout1d | DropoutKind::FeatureAlphaDropout => Shape::new([4, 37, 5]),
        DropoutKind::Dropout2d => Shape::new([4, 37, 2, 3]),
        DropoutKind::Dropout3d => Shape::new([2, 70, 2, 1, 2]),
    }
}

/// `x -> (y, mask)` for one dropout, with `broadcast_dims` on element-wise kinds.
fn graph(d: Dropout, shape: &Shape) -> Graph {
    let mut g = Graph::new("g");
    let x = g
        .add("x", Op::Input(TensorType::f32(shape.clone())), &[])
        .unwrap();
    let (y, mask) = g.add_dropout_with_mask("d", d, x).unwrap();
    g.add_output("y", y).unwrap();
    g.add_output("mask", mask).unwrap();
    g
}

/// Nonzero inputs, so a dropped element is told apart from a kept one by its value.
fn input(shape: &Shape) -> Tensor {
    let data = (0..shape.numel()).map(|i| 0.25 + (i % 17) as f32).collect();
    Tensor::from_f32(shape.clone(), data).unwrap()
}

/// `[y, mask]` from the interpreter and from the JIT (fused, verified) at seed 3, step 9.
fn both_engines(g: &Graph, mode: Mode, x: &Tensor) -> [Vec<(String, Tensor)>; 2] {
    let values = BTreeMap::from([("x".to_string(), x.clone())]);
    let mut rng = Generator::new(3).with_step(9);
    let interpreted = interp::run(g, mode, &mut rng, &values).unwrap();
    let compiled = Compiler::new().mode(mode).verify(true).compile(g).unwrap();
    let mut rng = Generator::new(3).with_step(9);
    let jitted = compiled
        .run(&mut rng, &values, &ParameterStore::new())
        .unwrap();
    [interpreted, jitted]
}

/// Every input element reads its mask element: coordinates with broadcast ones set to 0.
fn mask_at(mask: &Tensor, input: &Shape) -> Vec<bool> {
    let m = mask.as_bool().unwrap();
    let mask_dims = mask.shape().dims();
    let strides = mask.shape().strides();
    (0..input.numel())
        .map(|flat| {
            let mut rest = flat;
            let mut j = 0;
            for d in (0..input.rank()).rev() {
                let coordinate = rest % input.dims()[d];
                rest /= input.dims()[d];
                if mask_dims[d] != 1 {
                    j += coordinate * strides[d];
                }
            }
            m[j]
        })
        .collect()
}

#[test]
fn the_mask_agrees_with_the_output_on_both_engines_for_every_kind() {
    for kind in DropoutKind::ALL {
        for p in [0.3, 0.5, 0.9] {
            let mut d = Dropout::new(kind, p, 4);
            if kind.is_elementwise() && p == 0.5 {
                d.broadcast_dims = vec![0];
            }
            let shape = input_shape(kind);
            let g = graph(d.clone(), &shape);
            let x = input(&shape);
            let [interpreted, jitted] = both_engines(&g, Mode::Train, &x);
            assert_eq!(interpreted, jitted, "{kind} p={p}: the engines differ");
            let (y, mask) = (&interpreted[0].1, &interpreted[1].1);
            assert_eq!(
                mask.shape(),
                &d.mask_shape(&shape).unwrap(),
                "{kind}: mask shape"
            );
            let kept = mask_at(mask, &shape);
            let (a, b, c) = d.alpha_coefficients();
            for ((&k, &v), &out) in kept
                .iter()
                .zip(x.as_f32().unwrap())
                .zip(y.as_f32().unwrap())
            {
                let expected = match (kind.is_alpha(), k) {
                    (false, true) => v * d.scale(),
                    (false, false) => 0.0,
                    (true, true) => v * a + b,
                    (true, false) => c,
                };
                assert_eq!(out.to_bits(), expected.to_bits(), "{kind} p={p}");
            }
            let share = mask.zero_share();
            assert!(
                share > 0.0 && share < 1.0,
                "{kind} p={p}: drop share {share}"
            );
        }
    }
}

#[test]
fn eval_mode_and_p_zero_give_all_true_and_p_one_all_false() {
    let shape = Shape::new([2, 3, 4, 4]);
    let x = input(&shape);
    let cases = [
        (Mode::Eval, 0.5, true),
        (Mode::Eval, 1.0, true),
        (Mode::Train, 0.0, true),
        (Mode::Train, 1.0, false),
    ];
    for (mode, p, value) in cases {
        for kind in [DropoutKind::Dropout, DropoutKind::Dropout2d] {
            let d = Dropout::new(kind, p, 0);
            let g = graph(d.clone(), &shape);
            for outputs in both_engines(&g, mode, &x) {
                let mask = &outputs[1].1;
                let expected = Tensor::full_bool(d.mask_shape(&shape).unwrap(), value).unwrap();
                assert_eq!(mask, &expected, "{kind} {mode:?} p={p}");
            }
        }
    }
}

#[test]
fn eval_passes_turn_masks_into_constants_and_remove_the_dropout() {
    let g = graph(
        Dropout::new(DropoutKind::Dropout1d, 0.5, 2),
        &Shape::new([2, 3, 4]),
    );
    let optimized = passes::optimize(&g, Mode::Eval).unwrap();
    assert_eq!(
        optimized.to_string(),
        "graph g {\n  %x: f32[2, 3, 4] = input\n  \
         %d.mask: bool[2, 3, 1] = constant [true, true, true, true, true, true]\n  \
         output y = %x\n  output mask = %d.mask\n}\n"
    );
    let train = passes::optimize(&g, Mode::Train).unwrap();
    assert_eq!(train, g, "train mode with p > 0 keeps both nodes");
}

#[test]
fn dead_code_elimination_keeps_the_dropout_a_live_mask_describes() {
    let build = |output_mask: bool| {
        let mut g = Graph::new("g");
        let x = g.add("x", Op::Input(TensorType::f32([5])), &[]).unwrap();
        let d = Dropout::new(DropoutKind::Dropout, 0.5, 0);
        let (_, mask) = g.add_dropout_with_mask("d", d, x).unwrap();
        let e = g.add("e", Op::Unary(UnaryOp::Exp), &[x]).unwrap();
        g.add_output("out", if output_mask { mask } else { e })
            .unwrap();
        g
    };
    // Only the mask is an output: the dropout it describes stays.
    let optimized = passes::optimize(&build(true), Mode::Train).unwrap();
    assert!(optimized.find("d").is_some() && optimized.find("d.mask").is_some());
    // Without a live mask, both go.
    let optimized = passes::optimize(&build(false), Mode::Train).unwrap();
    assert!(optimized.find("d").is_none() && optimized.find("d.mask").is_none());
}

/// The verifier's messages for `body` (lines of a graph), one per line.
fn parse_errors(body: &str) -> Vec<String> {
    let source = format!("graph g {{\n  %x: f32[2, 6] = input\n{body}}}\n");
    let err = text::parse(&source).unwrap_err();
    err.flatten().iter().map(|e| e.to_string()).collect()
}

#[test]
fn a_mask_needs_its_dropout_with_the_same_attributes_and_operand() {
    assert_eq!(
        parse_errors("  %m: bool[2, 6] = dropout_mask %x {p = 0.5, stream = 3}\n  output m = %m\n"),
        [
            "3:3: dropout_mask m: no dropout of the graph draws stream 3; a mask has to carry the stream of the dropout it describes"
        ]
    );
    let mismatches = [
        (
            "dropout_mask %x {p = 0.25, stream = 0}",
            "p differs from dropout d on stream 0: 0.25 vs 0.5",
        ),
        (
            "alpha_dropout_mask %x {p = 0.5, stream = 0}",
            "kind differs from dropout d on stream 0: alpha_dropout vs dropout",
        ),
        (
            "dropout_mask %x {p = 0.5, broadcast_dims = [0], stream = 0}",
            "broadcast_dims differs from dropout d on stream 0: [0] vs []",
        ),
        (
            "dropout_mask %r {p = 0.5, stream = 0}",
            "operand differs from dropout d on stream 0: %r vs %x",
        ),
    ];
    for (op, message) in mismatches {
        let body = format!(
            "  %r: f32[2, 6] = relu %x\n  %d: f32[2, 6] = dropout %x {{p = 0.5, stream = 0}}\n  \
             %m = {op}\n  output d = %d\n  output m = %m\n  output r = %r\n"
        );
        let name = op.split(' ').next().unwrap();
        assert_eq!(parse_errors(&body), [format!("5:3: {name} m: {message}")]);
    }
    // Built through the API, the same errors come from the verifier, naming the node.
    let mut g = Graph::new("api");
    let x = g.add("x", Op::Input(TensorType::f32([4])), &[]).unwrap();
    let m = g
        .add(
            "m",
            Op::DropoutMask(Dropout::new(DropoutKind::Dropout, 0.5, 1)),
            &[x],
        )
        .unwrap();
    g.add_output("m", m).unwrap();
    let err = dropjit::graph::verify::verify(&g).unwrap_err();
    assert!(matches!(&err, Error::OrphanMask { node, stream: 1, .. } if node == "m"));
}

#[test]
fn masks_are_never_in_place_and_block_an_in_place_dropout() {
    let mut inplace = Dropout::new(DropoutKind::Dropout, 0.5, 0);
    inplace.inplace = true;
    let mut g = Graph::new("g");
    let x = g.add("x", Op::Input(TensorType::f32([4])), &[]).unwrap();
    let err = g
        .add("m", Op::DropoutMask(inplace.clone()), &[x])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "dropout_mask m: a mask has a buffer of its own, so it cannot be inplace (only its dropout can)"
    );
    let (y, mask) = g.add_dropout_with_mask("d", inplace, x).unwrap();
    g.add_output("y", y).unwrap();
    g.add_output("mask", mask).unwrap();
    let err = Compiler::new().mode(Mode::Train).compile(&g).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dropout d: inplace would overwrite %x, which %d.mask also reads"
    );
    let err = text::parse("graph g {\n  %x: f32[4] = input\n  %d: f32[4] = dropout %x {p = 0.5}\n  %m = dropout_mask %x {p = 0.5, inplace = true, stream = 0}\n  output m = %m\n}\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "4:34: dropout_mask has no attribute 'inplace'; it takes p, broadcast_dims, sample_steps, stream"
    );
}

#[test]
fn the_text_form_round_trips_masks_and_bool_constants() {
    let source = "graph g {
  %x: f32[2, 3, 4] = input
  %d: f32[2, 3, 4] = feature_alpha_dropout %x {p = 0.125, stream = 7}
  %m: bool[2, 3, 1] = feature_alpha_dropout_mask %x {p = 0.125, stream = 7}
  %l: f32[2, 3, 4] = dropout %x {p = 0.5, broadcast_dims = [0, 2], stream = 8}
  %lm: bool[1, 3, 1] = dropout_mask %x {p = 0.5, broadcast_dims = [0, 2], stream = 8}
  %k: bool[2] = constant [true, false]
  %s: bool[] = constant false
  %t: bool[1, 3, 1] = transpose %lm {perm = [2, 1, 0]}
  output d = %d
  output m = %m
  output l = %l
  output t = %t
  output k = %k
  output s = %s
}
";
    let g = text::parse(source).unwrap();
    assert_eq!(g.to_string(), source);
    assert_eq!(text::parse(&g.to_string()).unwrap(), g);
    // Annotations are inferred when left out; the stream is required on a mask.
    let inferred = text::parse(
        "graph g {\n  %x: f32[2, 4] = input\n  %d = dropout %x {p = 0.5}\n  %m = dropout_mask %x {p = 0.5, stream = 0}\n  output m = %m\n  output d = %d\n}\n",
    )
    .unwrap();
    let m = inferred.lookup("m").unwrap();
    assert_eq!(inferred[m].ty, TensorType::bool([2, 4]));
    let errors = [
        (
            "  %d = dropout %x {p = 0.5}\n  %m = dropout_mask %x {p = 0.5}\n",
            "4:8: dropout_mask m needs attribute 'stream'",
        ),
        (
            "  %k: bool[2] = constant [true, 1]\n",
            "3:33: expected true or false in the bool[2] literal, found '1'",
        ),
        (
            "  %k: f32[2] = constant [true, 1]\n",
            "3:26: expected a number in the f32[2] literal, found 'true'",
        ),
        (
            "  %n: bool[2, 6] = neg %x\n",
            "3:7: annotation says bool[2, 6] but neg computes f32[2, 6]",
        ),
    ];
    for (body, message) in errors {
        let source = format!("graph g {{\n  %x: f32[2, 6] = input\n{body}  output x = %x\n}}\n");
        let err = text::parse(&source).unwrap_err();
        assert_eq!(err.flatten()[0].to_string(), message, "{body}");
    }
}

#[test]
fn bool_values_are_bound_checked_and_moved_by_both_engines() {
    let g = text::parse(
        "graph g {
  %m: bool[2, 3] = input
  %t: bool[3, 2] = transpose %m {perm = [1, 0]}
  %r: bool[6] = reshape %t {shape = [6]}
  output r = %r
}
",
    )
    .unwrap();
    let m = Tensor::from_bool([2, 3], vec![true, false, false, true, true, false]).unwrap();
    let expected = Tensor::from_bool([6], vec![true, true, false, true, false, false]).unwrap();
    let values = BTreeMap::from([("m".to_string(), m)]);
    let got = interp::run(&g, Mode::Eval, &mut Generator::new(0), &values).unwrap();
    assert_eq!(got[0].1, expected);
    let compiled = Compiler::new().verify(true).compile(&g).unwrap();
    let got = compiled
        .run(&mut Generator::new(0), &values, &ParameterStore::new())
        .unwrap();
    assert_eq!(got[0].1, expected);
    let wrong = BTreeMap::from([(
        "m".to_string(),
        Tensor::from_f32([2, 3], vec![0.0; 6]).unwrap(),
    )]);
    let err = compiled
        .run(&mut Generator::new(0), &wrong, &ParameterStore::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "input m expects bool[2, 3], but got f32[2, 3]"
    );
}
