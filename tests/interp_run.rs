//! Running graphs: the dropout family under RNG contract v1 (checked against an independent
//! computation from `rng::mask::uniform`), train and eval modes and the generator step,
//! traces, binding errors, and the f64 entry point.

use std::collections::BTreeMap;

use dropjit::graph::{BinaryOp, ReduceOp, UnaryOp};
use dropjit::interp::{self, Array, Value, ValueF64};
use dropjit::rng::mask::{MaskSource, keep_threshold, uniform};
use dropjit::{Dropout, DropoutKind, Generator, Graph, Mode, NodeId, Op, Tensor, TensorType};

const NAN: f32 = f32::NAN;
const INF: f32 = f32::INFINITY;
const SEED: u64 = 0x5eed_0000_0000_002a;

fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    g.add(name, Op::Input(TensorType::f32(shape.to_vec())), &[])
        .unwrap()
}

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), data.to_vec()).unwrap()
}

fn bind(values: Vec<(&str, Tensor)>) -> BTreeMap<String, Tensor> {
    values
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

fn bits(x: &Tensor) -> Vec<u32> {
    x.as_f32().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// Distinct values with both signs and a zero: -5, -4.63, ...
fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.37 - 5.0).collect()
}

fn dropout_graph(d: Dropout, shape: &[usize]) -> Graph {
    let mut g = Graph::new("drop");
    let x = input(&mut g, "x", shape);
    let y = g.add("y", Op::Dropout(d), &[x]).unwrap();
    g.add_output("y", y).unwrap();
    g
}

/// Runs `d` on `x` in `mode` at `step` and returns the output.
fn drop(d: &Dropout, x: &Tensor, mode: Mode, step: u32) -> Tensor {
    let g = dropout_graph(d.clone(), x.shape().dims());
    let mut rng = Generator::new(SEED).with_step(step);
    let out = interp::run(&g, mode, &mut rng, &bind(vec![("x", x.clone())])).unwrap();
    out.into_iter().next().unwrap().1
}

/// The mask index of every input element, by hand: row-major coordinates in `shape`, with
/// the coordinates of dimensions where `mask` is 1 set to 0, read row-major in `mask`.
fn mask_indices(shape: &[usize], mask: &[usize]) -> Vec<u64> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|mut i| {
            let mut coords = vec![0; shape.len()];
            for d in (0..shape.len()).rev() {
                coords[d] = i % shape[d];
                i /= shape[d];
            }
            let mut j = 0;
            for d in 0..shape.len() {
                j = j * mask[d] as u64 + if mask[d] == 1 { 0 } else { coords[d] as u64 };
            }
            j
        })
        .collect()
}

/// The expected output, element by element from `uniform(source, j) < Q`.
fn expected(d: &Dropout, x: &[f32], indices: &[u64], step: u32) -> Vec<u32> {
    let source = MaskSource {
        seed: SEED,
        stream: d.stream,
        step,
    };
    let q = keep_threshold(d.p);
    let (a, b, c) = d.alpha_coefficients();
    x.iter()
        .zip(indices)
        .map(|(&v, &j)| {
            let keep = u64::from(uniform(source, j)) < q;
            let y = match (d.kind.is_alpha(), keep) {
                (false, true) => v * d.scale(),
                (false, false) => 0.0,
                (true, true) => (v * a) + b,
                (true, false) => c,
            };
            y.to_bits()
        })
        .collect()
}

/// (kind, input shape, mask shape written out by hand).
fn cases() -> Vec<(DropoutKind, Vec<usize>, Vec<usize>)> {
    use DropoutKind::*;
    vec![
        (Dropout, vec![3, 100], vec![3, 100]),
        (Dropout1d, vec![2, 8, 7], vec![2, 8, 1]),
        (Dropout1d, vec![8, 7], vec![8, 1]),
        (Dropout2d, vec![2, 8, 4, 5], vec![2, 8, 1, 1]),
        (Dropout2d, vec![8, 4, 5], vec![8, 1, 1]),
        (Dropout3d, vec![2, 8, 2, 2, 3], vec![2, 8, 1, 1, 1]),
        (Dropout3d, vec![8, 2, 2, 3], vec![8, 1, 1, 1]),
        (AlphaDropout, vec![300], vec![300]),
        (FeatureAlphaDropout, vec![2, 8, 5], vec![2, 8, 1]),
        (FeatureAlphaDropout, vec![4, 70], vec![4, 70]),
    ]
}

#[test]
fn every_variant_matches_the_rng_contract_bit_for_bit() {
    for (kind, shape, mask) in cases() {
        for (p, step) in [(0.3, 0), (0.5, 7), (0.9, 1)] {
            let d = Dropout::new(kind, p, 5);
            let x = t(&shape, &ramp(shape.iter().product()));
            let got = drop(&d, &x, Mode::Train, step);
            let want = expected(&d, x.as_f32().unwrap(), &mask_indices(&shape, &mask), step);
            assert_eq!(bits(&got), want, "{kind} p = {p} on {shape:?}");
        }
    }
}

#[test]
fn channel_variants_drop_whole_channels() {
    for (kind, shape, mask) in cases() {
        let d = Dropout::new(kind, 0.5, 2);
        let n: usize = shape.iter().product();
        let got = drop(&d, &t(&shape, &vec![1.0; n]), Mode::Train, 3);
        let got = got.as_f32().unwrap();
        let dropped = if kind.is_alpha() {
            d.alpha_coefficients().2
        } else {
            0.0
        };
        let mut per_mask: BTreeMap<u64, Vec<bool>> = BTreeMap::new();
        for (&y, j) in got.iter().zip(mask_indices(&shape, &mask)) {
            per_mask.entry(j).or_default().push(y == dropped);
        }
        assert!(
            per_mask.values().all(|v| v.iter().all(|&k| k == v[0])),
            "{kind}"
        );
        let states: Vec<bool> = per_mask.values().map(|v| v[0]).collect();
        assert!(
            states.contains(&true) && states.contains(&false),
            "{kind}: {states:?}"
        );
    }
}

#[test]
fn broadcast_dims_share_the_mask_along_a_dimension() {
    // Locked dropout over time: [T, N, H] with dims [0] has one mask [1, N, H] for every t.
    let mut d = Dropout::new(DropoutKind::Dropout, 0.5, 1);
    d.broadcast_dims = vec![0];
    let shape = [5, 3, 4];
    let x = t(&shape, &vec![2.0; 60]);
    let got = drop(&d, &x, Mode::Train, 0);
    let want = expected(
        &d,
        x.as_f32().unwrap(),
        &mask_indices(&shape, &[1, 3, 4]),
        0,
    );
    assert_eq!(bits(&got), want);
    let y = got.as_f32().unwrap();
    assert!((1..5).all(|step| y[..12] == y[12 * step..12 * (step + 1)]));
}

/// A shape of six elements that `kind` accepts.
fn six(kind: DropoutKind) -> Vec<usize> {
    match kind {
        DropoutKind::Dropout1d => vec![1, 2, 3],
        DropoutKind::Dropout3d => vec![1, 2, 3, 1, 1],
        DropoutKind::Dropout
        | DropoutKind::Dropout2d
        | DropoutKind::AlphaDropout
        | DropoutKind::FeatureAlphaDropout => vec![1, 2, 3, 1],
    }
}

#[test]
fn p_one_gives_positive_zero_everywhere() {
    let x = [NAN, INF, -INF, -0.0, 3.0, -2.0];
    for kind in DropoutKind::ALL {
        let d = Dropout::new(kind, 1.0, 0);
        let got = drop(&d, &t(&six(kind), &x), Mode::Train, 0);
        assert_eq!(bits(&got), vec![0u32; 6], "{kind}");
    }
}

#[test]
fn p_zero_and_eval_are_the_identity_bit_for_bit() {
    let signalling = f32::from_bits(0x7f80_0001);
    let data = [signalling, -0.0, INF, -INF, 1.5, NAN];
    for kind in DropoutKind::ALL {
        let x = t(&six(kind), &data);
        let zero = Dropout::new(kind, 0.0, 0);
        assert_eq!(bits(&drop(&zero, &x, Mode::Train, 0)), bits(&x), "{kind}");
        let half = Dropout::new(kind, 0.5, 0);
        assert_eq!(bits(&drop(&half, &x, Mode::Eval, 0)), bits(&x), "{kind}");
    }
}

#[test]
fn steps_seeds_and_streams_select_masks() {
    let d = Dropout::new(DropoutKind::Dropout, 0.5, 0);
    let g = dropout_graph(d.clone(), &[256]);
    let values = bind(vec![("x", t(&[256], &[1.0; 256]))]);
    let mut rng = Generator::new(SEED);
    let first = interp::run(&g, Mode::Train, &mut rng, &values).unwrap();
    assert_eq!(rng.step(), 1);
    let second = interp::run(&g, Mode::Train, &mut rng, &values).unwrap();
    assert_eq!(rng.step(), 2);
    interp::run(&g, Mode::Eval, &mut rng, &values).unwrap();
    assert_eq!(rng.step(), 2, "eval does not advance the step");
    assert_ne!(first, second, "another step draws another mask");
    let replay = interp::run(&g, Mode::Train, &mut Generator::new(SEED), &values).unwrap();
    assert_eq!(first, replay, "the same seed and step draw the same mask");

    // Two dropouts of one input on streams 0 and 1 draw different masks.
    let mut g = Graph::new("two");
    let x = input(&mut g, "x", &[256]);
    for (name, stream) in [("a", 0), ("b", 1)] {
        let drop = Dropout::new(DropoutKind::Dropout, 0.5, stream);
        let y = g.add(name, Op::Dropout(drop), &[x]).unwrap();
        g.add_output(name, y).unwrap();
    }
    let out = interp::run(&g, Mode::Train, &mut Generator::new(SEED), &values).unwrap();
    assert_ne!(out[0].1, out[1].1);
    assert_eq!(
        out[0].1, first[0].1,
        "stream 0 at step 0 is the same mask in any graph"
    );
}
#[test]
fn constants_and_traces() {
    let mut g = Graph::new("c");
    let x = input(&mut g, "x", &[2]);
    let c = g
        .add("c", Op::Constant(t(&[2], &[0.5, -1.0])), &[])
        .unwrap();
    let y = g.add("y", Op::Binary(BinaryOp::Mul), &[x, c]).unwrap();
    g.add_output("out", y).unwrap();
    g.add_output("again", y).unwrap();
    let values = bind(vec![("x", t(&[2], &[4.0, 3.0]))]);
    let trace = interp::run_traced(&g, Mode::Eval, &mut Generator::new(0), &values).unwrap();
    let names: Vec<&str> = trace.values.keys().map(String::as_str).collect();
    assert_eq!(names, ["c", "x", "y"]);
    assert_eq!(trace.values["y"], t(&[2], &[2.0, -3.0]));
    assert_eq!(trace.outputs[0], ("out".to_string(), t(&[2], &[2.0, -3.0])));
    assert_eq!(trace.outputs[1].0, "again");
    assert_eq!(trace.step, None);
}

#[test]
fn binding_errors_name_the_node_and_types() {
    let mut g = linear_graph(&[2, 3], 2, false);
    let y = g.find("y").unwrap();
    let h = g.add("h", Op::Unary(UnaryOp::Relu), &[y]).unwrap();
    g.add_output("h", h).unwrap();
    let w = t(&[2, 3], &[0.0; 6]);
    let run = |values: Vec<(&str, Tensor)>| {
        let mut rng = Generator::new(3);
        let err = interp::run(&g, Mode::Train, &mut rng, &bind(values)).unwrap_err();
        assert_eq!(rng.step(), 0, "a rejected run claims no step");
        err.to_string()
    };
    assert_eq!(
        run(vec![("w", w.clone())]),
        "no value was given for input x"
    );
    assert_eq!(
        run(vec![("x", t(&[2, 3], &[0.0; 6]))]),
        "no value was given for parameter w"
    );
    assert_eq!(
        run(vec![("x", t(&[3, 2], &[0.0; 6])), ("w", w.clone())]),
        "input x expects f32[2, 3], but got f32[3, 2]"
    );
    let ints = Tensor::from_i32([2, 3], vec![0; 6]).unwrap();
    assert_eq!(
        run(vec![("x", ints), ("w", w.clone())]),
        "input x expects f32[2, 3], but got i32[2, 3]"
    );
    assert_eq!(run(vec![("z", w.clone())]), "no node is named z");
    assert_eq!(
        run(vec![("h", w.clone())]),
        "relu h is not an input or parameter, so it takes no value"
    );
}

#[test]
fn train_claims_one_step_per_run_and_eval_none() {
    let g = one_op(Op::Unary(UnaryOp::Neg), &[1]);
    let values = bind(vec![("x", t(&[1], &[1.0]))]);
    let mut rng = Generator::new(9).with_step(5);
    interp::run(&g, Mode::Eval, &mut rng, &values).unwrap();
    assert_eq!(rng.step(), 5);
    let trace = interp::run_traced(&g, Mode::Train, &mut rng, &values).unwrap();
    assert_eq!((trace.step, rng.step()), (Some(5), 6));
    let mut spent = Generator::new(9).with_step(u32::MAX);
    interp::run(&g, Mode::Train, &mut spent, &values).unwrap();
    let err = interp::run(&g, Mode::Train, &mut spent, &values).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the generator with seed 9 has used all 2^32 steps; reseed it"
    );
}

#[test]
fn f64_arrays_are_checked_too() {
    let g = one_op(Op::Unary(UnaryOp::Neg), &[2]);
    let short = Value::Float(Array {
        shape: [2].into(),
        data: vec![1.0f64],
    });
    let values = BTreeMap::from([("x".to_string(), short)]);
    let err = interp::run_f64(&g, Mode::Eval, &mut Generator::new(0), &values).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a tensor of shape [2] needs 2 values, but got 1"
    );
}

fn one_op(op: Op, shape: &[usize]) -> Graph {
    let mut g = Graph::new("one");
    let x = input(&mut g, "x", shape);
    let y = g.add("y", op, &[x]).unwrap();
    g.add_output("y", y).unwrap();
    g
}

fn linear_graph(x: &[usize], out: usize, bias: bool) -> Graph {
    let mut g = Graph::new("linear");
    let xi = input(&mut g, "x", x);
    let w = g
        .add(
            "w",
            Op::Parameter(TensorType::f32([out, x[x.len() - 1]])),
            &[],
        )
        .unwrap();
    let mut operands = vec![xi, w];
    if bias {
        let b = g
            .add("b", Op::Parameter(TensorType::f32([out])), &[])
            .unwrap();
        operands.push(b);
    }
    let y = g.add("y", Op::Linear { bias }, &operands).unwrap();
    g.add_output("y", y).unwrap();
    g
}

/// x -> linear -> relu -> dropout -> linear -> (softmax, mean cross-entropy, amax).
fn mlp() -> (Graph, BTreeMap<String, Tensor>) {
    let mut g = Graph::new("mlp");
    let x = input(&mut g, "x", &[4, 6]);
    let targets = g.add("t", Op::Input(TensorType::i32([4])), &[]).unwrap();
    let param = |g: &mut Graph, name: &str, shape: &[usize]| {
        g.add(name, Op::Parameter(TensorType::f32(shape.to_vec())), &[])
            .unwrap()
    };
    let (w1, b1) = (param(&mut g, "w1", &[8, 6]), param(&mut g, "b1", &[8]));
    let (w2, b2) = (param(&mut g, "w2", &[3, 8]), param(&mut g, "b2", &[3]));
    let h = g.add("h", Op::Linear { bias: true }, &[x, w1, b1]).unwrap();
    let h = g.add("r", Op::Unary(UnaryOp::Selu), &[h]).unwrap();
    let dropout = Dropout::new(DropoutKind::Dropout, 0.3, 0);
    let h = g.add("d", Op::Dropout(dropout), &[h]).unwrap();
    let logits = g.add("z", Op::Linear { bias: true }, &[h, w2, b2]).unwrap();
    let p = g.add("p", Op::Softmax { axis: -1 }, &[logits]).unwrap();
    let loss = g.add("loss", Op::CrossEntropy, &[logits, targets]).unwrap();
    let max = Op::Reduce {
        op: ReduceOp::Max,
        axes: vec![],
        keepdim: false,
    };
    let top = g.add("top", max, &[p]).unwrap();
    let scaled = g.add("s", Op::Binary(BinaryOp::Div), &[loss, top]).unwrap();
    for (name, node) in [("d", h), ("p", p), ("loss", loss), ("s", scaled)] {
        g.add_output(name, node).unwrap();
    }
    let wave = |n: usize, k: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * k).sin()).collect() };
    let values = bind(vec![
        ("x", t(&[4, 6], &wave(24, 0.7))),
        ("t", Tensor::from_i32([4], vec![0, 2, 1, 2]).unwrap()),
        ("w1", t(&[8, 6], &wave(48, 1.3))),
        ("b1", t(&[8], &wave(8, 2.1))),
        ("w2", t(&[3, 8], &wave(24, 0.9))),
        ("b2", t(&[3], &wave(3, 3.3))),
    ]);
    (g, values)
}

#[test]
fn f64_agrees_with_f32_on_a_small_mlp() {
    let (g, values) = mlp();
    let single = interp::run(&g, Mode::Train, &mut Generator::new(SEED), &values).unwrap();
    let values64: BTreeMap<String, ValueF64> = values
        .iter()
        .map(|(n, v)| (n.clone(), Value::from_tensor(v)))
        .collect();
    let mut rng = Generator::new(SEED);
    let double = interp::run_f64(&g, Mode::Train, &mut rng, &values64).unwrap();
    assert_eq!(rng.step(), 1);
    for ((name, a), (name64, b)) in single.iter().zip(&double) {
        assert_eq!(name, name64);
        let b = b.as_float().unwrap();
        assert_eq!(a.shape(), &b.shape);
        for (&x, &y) in a.as_f32().unwrap().iter().zip(&b.data) {
            assert!(
                (f64::from(x) - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{name}: {x} vs {y}"
            );
            assert_eq!(
                x == 0.0,
                y == 0.0,
                "{name}: the same mask drops the same elements"
            );
        }
    }
    let dropped = single[0]
        .1
        .as_f32()
        .unwrap()
        .iter()
        .filter(|&&v| v == 0.0)
        .count();
    assert!(dropped > 0 && dropped < 32, "dropped {dropped} of 32");
}

#[test]
fn dead_nodes_compute_and_fail_nothing_as_in_compiled_code() {
    // `bad` reads targets outside its classes, but no output depends on it: a run (like a
    // compiled graph, whose passes remove it) returns `y`; a trace of every node fails on it.
    let source = "graph g {
  %x: f32[2, 3] = input
  %t: i32[2] = constant [0, 7]
  %bad: f32[] = cross_entropy %x, %t
  %y: f32[2, 3] = relu %x
  output y = %y
}
";
    let graph = dropjit::text::parse(source).unwrap();
    let x = t(&[2, 3], &[1.0, -1.0, 2.0, -2.0, 3.0, -3.0]);
    let values = bind(vec![("x", x)]);
    let run = interp::run(&graph, Mode::Eval, &mut Generator::new(1), &values).unwrap();
    let compiled = dropjit::Compiler::new()
        .mode(Mode::Eval)
        .compile(&graph)
        .unwrap();
    let store = dropjit::ParameterStore::new();
    let jit = compiled
        .run(&mut Generator::new(1), &values, &store)
        .unwrap();
    assert_eq!(bits(&run[0].1), bits(&jit[0].1));
    let err = interp::run_traced(&graph, Mode::Eval, &mut Generator::new(1), &values).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cross_entropy bad: target 7 at batch index 1 is outside 0..3"
    );
}
