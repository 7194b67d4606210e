//! Printing then parsing is the identity: on every program in `ir/` and on random graphs.
//!
//! For each graph `g`: `parse(print(g)) == g` structurally, and printing that copy gives the
//! same text again, so the printer is a fixed point of print-then-parse.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use dropjit::{Graph, text};

fn ir_files() -> Vec<PathBuf> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/ir");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("the ir directory exists")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ir"))
        .collect();
    files.sort();
    files
}

/// Prints, parses and prints again; panics with the text on any difference.
fn assert_round_trip(graph: &Graph, origin: &str) {
    let printed = graph.to_string();
    let reparsed = text::parse(&printed).unwrap_or_else(|error| {
        panic!("{origin}: the printed graph does not parse:\n{error}\n{printed}")
    });
    assert_eq!(
        &reparsed, graph,
        "{origin}: parse(print(g)) != g\n{printed}"
    );
    assert_eq!(
        reparsed.to_string(),
        printed,
        "{origin}: print is not a fixed point"
    );
}

#[test]
fn every_ir_program_round_trips() {
    let files = ir_files();
    assert!(
        files.len() >= 10,
        "expected at least 10 programs, found {}",
        files.len()
    );
    for path in files {
        let source = fs::read_to_string(&path).expect("a readable ir file");
        let graph =
            text::parse(&source).unwrap_or_else(|error| panic!("{}:\n{error}", path.display()));
        assert_round_trip(&graph, &path.display().to_string());
    }
}

#[test]
fn random_graphs_round_trip() {
    for seed in 0..200 {
        let graph = common::without_conflicts(&common::random_graph(seed));
        dropjit::graph::verify::verify(&graph).unwrap_or_else(|error| {
            panic!("random graph {seed} does not verify: {error}\n{graph}")
        });
        assert_round_trip(&graph, &format!("random graph {seed}"));
        // Every node as an output (what `run --save-all` compiles), numeric names included.
        let traced = graph.with_every_node_as_output();
        assert_round_trip(
            &traced,
            &format!("random graph {seed} with every node as output"),
        );
    }
}

/// The random graphs exercise every op name, every dropout variant included.
#[test]
fn random_graphs_cover_every_op() {
    let mut seen = BTreeSet::new();
    let mut zero_size = false;
    let mut scalar = false;
    for seed in 0..200 {
        let graph = common::random_graph(seed);
        for id in graph.node_ids() {
            let node = &graph[id];
            seen.insert(node.op.name());
            zero_size |= node.ty.shape.numel() == 0;
            scalar |= node.ty.shape.rank() == 0;
        }
    }
    let mut all: BTreeSet<&str> = ["input", "parameter", "constant", "matmul", "linear"].into();
    all.extend([
        "conv1d",
        "conv2d",
        "conv3d",
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "reshape",
        "transpose",
        "softmax",
        "log_softmax",
        "cross_entropy",
        "batch_norm",
        "batch_norm_running_mean",
        "batch_norm_running_var",
        "layer_norm",
        "embedding",
        "where",
        "tril",
    ]);
    all.extend(dropjit::graph::UnaryOp::ALL.map(|op| op.name()));
    all.extend(dropjit::graph::BinaryOp::ALL.map(|op| op.name()));
    all.extend(dropjit::graph::ReduceOp::ALL.map(|op| op.name()));
    all.extend(dropjit::DropoutKind::ALL.map(|kind| kind.name()));
    all.extend(dropjit::DropoutKind::ALL.map(|kind| kind.mask_name()));
    assert_eq!(seen, all);
    assert!(
        zero_size && scalar,
        "zero-size: {zero_size}, scalar: {scalar}"
    );
}

/// Defaults are filled in (streams count the dropout lines before), optional annotations are
/// inferred, and the printer writes the one canonical form: every annotation, every stream,
/// no default-valued attribute, comments and spacing gone.
#[test]
fn printing_is_canonical() {
    let source = "# leading comment\r
graph tidy {   # the graph\r
\r
%x : f32[ 2,3 ]=input\r
    %a = dropout %x {p = 0.50}
  %b = dropout %a {p=1e-1, inplace = false, broadcast_dims = []}   # defaults spelled out
  %c = alpha_dropout %b {stream = 9, p = 0, inplace = true}
  %d = feature_alpha_dropout %c {p = 0.25}
  %s = sum %d {axes = [], keepdim = false}
  %k: f32[2, 1] = amax %d {keepdim = true, axes = [-1]}
  %t: i32[] = constant -7
  %g = gelu %x {approximate = none}
  %h = gelu_grad %g, %x {approximate = tanh}
  output total = %s
  output kept = %k
  output t = %t
  output h = %h
}
";
    let graph = text::parse(source).expect("a valid program");
    assert_eq!(
        graph.to_string(),
        "graph tidy {
  %x: f32[2, 3] = input
  %a: f32[2, 3] = dropout %x {p = 0.5, stream = 0}
  %b: f32[2, 3] = dropout %a {p = 0.1, stream = 1}
  %c: f32[2, 3] = alpha_dropout %b {p = 0, inplace = true, stream = 9}
  %d: f32[2, 3] = feature_alpha_dropout %c {p = 0.25, stream = 3}
  %s: f32[] = sum %d
  %k: f32[2, 1] = amax %d {axes = [-1], keepdim = true}
  %t: i32[] = constant -7
  %g: f32[2, 3] = gelu %x
  %h: f32[2, 3] = gelu_grad %g, %x {approximate = tanh}
  output total = %s
  output kept = %k
  output t = %t
  output h = %h
}
"
    );
}
