//! The passes may only change what the interpreter computes by nothing at all: for every
//! program in `ir/` and for random graphs, the optimized graph's outputs equal the original's
//! bit for bit, in eval mode and in train mode at the same seed and step.

mod common;

use std::fs;

use dropjit::graph::{BinaryOp, UnaryOp};
use dropjit::passes::{PipelineOptions, run_pipeline};
use dropjit::{Dropout, DropoutKind, Generator, Graph, Mode, Op, TensorType, init, interp, text};

/// Over every graph compared: how many, and per pass the nodes removed plus rewired.
#[derive(Default)]
struct Changes {
    compared: usize,
    per_pass: Vec<usize>,
}

impl Changes {
    fn add(&mut self, counts: Option<Vec<usize>>) {
        let Some(counts) = counts else { return };
        self.compared += 1;
        self.per_pass.resize(counts.len(), 0);
        for (total, count) in self.per_pass.iter_mut().zip(counts) {
            *total += count;
        }
    }
}

/// Runs the pipeline on `graph` in `mode` and checks that the outputs did not change; returns
/// each pass's removed + rewired count, or `None` if the original graph fails to run.
fn check(graph: &Graph, mode: Mode, seed: u64) -> Option<Vec<usize>> {
    let optimized = run_pipeline(graph, &PipelineOptions::new(mode))
        .unwrap_or_else(|e| panic!("{}: {e}", graph.name()));
    let values = init::random_values(graph, seed).unwrap();
    let run = |g: &Graph| {
        let mut generator = Generator::new(seed ^ 0x5eed).with_step(seed as u32 % 5);
        interp::run(g, mode, &mut generator, &values)
    };
    // A failure in a dead node (an out-of-range target) may be optimized away, so an
    // original that fails constrains nothing.
    let expected = run(graph).ok()?;
    let got = run(&optimized.graph).unwrap_or_else(|e| {
        panic!(
            "{} {mode:?}: the optimized graph fails: {e}\n{}",
            graph.name(),
            optimized.graph
        )
    });
    assert!(
        got == expected,
        "{} {mode:?}: outputs differ\noriginal:\n{graph}\noptimized:\n{}",
        graph.name(),
        optimized.graph
    );
    let passes = &optimized.report.passes;
    Some(
        passes
            .iter()
            .map(|p| p.stats.removed + p.stats.rewired)
            .collect(),
    )
}

#[test]
fn ir_programs_compute_the_same_after_the_passes() {
    let mut paths: Vec<_> = fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/ir"))
        .expect("ir/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "ir"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let source = fs::read_to_string(&path).expect("readable ir file");
        let graph = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for mode in [Mode::Train, Mode::Eval] {
            assert!(check(&graph, mode, 1).is_some(), "{}", path.display());
        }
    }
}

#[test]
fn random_graphs_compute_the_same_after_the_passes() {
    let mut train = Changes::default();
    let mut eval = Changes::default();
    for seed in 0..100 {
        let graph = common::without_conflicts(&common::random_graph(seed));
        train.add(check(&graph, Mode::Train, seed));
        eval.add(check(&graph, Mode::Eval, seed));
    }
    // Most graphs run (a few draw out-of-range targets), and every pass but
    // `split_linear_bias` (random linears rarely have only element-wise users: see
    // `linear_layers_compute_the_same_after_the_passes`) had something to do, so the comparison
    // tested it.
    for changes in [&mut train, &mut eval] {
        changes.per_pass.pop();
        assert!(
            changes.compared >= 90,
            "only {} graphs ran",
            changes.compared
        );
        assert!(
            changes.per_pass.iter().all(|&n| n > 0),
            "{:?}",
            changes.per_pass
        );
    }
}

/// A chain of 2 to 5 random reshapes and transposes of one input, so `simplify_layout` meets
/// chains of every kind (random graphs rarely chain layout ops).
fn layout_chain(seed: u64) -> Graph {
    let mut rng = common::Rng::new(seed);
    let mut graph = Graph::new(format!("chain_{seed}"));
    let dims: Vec<usize> = (0..2 + rng.below(3)).map(|_| 1 + rng.below(4)).collect();
    let numel: usize = dims.iter().product();
    let mut x = graph
        .add("x", Op::Input(TensorType::f32(dims)), &[])
        .expect("fresh input");
    for i in 0..2 + rng.below(4) {
        let rank = graph[x].ty.shape.rank();
        let op = if rng.chance(60) {
            Op::Transpose {
                perm: rng.permutation(rank),
            }
        } else if rng.chance(50) {
            Op::Reshape {
                shape: vec![numel as i64],
            }
        } else {
            let mut shape: Vec<i64> = graph[x].ty.shape.dims().iter().map(|&d| d as i64).collect();
            shape.reverse();
            shape[rng.below(rank)] = -1;
            Op::Reshape { shape }
        };
        x = graph
            .add(format!("l{i}"), op, &[x])
            .expect("fits by construction");
    }
    graph.add_output("y", x).expect("fresh output");
    graph
}

#[test]
fn layout_chains_compute_the_same_after_the_passes() {
    let mut changes = Changes::default();
    for seed in 0..200 {
        changes.add(check(&layout_chain(seed), Mode::Eval, seed));
    }
    assert_eq!(changes.compared, 200);
    assert!(changes.per_pass[1] > 100, "{:?}", changes.per_pass);
}

/// Two linears with biases, each followed by a chain of 1 to 3 random element-wise ops of its
/// shape (relu, neg, a dropout, an add of another input), the second sometimes also an output,
/// so `split_linear_bias` splits most of them (x of rank 1 to 3).
fn linear_layers(seed: u64) -> Graph {
    let mut rng = common::Rng::new(seed);
    let mut graph = Graph::new(format!("layers_{seed}"));
    let mut dims: Vec<usize> = (0..rng.below(3)).map(|_| 1 + rng.below(4)).collect();
    dims.push(1 + rng.below(5));
    let leaf =
        |graph: &mut Graph, name: String, op: Op| graph.add(name, op, &[]).expect("fresh leaf");
    let mut x = leaf(
        &mut graph,
        "x".into(),
        Op::Input(TensorType::f32(dims.clone())),
    );
    for layer in 0..2 {
        let (ins, outs) = (*dims.last().expect("rank >= 1"), 1 + rng.below(9));
        let w = Op::Parameter(TensorType::f32([outs, ins]));
        let w = leaf(&mut graph, format!("w{layer}"), w);
        let b = leaf(
            &mut graph,
            format!("b{layer}"),
            Op::Parameter(TensorType::f32([outs])),
        );
        let fc = graph
            .add(format!("fc{layer}"), Op::Linear { bias: true }, &[x, w, b])
            .expect("fits by construction");
        *dims.last_mut().expect("rank >= 1") = outs;
        x = fc;
        for user in 0..1 + rng.below(3) {
            let name = format!("u{layer}_{user}");
            let op = match rng.below(4) {
                0 => Op::Unary(UnaryOp::Relu),
                1 => Op::Unary(UnaryOp::Neg),
                2 => Op::Dropout(Dropout::new(
                    DropoutKind::Dropout,
                    0.5,
                    (3 * layer + user) as u32,
                )),
                _ => Op::Binary(BinaryOp::Add),
            };
            let operands = if op.arity() == 2 {
                let other = Op::Input(TensorType::f32(dims.clone()));
                vec![x, leaf(&mut graph, format!("{name}.in"), other)]
            } else {
                vec![x]
            };
            x = graph
                .add(name, op, &operands)
                .expect("fits by construction");
        }
        if layer == 1 && rng.chance(50) {
            graph.add_output("fc", fc).expect("fresh output");
        }
    }
    graph.add_output("y", x).expect("fresh output");
    graph
}

#[test]
fn linear_layers_compute_the_same_after_the_passes() {
    for mode in [Mode::Train, Mode::Eval] {
        let mut changes = Changes::default();
        for seed in 0..50 {
            changes.add(check(&linear_layers(seed), mode, seed));
        }
        assert_eq!(changes.compared, 50);
        assert!(changes.per_pass[4] > 40, "{:?}", changes.per_pass);
    }
}
