//! The memory plan: arena reuse by liveness, in-place dropout (shared buffers, conflicts,
//! inputs written through `run_mut`), and results unchanged against the interpreter with
//! reuse on, for every program in `ir/` and for random graphs.
//!
//! Unlike tests/jit_differential.rs, graphs run as written (not with every node made an
//! output), so intermediate values live in the arena and share its ranges. Snapshots of every
//! `ir/` program's plan: bless with `INSTA_UPDATE=always cargo test --release --test
//! jit_memory`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use dropjit::plan::{BufferHome, MemorySummary};
use dropjit::{
    CompiledGraph, Compiler, Error, Gemm, Generator, Graph, Mode, Op, ParameterStore, Tensor, init,
    interp, text,
};

/// Unfused, so every value gets a buffer and the plan is exercised in full (fusion keeps most
/// intermediates in registers); [`check`] runs the fused compilation too.
fn compile(graph: &Graph, mode: Mode) -> dropjit::Result<CompiledGraph> {
    compile_with(graph, mode, false)
}

fn compile_with(graph: &Graph, mode: Mode, fuse: bool) -> dropjit::Result<CompiledGraph> {
    Compiler::new()
        .mode(mode)
        .verify(true)
        .gemm(Gemm::Reference)
        .fuse(fuse)
        .compile(graph)
}

fn parse(source: &str) -> Graph {
    text::parse(source).unwrap_or_else(|e| panic!("{e}\n{source}"))
}

fn ir_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ir");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("ir/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ir"))
        .collect();
    files.sort();
    files
}

/// No two arena buffers that are live in one kernel share a byte, and all fit the arena.
fn assert_disjoint(memory: &MemorySummary) {
    let arena: Vec<(usize, usize, (usize, usize))> = (memory.buffers.iter())
        .filter_map(|b| match b.home {
            BufferHome::Arena { offset } => Some((offset, offset + b.bytes, b.live?)),
            BufferHome::Input(_)
            | BufferHome::Parameter(_)
            | BufferHome::Constant(_)
            | BufferHome::Output(_) => None,
        })
        .collect();
    assert_eq!(arena.len(), memory.arena_buffers);
    for (i, &(start, end, (first, last))) in arena.iter().enumerate() {
        assert!(end <= memory.arena_bytes && start % 16 == 0, "{memory}");
        for &(s, e, (f, l)) in &arena[i + 1..] {
            let live_together = first <= l && f <= last;
            let overlap = start < e && s < end;
            assert!(!(live_together && overlap), "{memory}");
        }
    }
    assert!(memory.arena_bytes <= memory.unshared_bytes, "{memory}");
}

/// Runs `graph` on both engines, fused and unfused (`run_mut` on a copy of the inputs where
/// the compiled graph writes over inputs), and compares outputs bit for bit, any NaN matching
/// any NaN.
fn check(graph: &Graph, mode: Mode, seed: u64) -> Result<(), String> {
    for fuse in [false, true] {
        check_with(graph, mode, seed, fuse).map_err(|m| format!("fuse {fuse}: {m}"))?;
    }
    Ok(())
}

fn check_with(graph: &Graph, mode: Mode, seed: u64, fuse: bool) -> Result<(), String> {
    let compiled = compile_with(graph, mode, fuse).map_err(|e| format!("compile: {e}"))?;
    assert_disjoint(&compiled.memory());
    let values = init::random_values(graph, seed).unwrap();
    let expected = interp::run(graph, mode, &mut Generator::new(seed), &values);
    let (mut inputs, params) = ParameterStore::split(graph, values);
    let got = if compiled.overwritten_inputs().is_empty() {
        compiled.run(&mut Generator::new(seed), &inputs, &params)
    } else {
        compiled.run_mut(&mut Generator::new(seed), &mut inputs, &params)
    };
    match (expected, got) {
        (Ok(expected), Ok(got)) => {
            for ((name, e), (_, g)) in expected.iter().zip(&got) {
                if !same_bits(e, g) {
                    return Err(format!("output {name}: {e:?} vs {g:?}"));
                }
            }
            Ok(())
        }
        (Err(e), Err(g)) if e.to_string() == g.to_string() => Ok(()),
        // The interpreter evaluates dead nodes too; the JIT runs what dead-code elimination
        // left.
        (Err(Error::TargetOutOfRange { node, .. }), Ok(_))
            if compiled.graph().find(&node).is_none() =>
        {
            Ok(())
        }
        (e, g) => Err(format!(
            "interpreter {:?} vs JIT {:?}",
            e.map(|_| ()).map_err(|e| e.to_string()),
            g.map(|_| ()).map_err(|e| e.to_string())
        )),
    }
}

fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    if a.ty() != b.ty() {
        return false;
    }
    match (a.as_f32(), b.as_f32()) {
        (Some(x), Some(y)) => {
            (x.iter().zip(y)).all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        }
        _ => a.as_i32() == b.as_i32(),
    }
}

const CHAIN: &str = "graph chain {
  %x: f32[64] = input
  %a: f32[64] = relu %x
  %b: f32[64] = neg %a
  %c: f32[64] = exp %b
  %d: f32[64] = sqrt %c
  output y = %d
}
";

#[test]
fn a_chain_reuses_freed_arena_ranges() {
    let compiled = compile(&parse(CHAIN), Mode::Train).unwrap();
    let memory = compiled.memory();
    // a lives in kernels 0..=1, b in 1..=2, c in 2..=3; d is written into the output. c takes
    // a's range once a is dead: two ranges of 256 bytes instead of three.
    assert_eq!(memory.arena_bytes, 512);
    assert_eq!(memory.unshared_bytes, 768);
    assert_eq!(memory.arena_buffers, 3);
    let offset = |name| memory.buffer_of(name).map(|b| b.home.clone());
    assert_eq!(offset("a"), Some(BufferHome::Arena { offset: 0 }));
    assert_eq!(offset("b"), Some(BufferHome::Arena { offset: 256 }));
    assert_eq!(offset("c"), Some(BufferHome::Arena { offset: 0 }));
    assert_eq!(offset("d"), Some(BufferHome::Output("y".into())));
    assert_eq!(
        memory.to_string(),
        "# memory: 512 arena bytes (768 without reuse) in 3 arena buffers
# buffer 0: 256 bytes, input x: %x
# buffer 1: 256 bytes, arena [0, 256), kernels 0..=1: %a
# buffer 2: 256 bytes, arena [256, 512), kernels 1..=2: %b
# buffer 3: 256 bytes, arena [0, 256), kernels 2..=3: %c
# buffer 4: 256 bytes, output y: %d
"
    );
    check(&parse(CHAIN), Mode::Train, 1).unwrap();
}

#[test]
fn ir_programs_match_the_interpreter_with_reuse() {
    for path in ir_files() {
        let graph = parse(&fs::read_to_string(&path).expect("readable ir file"));
        for mode in [Mode::Train, Mode::Eval] {
            if let Err(message) = check(&graph, mode, 11) {
                panic!("{} in {mode:?} mode: {message}", path.display());
            }
        }
    }
}

#[test]
fn random_graphs_match_the_interpreter_with_reuse() {
    let (mut conflicts, mut shared, mut reused) = (0, 0, 0);
    for seed in 0..300 {
        let graph = common::random_graph(seed);
        for mode in [Mode::Train, Mode::Eval] {
            let graph = match compile(&graph, mode) {
                Err(e) if common::is_inplace_conflict(&e) => {
                    // The request is the graph's bug; the values are still checked without it.
                    conflicts += 1;
                    common::without_inplace(&graph)
                }
                Err(e) => panic!("random graph seed {seed} in {mode:?} mode: {e}\n{graph}"),
                Ok(compiled) => {
                    let memory = compiled.memory();
                    shared += (memory.buffers.iter())
                        .filter(|b| b.values.len() > 1)
                        .count();
                    reused += usize::from(memory.arena_bytes < memory.unshared_bytes);
                    graph.clone()
                }
            };
            if let Err(message) = check(&graph, mode, seed) {
                panic!("random graph seed {seed} in {mode:?} mode: {message}\n{graph}");
            }
        }
    }
    // The random graphs do exercise every path.
    assert!(
        conflicts > 0 && shared > 0 && reused > 0,
        "{conflicts} {shared} {reused}"
    );
}

#[test]
fn memory_plans_of_ir_programs() {
    insta::glob!("../ir", "*.ir", |path| {
        let graph = parse(&fs::read_to_string(path).expect("readable ir file"));
        let mut report = String::new();
        for (mode, name) in [(Mode::Train, "train"), (Mode::Eval, "eval")] {
            // Fused, as `Compiler::new()` compiles by default.
            let compiled = compile_with(&graph, mode, true).unwrap();
            report += &format!(
                "# {name}\n{}",
                compiled.schedule().display(compiled.graph())
            );
            report += &compiled.memory().to_string();
        }
        insta::assert_snapshot!(report);
    });
}

/// The values a run binds: `x` counting up from -10 in steps of 0.5, and the parameters.
fn inputs(graph: &Graph) -> (BTreeMap<String, Tensor>, ParameterStore) {
    let mut values = init::random_values(graph, 5).unwrap();
    let x: Vec<f32> = (0..64).map(|i| i as f32 * 0.5 - 10.0).collect();
    values.insert("x".into(), Tensor::from_f32([4, 16], x).unwrap());
    ParameterStore::split(graph, values)
}

const SHARED: &str = "graph shared {
  %x: f32[4, 16] = input
  %a: f32[4, 16] = relu %x
  %d: f32[4, 16] = dropout %a {p = 0.5, inplace = true}
  %e: f32[4, 16] = neg %d
  output y = %e
}
";

#[test]
fn an_inplace_dropout_writes_over_its_input() {
    let compiled = compile(&parse(SHARED), Mode::Train).unwrap();
    let memory = compiled.memory();
    let buffer = memory.buffer_of("d").unwrap();
    assert_eq!(buffer.values, ["a", "d"]);
    // Only the dropout reads %a, so sharing is safe. The shared buffer lives in kernels 0..=2
    // (relu, dropout, neg); the vector dropout makes its mask in its loop, without keep bytes.
    assert_eq!(buffer.live, Some((0, 2)));
    assert_eq!(memory.arena_bytes, 256);
    assert_eq!(memory.arena_buffers, 1);
    let out_of_place = compile(&common::without_inplace(&parse(SHARED)), Mode::Train).unwrap();
    assert_eq!(out_of_place.memory().arena_bytes, 256 + 256);
    assert_eq!(out_of_place.memory().buffer_of("d").unwrap().values, ["d"]);
    check(&parse(SHARED), Mode::Train, 3).unwrap();
    check(&parse(SHARED), Mode::Eval, 3).unwrap();
}

#[test]
fn ir_inplace_compiles_and_runs_in_place() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ir/inplace.ir");
    let graph = parse(&fs::read_to_string(path).expect("ir/inplace.ir"));
    let compiled = compile(&graph, Mode::Train).unwrap();
    // The relu's result is computed straight into the output, and the dropout overwrites it
    // there: the arena holds only the linear layer's result and the keep bytes.
    let buffer = compiled.memory().buffer_of("d").cloned().unwrap();
    assert_eq!(buffer.values, ["a", "d"]);
    assert_eq!(buffer.home, BufferHome::Output("y".into()));
    assert!(compiled.overwritten_inputs().is_empty());
    check(&graph, Mode::Train, 9).unwrap();
}

/// `source`, whose in-place requests conflict, as a graph: the parser refuses such a program
/// (the verifier's invariant 9), so it is parsed without them and asked again through the API,
/// where only compiling or running verifies the whole.
fn with_conflicting_requests(source: &str) -> Graph {
    let mut graph = parse(&source.replace("inplace = true", "inplace = false"));
    for line in source.lines().filter(|l| l.contains("inplace = true")) {
        let name = line
            .trim_start()
            .trim_start_matches('%')
            .split(':')
            .next()
            .unwrap();
        let id = graph.lookup(name).unwrap();
        if let Op::Dropout(d) = graph.op_mut(id).unwrap() {
            d.inplace = true;
        }
    }
    graph
}

#[test]
fn an_inplace_dropout_whose_input_is_read_later_does_not_compile() {
    let later = "graph later {
  %x: f32[4, 16] = input
  %h: f32[4, 16] = relu %x
  %d: f32[4, 16] = dropout %h {p = 0.5, inplace = true}
  %r: f32[4, 16] = add %h, %d
  output y = %r
}
";
    let message = "dropout d: inplace would overwrite %h, which %r also reads";
    let graph = with_conflicting_requests(later);
    let err = compile(&graph, Mode::Train).unwrap_err();
    assert!(matches!(err, Error::InplaceConflict { .. }), "{err:?}");
    assert_eq!(err.to_string(), message);
    // One rule for every stage: `check` (the parser's verifier, on the dropout's line), the
    // interpreter, and compilation in eval mode too, where the dropout is the identity but the
    // program still asks to destroy a value it reads.
    assert_eq!(
        text::parse(later).unwrap_err().to_string(),
        format!("4:3: {message}")
    );
    let values = init::random_values(&graph, 1).unwrap();
    let run = interp::run(&graph, Mode::Eval, &mut Generator::new(1), &values);
    assert_eq!(run.unwrap_err().to_string(), message);
    assert_eq!(
        compile(&graph, Mode::Eval).unwrap_err().to_string(),
        message
    );
    // A reader that comes first in the program conflicts too: fusion may run it later.
    let before = "graph before {
  %x: f32[4, 16] = input
  %a: f32[4, 16] = relu %x
  %s: f32[] = sum %a
  %d: f32[4, 16] = dropout %a {p = 0.5, inplace = true}
  output y = %d
  output s = %s
}
";
    for fuse in [false, true] {
        let err = compile_with(&with_conflicting_requests(before), Mode::Train, fuse).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dropout d: inplace would overwrite %a, which %s also reads"
        );
    }
    // A reader through a view counts, and is named; so does a second in-place dropout (one
    // error per buffer: the first in-place request over it).
    let view = "graph view {
  %x: f32[4, 16] = input
  %h: f32[4, 16] = relu %x
  %v: f32[64] = reshape %h {shape = [64]}
  %d: f32[4, 16] = alpha_dropout %h {p = 0.5, inplace = true}
  %r: f32[64] = neg %v
  %d2: f32[4, 16] = dropout %h {p = 0.5, inplace = true, stream = 1}
  output y = %r
  output d = %d
  output d2 = %d2
}
";
    let err = compile(&with_conflicting_requests(view), Mode::Train).unwrap_err();
    assert_eq!(
        err.to_string(),
        "alpha_dropout d: inplace would overwrite %h, which %r also reads"
    );
}

#[test]
fn outputs_parameters_and_constants_are_never_overwritten() {
    let source = "graph keep {
  %x: f32[4, 16] = input
  %w: f32[4, 16] = parameter
  %c: f32[2] = constant [1.5, -2]
  %h: f32[4, 16] = relu %x
  %d: f32[4, 16] = dropout %h {p = 0.5, inplace = true}
  %e: f32[4, 16] = dropout %w {p = 0.5, inplace = true, stream = 1}
  %f: f32[2] = dropout %c {p = 0.5, inplace = true, stream = 2}
  output h = %h
  output d = %d
  output e = %e
  output f = %f
  output w = %w
}
";
    let graph = parse(source);
    let compiled = compile(&graph, Mode::Train).unwrap();
    let memory = compiled.memory();
    for (value, home) in [
        ("d", BufferHome::Output("d".into())),
        ("e", BufferHome::Output("e".into())),
        ("f", BufferHome::Output("f".into())),
    ] {
        let buffer = memory.buffer_of(value).unwrap();
        assert_eq!(
            (&buffer.values[..], &buffer.home),
            (&[value.to_string()][..], &home)
        );
    }
    let (inputs, params) = inputs(&graph);
    let before = params.get("w").unwrap().clone();
    let outputs = compiled
        .run(&mut Generator::new(2), &inputs, &params)
        .unwrap();
    assert_eq!(params.get("w").unwrap(), &before);
    assert_eq!(outputs[4].1, before);
    check(&graph, Mode::Train, 2).unwrap();
}

#[test]
fn outputs_that_are_leaves_share_their_buffer_until_written() {
    // In eval mode both dropouts are gone: y is x itself, z a view of it, and w the parameter.
    let source = "graph views {
  %x: f32[4, 16] = input
  %w: f32[8] = parameter
  %y: f32[4, 16] = dropout %x {p = 0.5}
  %z: f32[64] = reshape %y {shape = [64]}
  %v: f32[8] = dropout %w {p = 0.5, stream = 1}
  output y = %y
  output z = %z
  output v = %v
}
";
    let graph = parse(source);
    let compiled = compile(&graph, Mode::Eval).unwrap();
    let (inputs, params) = inputs(&graph);
    let mut outputs = (compiled.run(&mut Generator::new(1), &inputs, &params)).unwrap();
    let x = &inputs["x"];
    assert!(outputs[0].1.shares_buffer(x) && outputs[1].1.shares_buffer(x));
    assert_eq!(outputs[1].1.shape().dims(), [64]);
    assert!(outputs[2].1.shares_buffer(params.get("w").unwrap()));
    // Writing an output gives it a buffer of its own; the input keeps its values.
    let before = x.clone();
    outputs[0].1.as_f32_mut().unwrap()[0] = 1e9;
    assert!(!outputs[0].1.shares_buffer(x));
    assert_eq!(x, &before);
    assert_eq!(
        outputs[1].1.as_f32().unwrap()[0],
        before.as_f32().unwrap()[0]
    );
    // run_into hands the buffers out again, whatever the outputs held.
    (compiled.run_into(&mut Generator::new(1), &inputs, &params, &mut outputs)).unwrap();
    assert!(outputs[0].1.shares_buffer(x) && outputs[2].1.shares_buffer(params.get("w").unwrap()));
    // In train mode the same outputs are written by generated code: a buffer shared with the
    // input is replaced by one of the output's own before the run writes it.
    let train = compile(&graph, Mode::Train).unwrap();
    (train.run_into(&mut Generator::new(1), &inputs, &params, &mut outputs)).unwrap();
    assert!(!outputs[0].1.shares_buffer(x));
    assert_eq!(x, &before);
    let expected = interp::run(&graph, Mode::Train, &mut Generator::new(1), &{
        let mut values = inputs.clone();
        values.extend(params.iter().map(|(k, v)| (k.to_string(), v.clone())));
        values
    });
    assert_eq!(outputs, expected.unwrap());
}

const WRITES_INPUT: &str = "graph writes_input {
  %x: f32[4, 16] = input
  %d: f32[4, 16] = dropout %x {p = 0.5, inplace = true}
  %y: f32[4, 16] = neg %d
  output y = %y
  output d = %d
}
";

#[test]
fn an_inplace_dropout_of_an_input_needs_run_mut_and_overwrites_it() {
    let graph = parse(WRITES_INPUT);
    let compiled = compile(&graph, Mode::Train).unwrap();
    assert_eq!(compiled.overwritten_inputs(), ["x"]);
    let memory = compiled.memory();
    assert_eq!(memory.written_inputs, ["x"]);
    assert_eq!(
        memory.buffer_of("d").unwrap().home,
        BufferHome::Input("x".into())
    );
    assert!(
        memory.to_string().contains("input x (overwritten): %x, %d"),
        "{memory}"
    );
    let (mut inputs, params) = inputs(&graph);
    let original = inputs["x"].clone();
    // `run` and `run_into` refuse before claiming a step.
    let mut rng = Generator::new(4);
    let err = compiled.run(&mut rng, &inputs, &params).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dropout d: inplace overwrites input x; call run_mut, which takes the inputs mutably"
    );
    let mut outputs = vec![
        ("y".to_string(), original.clone()),
        ("d".to_string(), original.clone()),
    ];
    let err = (compiled.run_into(&mut rng, &inputs, &params, &mut outputs)).unwrap_err();
    assert!(matches!(err, Error::InputOverwritten { .. }), "{err:?}");
    assert_eq!(rng.step(), 0);
    let got = compiled.run_mut(&mut rng, &mut inputs, &params).unwrap();
    assert_eq!(rng.step(), 1);
    let mut values = BTreeMap::from([("x".to_string(), original.clone())]);
    values.extend(params.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let expected = interp::run(&graph, Mode::Train, &mut Generator::new(4), &values).unwrap();
    assert_eq!(got, expected);
    // The caller's x now holds the dropout's result.
    assert_eq!(inputs["x"], expected[1].1);
    assert_ne!(inputs["x"], original);
    // Graphs that write no input run through run_mut too, leaving the inputs alone.
    let chain = compile(&parse(CHAIN), Mode::Train).unwrap();
    let mut x = BTreeMap::from([(
        "x".to_string(),
        Tensor::from_f32([64], vec![2.0; 64]).unwrap(),
    )]);
    let y = chain
        .run_mut(&mut rng, &mut x, &ParameterStore::new())
        .unwrap();
    assert_eq!(x["x"].as_f32().unwrap(), &[2.0; 64]);
    assert_eq!(y[0].1.as_f32().unwrap()[0], (-2.0f32).exp().sqrt());
}
