//! Differential tests: the JIT against the interpreter, the executable definition of every
//! op, on every program in `ir/` and on random graphs, in both modes, fused and unfused, on one
//! thread and on several. Runs on several threads must also be bit-identical to the run on
//! one (with `sgemm` too): they split each phase as finely as possible (one unit per chunk,
//! [`Compiler::max_chunk_units`]), except in the test of large shapes, which splits them as
//! compiled.
//!
//! Traced runs make every node an output, so every intermediate value is compared, not only
//! the graph's outputs; untraced runs leave fused intermediates in registers. With
//! `Gemm::Reference` (the interpreter's summation order) every
//! value must be bit-identical (any NaN matching any NaN: Rust does not specify NaN payloads),
//! and errors must read the same. With the
//! default `sgemm`, products sum in another order, so values downstream of a `matmul` or
//! `linear` are compared within a tolerance (dropout masks still match: a dropped element is
//! exactly `+0.0` in both). Cranelift's verifier runs on every generated function.

mod common;

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::compare::Agreement;
use common::differential::{
    BIT_EXACT, ONE_TWO_THREE, Setup, Spread, check, compile, compiler, same_bits,
};

use dropjit::{Compiler, Gemm, Generator, Graph, Mode, ParameterStore, Tensor, text};

const SEED: u64 = 0x0d15_ea5e;

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

fn parse_file(path: &PathBuf) -> Graph {
    let source = fs::read_to_string(path).expect("readable ir file");
    text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn ir_programs_match_the_interpreter_bit_for_bit() {
    for path in ir_files() {
        let graph = parse_file(&path);
        for mode in [Mode::Train, Mode::Eval] {
            for (i, setup) in BIT_EXACT.into_iter().enumerate() {
                let threads = if i == 0 {
                    &ONE_TWO_THREE[..]
                } else {
                    &ONE_TWO_THREE[..2]
                };
                if let Err(message) = check(&graph, mode, setup, Agreement::Bits, SEED, threads) {
                    panic!("{} in {mode:?} mode, {setup:?}: {message}", path.display());
                }
            }
        }
    }
}

#[test]
fn ir_programs_match_within_tolerance_with_sgemm() {
    for path in ir_files() {
        let graph = parse_file(&path);
        for mode in [Mode::Train, Mode::Eval] {
            let agreement = Agreement::Within(1e-4);
            let setup = Setup {
                gemm: Gemm::Blocked,
                fuse: true,
                trace: true,
            };
            if let Err(message) = check(&graph, mode, setup, agreement, SEED, &ONE_TWO_THREE) {
                panic!("{} in {mode:?} mode: {message}", path.display());
            }
        }
    }
}

/// The blocked GEMM's promise on random graphs (products of every shape the generator makes,
/// transposed operands and broadcast batches included): one thread on the widest instruction
/// set, two threads on the next and three on the next again, each splitting every phase into
/// one-unit chunks (one-row products), give the same bits. The interpreter (no FMA) is not
/// the reference here; `ir_programs_match_within_tolerance_with_sgemm` compares with it.
#[test]
fn random_graphs_with_the_blocked_gemm_give_one_set_of_bits_for_every_isa_and_thread_count() {
    let mut products = 0;
    for seed in 0..300 {
        let graph = common::without_inplace(&common::random_graph(seed));
        let has_product = graph.node_ids().any(|id| {
            matches!(
                graph[id].op,
                dropjit::Op::MatMul { .. } | dropjit::Op::Linear { .. }
            )
        });
        if !has_product {
            continue;
        }
        products += 1;
        let values = dropjit::init::random_values(&graph, seed).unwrap();
        let (inputs, params) = ParameterStore::split(&graph, values);
        let setup = Setup {
            gemm: Gemm::Blocked,
            fuse: true,
            trace: false,
        };
        let mode = if seed % 2 == 0 {
            Mode::Train
        } else {
            Mode::Eval
        };
        let runs: Vec<_> = (ONE_TWO_THREE.iter())
            .map(|&spread| {
                let compiled = compile(&graph, compiler(mode, setup, spread));
                compiled.run(&mut Generator::new(seed).with_step(5), &inputs, &params)
            })
            .collect();
        for (spread, run) in ONE_TWO_THREE.iter().zip(&runs).skip(1) {
            if let Err(message) = same_bits(&runs[0], run) {
                panic!("random graph seed {seed}, {spread:?}: {message}\n{graph}");
            }
        }
    }
    assert!(
        products >= 50,
        "only {products} random graphs had a product"
    );
}

/// The thread counts random graph `seed` runs on: every graph on one thread, every fourth
/// on two as well, every fiftieth on three too (all of them would take too long).
fn random_graph_spreads(seed: u64) -> &'static [Spread] {
    match (seed % 4, seed % 50) {
        (_, 0) => &ONE_TWO_THREE,
        (0, _) => &ONE_TWO_THREE[..2],
        _ => &ONE_TWO_THREE[..1],
    }
}

/// Seeds the default run checks in full; `DROPJIT_RANDOM_GRAPHS` raises the count.
const FULL_SEEDS: u64 = 1000;

/// A count from the environment variable `name`, or `default` if it is unset.
fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => {
            (text.trim().parse()).unwrap_or_else(|_| panic!("{name}={text:?} is not a count"))
        }
        Err(_) => default,
    }
}

/// Checks random graph `seed`. Seeds below [`FULL_SEEDS`] run in both modes with each of the
/// first three bit-exact setups, on the thread counts of [`random_graph_spreads`]. A
/// campaign's later seeds compile twice, once per mode, which is where the time goes: Train
/// with `BIT_EXACT[seed % 3]` and Eval with `BIT_EXACT[(seed + 1) % 3]` (fused traced, fused
/// untraced, unfused traced, in turn), one mode on one thread and the other on two threads
/// splitting every phase into one-unit chunks (Train on one thread for even seeds, Eval for
/// odd ones). Every check compares with the interpreter bit for bit.
fn check_random_graph(seed: u64) -> Result<(), String> {
    let graph = common::random_graph(seed);
    let mut checks = Vec::new();
    for (m, mode) in [Mode::Train, Mode::Eval].into_iter().enumerate() {
        if seed < FULL_SEEDS {
            for setup in &BIT_EXACT[..3] {
                checks.push((mode, *setup, random_graph_spreads(seed)));
            }
        } else {
            let setup = BIT_EXACT[((seed + m as u64) % 3) as usize];
            let two = (seed + m as u64) % 2 == 1;
            let spread = if two {
                &ONE_TWO_THREE[1..2]
            } else {
                &ONE_TWO_THREE[..1]
            };
            checks.push((mode, setup, spread));
        }
    }
    for (mode, setup, spreads) in checks {
        if let Err(message) = check(&graph, mode, setup, Agreement::Bits, seed, spreads) {
            return Err(format!(
                "random graph seed {seed} in {mode:?} mode, {setup:?}: {message}\n{graph}"
            ));
        }
    }
    Ok(())
}

/// Random graphs F..N, N = `DROPJIT_RANDOM_GRAPHS` (1000 by default) and
/// F = `DROPJIT_RANDOM_GRAPHS_FROM` (0 by default, for a campaign resumed or cut in parts),
/// spread over `DROPJIT_RANDOM_GRAPH_WORKERS` threads (1 by default); a campaign prints
/// its progress.
#[test]
fn random_graphs_match_the_interpreter_bit_for_bit() {
    let count = env_count("DROPJIT_RANDOM_GRAPHS", FULL_SEEDS);
    let workers = env_count("DROPJIT_RANDOM_GRAPH_WORKERS", 1).max(1);
    let from = env_count("DROPJIT_RANDOM_GRAPHS_FROM", 0);
    let campaign = (from, count) != (0, FULL_SEEDS);
    let next = AtomicU64::new(from);
    let failure: Mutex<Option<(u64, String)>> = Mutex::new(None);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= count || failure.lock().unwrap().is_some() {
                        break;
                    }
                    if let Err(message) = check_random_graph(seed) {
                        let mut first = failure.lock().unwrap();
                        if first.as_ref().is_none_or(|(s, _)| seed < *s) {
                            *first = Some((seed, message));
                        }
                        break;
                    }
                    let done = seed + 1 - from;
                    if campaign && done.is_multiple_of(10_000) {
                        let seconds = start.elapsed().as_secs_f64();
                        eprintln!(
                            "seed {seed}: {done} graphs in {seconds:.0} s, {:.0} graphs/s",
                            done as f64 / seconds
                        );
                    }
                }
            });
        }
    });
    if let Some((_, message)) = failure.into_inner().unwrap() {
        panic!("{message}");
    }
    if campaign {
        let (done, seconds) = (count.saturating_sub(from), start.elapsed().as_secs_f64());
        eprintln!(
            "random graphs {from}..{count} agree: {done} graphs, {workers} workers, \
             {seconds:.0} s, {:.0} graphs/s",
            done as f64 / seconds
        );
    }
}

/// Graphs that stress fusion: diamonds, side outputs, broadcast operands, several dropouts
/// (channel-wise and alpha among them) in one loop, groups split by a reduction, zero-size
/// and scalar loops. (`ir/fusion.ir` is another.)
const FUSION_GRAPHS: [&str; 5] = [
    "graph diamond {
       %x: f32[3, 4] = input
       %row: f32[4] = parameter
       %a: f32[3, 4] = sub %x, %row
       %b: f32[3, 4] = neg %a
       %c: f32[3, 4] = sqrt %a
       %d: f32[3, 4] = div %b, %c
       %e: f32[3, 4] = dropout %d {p = 1}
       %f: f32[3, 4] = add %e, %a
       %s: f32[3] = sum %a {axes = [1]}
       output f = %f
       output b = %b
       output s = %s
     }",
    "graph channels {
       %x: f32[2, 3, 2, 4] = input
       %w: f32[3, 1, 1] = parameter
       %a: f32[2, 3, 2, 4] = mul %x, %w
       %b: f32[2, 3, 2, 4] = dropout2d %a {p = 0.5}
       %c: f32[2, 3, 2, 4] = relu %b
       %d: f32[2, 3, 2, 4] = feature_alpha_dropout %c {p = 0.3}
       %e: f32[2, 3, 2, 4] = dropout3d %d {p = 0.2}
       %f: f32[2, 3, 2, 4] = dropout %e {p = 0.6, broadcast_dims = [1, 3]}
       %g: f32[2, 3, 2, 4] = maximum %f, %b
       output g = %g
     }",
    "graph split_by_a_cycle {
       %x: f32[3] = input
       %y: f32[2, 3] = input
       %z: f32[2, 3] = input
       %p: f32[3] = relu %x
       %q: f32[3] = neg %p
       %u: f32[2, 3] = add %q, %y
       %v: f32[2, 3] = dropout %z {p = 0.5}
       %r: f32[3] = sum %v {axes = [0]}
       %n: f32[3] = add %p, %r
       %w: f32[2, 3] = mul %u, %v
       output n = %n
       output w = %w
     }",
    "graph empty_and_scalar {
       %x: f32[2, 0, 3] = input
       %k: f32[] = input
       %a: f32[2, 0, 3] = dropout %x {p = 0.5}
       %b: f32[2, 0, 3] = exp %a
       %c: f32[] = selu %k
       %d: f32[] = alpha_dropout %c {p = 0.5}
       %e: f32[] = mul %d, %c
       output b = %b
       output e = %e
     }",
    "graph self_operands {
       %x: f32[129] = input
       %a: f32[129] = add %x, %x
       %b: f32[129] = dropout %a {p = 0.5}
       %c: f32[129] = mul %b, %b
       %r: f32[129] = reshape %c {shape = [129]}
       %d: f32[129] = maximum %r, %a
       output d = %d
     }",
];

#[test]
fn fusion_stress_graphs_match_the_interpreter_bit_for_bit() {
    for source in FUSION_GRAPHS {
        let graph = text::parse(source).unwrap_or_else(|e| panic!("{e}\n{source}"));
        for mode in [Mode::Train, Mode::Eval] {
            for setup in BIT_EXACT {
                for seed in 0..4 {
                    let threads = &ONE_TWO_THREE[..2 + usize::from(seed == 0)];
                    if let Err(message) = check(&graph, mode, setup, Agreement::Bits, seed, threads)
                    {
                        panic!("{} in {mode:?} mode, {setup:?}: {message}", graph.name());
                    }
                }
            }
        }
    }
}

/// The loops of CLIF functions (one or more, one per phase): branches back to a block laid
/// out earlier in the same function (or to the same block).
fn count_loops(clif: &str) -> usize {
    let number = |word: &str| -> Option<usize> {
        let digits: String = word
            .trim_start_matches("block")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        word.starts_with("block")
            .then(|| digits.parse().ok())
            .flatten()
    };
    let mut loops = 0;
    for function in clif.split("\nfunction ") {
        // Blocks seen so far in layout order.
        let mut laid_out: Vec<usize> = Vec::new();
        for line in function.lines().map(str::trim) {
            if line.starts_with("block") && line.ends_with(':') {
                laid_out.push(number(line).expect("a block header names its block"));
            } else if line.starts_with("brif") || line.starts_with("jump") {
                let targets = line
                    .split_whitespace()
                    .filter_map(|w| number(w.trim_end_matches(',')));
                loops += targets.filter(|target| laid_out.contains(target)).count();
            }
        }
    }
    loops
}

#[test]
fn fused_simple_net_runs_one_loop_per_relu_and_dropout() {
    let graph = parse_file(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ir/simple_net.ir"));
    let fused = Compiler::new()
        .verify(true)
        .compile(&graph)
        .expect("compiles");
    let unfused = (Compiler::new().verify(true).fuse(false))
        .compile(&graph)
        .expect("compiles");
    let optimized = fused.graph();
    let triples: Vec<Vec<&str>> = (fused.schedule().kernels.iter())
        .filter(|k| k.nodes.len() > 1)
        .map(|k| (k.nodes.iter().map(|&id| optimized[id].op.name())).collect())
        .collect();
    // The hidden linears' biases are added in the loop of their relu and dropout.
    assert_eq!(
        triples,
        [["add", "relu", "dropout"], ["add", "relu", "dropout"]]
    );
    assert_eq!(fused.schedule().kernels.len(), 5);
    assert_eq!(unfused.schedule().kernels.len(), 9);
    // One phase per kernel: vector kernels draw their masks in their own loop.
    assert_eq!(fused.phases().len(), 5);
    assert_eq!(unfused.phases().len(), 9);
    // Each triple's three element loops became one.
    assert_eq!(count_loops(fused.clif()) + 4, count_loops(unfused.clif()));
}

/// Shapes large enough that phases split into several chunks as compiled: element-wise
/// loops with a broadcast operand and two dropouts (one with a broadcast mask), reductions
/// over rows and over columns, softmax rows, a 300-row matmul and linear, a transpose and a
/// cross_entropy over 300 rows.
const LARGE: &str = "graph large {
  %x: f32[4, 40000] = input
  %row: f32[40000] = input
  %a: f32[300, 64] = input
  %w: f32[64, 64] = parameter
  %b: f32[64] = parameter
  %targets: i32[300] = input
  %h: f32[4, 40000] = add %x, %row
  %d: f32[4, 40000] = dropout %h {p = 0.3}
  %c: f32[4, 40000] = dropout %d {p = 0.5, broadcast_dims = [0]}
  %s: f32[4] = sum %c {axes = [1]}
  %cols: f32[40000] = amax %c {axes = [0]}
  %sm: f32[4, 40000] = softmax %c {axis = 1}
  %m: f32[300, 64] = matmul %a, %w
  %l: f32[300, 64] = linear %m, %w, %b
  %t: f32[64, 300] = transpose %l {perm = [1, 0]}
  %ls: f32[64, 300] = log_softmax %t {axis = 0}
  %loss: f32[] = cross_entropy %l, %targets
  output s = %s
  output cols = %cols
  output sm = %sm
  output ls = %ls
  output loss = %loss
}";

#[test]
fn large_shapes_split_across_threads_give_the_same_bits() {
    let graph = text::parse(LARGE).unwrap_or_else(|e| panic!("{e}"));
    let compiled = (Compiler::new().threads(2))
        .compile(&graph)
        .expect("compiles");
    let split: Vec<String> = (compiled.phases().iter())
        .filter(|p| p.chunks() > 1)
        .map(|p| format!("{} {}", p.units, p.unit))
        .collect();
    assert_eq!(
        split,
        [
            "1250 mask groups",
            "313 mask groups",
            "1250 blocks of 128 elements",
            "4 output elements",
            "40000 output elements",
            "4 rows",
            "300 rows",
            "300 rows",
            "300 rows"
        ],
        "the phases split into several chunks"
    );
    let natural = |threads| Spread {
        threads,
        finest: false,
    };
    let spreads = [natural(1), natural(2), natural(3)];
    for mode in [Mode::Train, Mode::Eval] {
        for setup in &BIT_EXACT[..2] {
            if let Err(message) = check(&graph, mode, *setup, Agreement::Bits, SEED, &spreads) {
                panic!("{mode:?} mode, {setup:?}: {message}");
            }
        }
        let blocked = Setup {
            gemm: Gemm::Blocked,
            fuse: true,
            trace: false,
        };
        let agreement = Agreement::Within(1e-4);
        if let Err(message) = check(&graph, mode, blocked, agreement, SEED, &spreads) {
            panic!("{mode:?} mode, sgemm: {message}");
        }
    }
}

#[test]
fn the_first_bad_target_is_the_error_on_any_thread_count() {
    let graph = text::parse(
        "graph loss {
           %logits: f32[40, 3] = input
           %targets: i32[40] = input
           %loss: f32[] = cross_entropy %logits, %targets
           output loss = %loss
         }",
    )
    .expect("parses");
    let logits = Tensor::from_f32([40, 3], vec![0.5; 120]).expect("logits");
    let mut targets = vec![1; 40];
    (targets[17], targets[18], targets[33]) = (3, -1, 7);
    let targets = Tensor::from_i32([40], targets).expect("targets");
    let inputs = std::collections::BTreeMap::from([
        ("logits".to_string(), logits),
        ("targets".to_string(), targets),
    ]);
    for spread in ONE_TWO_THREE {
        let compiled = compile(&graph, compiler(Mode::Train, BIT_EXACT[0], spread));
        for _ in 0..20 {
            let error = compiled
                .run(&mut Generator::new(1), &inputs, &ParameterStore::new())
                .expect_err("target 3 of 3 classes is out of range");
            assert_eq!(
                error.to_string(),
                "cross_entropy loss: target 3 at batch index 17 is outside 0..3",
                "{spread:?}"
            );
        }
    }
}
