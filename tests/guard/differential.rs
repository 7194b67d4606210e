//! The differential runs of the guard-page binaries: each graph is compiled, run with `run`
//! (or `run_mut`, when its in-place dropouts write over inputs) and again with `run_into`,
//! and compared with the interpreter as in tests/jit_differential.rs (bit for bit with
//! `Gemm::Reference`, within a tolerance with the default `sgemm`). Every heap buffer is
//! guarded (tests/guard/alloc.rs); the checks also assert that the inputs, parameters,
//! constants and outputs are guarded with no spare capacity, so the guard page is right past
//! their last element (or before their first). The arena and the address table are
//! allocated by the run itself, as vectors of exactly their size. Not caught: an access from
//! one arena buffer into another, or into the padding to 16 bytes after one; it stays inside
//! the arena.

use std::fs;
use std::ops::Range;
use std::path::PathBuf;

use dropjit::{
    CompiledGraph, Compiler, Gemm, Generator, Graph, Mode, Op, ParameterStore, Tensor, TensorData,
    init, interp, text,
};

use super::alloc::{is_guarded, unguarded_count};
use crate::common;
use crate::common::compare::{Agreement, compare};
use crate::common::differential::{BIT_EXACT, Setup};

/// Fused and unfused, traced and not, with both GEMMs. Traced, every value lives in a guarded
/// output buffer; untraced, intermediates live in the arena (or in registers, fused).
const SETUPS: [Setup; 5] = [
    BIT_EXACT[0], // fused, traced
    BIT_EXACT[1], // fused, untraced
    BIT_EXACT[3], // unfused, untraced
    Setup {
        gemm: Gemm::Blocked,
        fuse: true,
        trace: true,
    },
    Setup {
        gemm: Gemm::Blocked,
        fuse: false,
        trace: false,
    },
];

/// Programs past this many lines stay out, unparsed: every heap block a guarded process has
/// held at once keeps two of the kernel's 65,530 mappings (freed blocks are recycled, not
/// unmapped), and a program of thousands of nodes (the character GPT's training step, 2,185
/// lines) holds tens of thousands while it parses and compiles, past which the allocator falls
/// back to unguarded memory for the rest of the run. The other tests run it.
const MAX_LINES: usize = 1_000;

/// Every program in `ir/` of at most [`MAX_LINES`] lines, parsed one at a time (so only one
/// graph is live), with its file name.
fn ir_programs() -> impl Iterator<Item = (String, Graph)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ir");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("ir/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ir"))
        .collect();
    files.sort();
    (files.into_iter()).filter_map(|path| {
        let source = fs::read_to_string(&path).expect("readable ir file");
        if source.lines().count() > MAX_LINES {
            return None;
        }
        let graph = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Some((path.display().to_string(), graph))
    })
}

/// The seed of the values the `ir/` programs run on.
const SEED: u64 = 0x0d15_ea5e;

/// Checks every `ir/` program in both modes and every setup; panics at the first failure.
pub fn check_ir_programs() {
    for (path, graph) in ir_programs() {
        for mode in [Mode::Train, Mode::Eval] {
            for setup in SETUPS {
                if let Err(message) = check(&graph, mode, setup, SEED, Values::Interpreter) {
                    panic!("{path} in {mode:?} mode, {setup:?}: {message}");
                }
            }
        }
    }
}

/// Checks the random graphs of `seeds` (tests/common/mod.rs) in both modes and every setup;
/// panics at the first failure.
pub fn check_random_graphs(seeds: Range<u64>) {
    for seed in seeds {
        let graph = common::random_graph(seed);
        for mode in [Mode::Train, Mode::Eval] {
            for setup in SETUPS {
                // The blocked GEMM's values are within tolerance of the interpreter's only
                // where nothing amplifies its rounding (a random product that cancels, then
                // divides a random constant of 1e23, does not): there `run_into` is held to
                // `run`'s bits instead, which still shows any element a run skips.
                let values = match setup.gemm {
                    Gemm::Reference => Values::Interpreter,
                    Gemm::Blocked => Values::OwnRun,
                };
                if let Err(message) = check(&graph, mode, setup, seed, values) {
                    panic!(
                        "random graph seed {seed} in {mode:?} mode, {setup:?}: {message}\n{graph}"
                    );
                }
            }
        }
    }
}

/// Compiles `graph` as `setup` says, runs it on guarded buffers and compares with the
/// interpreter: outputs, errors and the generator's step.
/// What a run's values are compared with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Values {
    /// The interpreter's (bit for bit with the reference GEMM, within 1e-4 with the blocked).
    Interpreter,
    /// Only its errors with the interpreter's; `run_into`'s values with `run`'s, bit for bit.
    OwnRun,
}

fn check(graph: &Graph, mode: Mode, setup: Setup, seed: u64, values: Values) -> Result<(), String> {
    check_runs(graph, mode, setup, seed, values)?;
    match unguarded_count() {
        0 => Ok(()),
        n => Err(format!("{n} allocations went unguarded")),
    }
}

fn check_runs(
    graph: &Graph,
    mode: Mode,
    setup: Setup,
    seed: u64,
    compared: Values,
) -> Result<(), String> {
    let (graph, compiled) = compile(graph, mode, setup)?;
    for id in compiled.graph().node_ids() {
        let node = &compiled.graph()[id];
        if let Op::Constant(value) = &node.op {
            assert_guarded(&format!("constant {}", node.name), value);
        }
    }
    let values = init::random_values(&graph, seed).unwrap();
    let mut interp_rng = Generator::new(seed).with_step(5);
    let expected = interp::run(&graph, mode, &mut interp_rng, &values);
    let (mut inputs, params) = ParameterStore::split(&graph, values.clone());
    for (name, value) in &inputs {
        assert_guarded(&format!("input {name}"), value);
    }
    for (name, value) in params.iter() {
        assert_guarded(&format!("parameter {name}"), value);
    }
    let agreement = match setup.gemm {
        Gemm::Reference => Agreement::Bits,
        Gemm::Blocked => Agreement::Within(1e-4),
    };
    let mut jit_rng = Generator::new(seed).with_step(5);
    let got = if compiled.overwritten_inputs().is_empty() {
        compiled.run(&mut jit_rng, &inputs, &params)
    } else {
        compiled.run_mut(&mut jit_rng, &mut inputs, &params)
    };
    if interp_rng != jit_rng {
        return Err(format!(
            "generator steps {} vs {}",
            interp_rng.step(),
            jit_rng.step()
        ));
    }
    // Held to its own run, a run that succeeds as the interpreter's does is its own
    // expectation, and `run_into` must give its bits.
    let (expected, agreement) = match (compared, expected, &got) {
        (Values::OwnRun, Ok(_), Ok(own)) => (Ok(own.clone()), Agreement::Bits),
        (_, expected, _) => (expected, agreement),
    };
    let Some(outputs) = agree(&expected, got, agreement, setup.trace)? else {
        return Ok(());
    };
    for (name, value) in &outputs {
        assert_guarded(&format!("output {name}"), value);
    }
    if !compiled.overwritten_inputs().is_empty() {
        // run_into refuses graphs that write over inputs.
        return Ok(());
    }
    let mut into = sentinels(&outputs);
    let mut rng = Generator::new(seed).with_step(5);
    let status = compiled.run_into(&mut rng, &inputs, &params, &mut into);
    agree(&expected, status.map(|()| into), agreement, setup.trace)
        .map(|_| ())
        .map_err(|m| format!("run_into: {m}"))
}

/// The graph to compile (every node an output if traced; in-place requests dropped where
/// they conflict, or always when traced, since they change no value) and its compilation.
fn compile(graph: &Graph, mode: Mode, setup: Setup) -> Result<(Graph, CompiledGraph), String> {
    let compiler = Compiler::new()
        .mode(mode)
        .verify(true)
        .gemm(setup.gemm)
        .fuse(setup.fuse);
    let graph = if setup.trace {
        Graph::with_every_node_as_output(&common::without_inplace(graph))
    } else {
        graph.clone()
    };
    match compiler.compile(&graph) {
        Ok(compiled) => Ok((graph, compiled)),
        Err(e) if common::is_inplace_conflict(&e) => {
            let graph = common::without_inplace(&graph);
            let compiled = compiler
                .compile(&graph)
                .map_err(|e| format!("compile: {e}"))?;
            Ok((graph, compiled))
        }
        Err(e) => Err(format!("compile: {e}")),
    }
}

/// Output buffers for `run_into` shaped like `outputs`, filled with a value no run writes
/// (so an element the run skips shows up as a difference).
fn sentinels(outputs: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    (outputs.iter())
        .map(|(name, value)| {
            let n = value.numel();
            let data = match value.data() {
                TensorData::F32(_) => TensorData::F32(vec![-1.2345e33; n]),
                TensorData::I32(_) => TensorData::I32(vec![i32::MIN + 7; n]),
                // A bool holds no third value: alternate, so a skipped run of elements shows.
                TensorData::Bool(_) => TensorData::Bool((0..n).map(|i| i % 3 == 0).collect()),
            };
            let sentinel = Tensor::new(value.shape().clone(), data);
            (name.clone(), sentinel.expect("invariant: numel elements"))
        })
        .collect()
}

/// Panics unless `value`'s buffer (if it has one) is guarded and has no spare capacity, so
/// the guard page is right past its last element (or right before its first): a vector's
/// guard sits past its capacity.
fn assert_guarded(what: &str, value: &Tensor) {
    let (address, len, capacity) = match value.data() {
        TensorData::F32(v) => (v.as_ptr().cast::<u8>(), v.len(), v.capacity()),
        TensorData::I32(v) => (v.as_ptr().cast::<u8>(), v.len(), v.capacity()),
        TensorData::Bool(v) => (v.as_ptr().cast::<u8>(), v.len(), v.capacity()),
    };
    if len > 0 {
        assert!(is_guarded(address), "{what} is not in a guarded buffer");
        assert_eq!(len, capacity, "{what} has spare capacity past its end");
    }
}

/// Compares a JIT result with the interpreter's; the JIT's outputs if both succeeded.
fn agree(
    expected: &dropjit::Result<Vec<(String, Tensor)>>,
    got: dropjit::Result<Vec<(String, Tensor)>>,
    agreement: Agreement,
    trace: bool,
) -> Result<Option<Vec<(String, Tensor)>>, String> {
    match (expected, got) {
        (Ok(expected), Ok(got)) => {
            for ((name, e), (_, g)) in expected.iter().zip(&got) {
                compare(e, g, agreement).map_err(|m| format!("output {name}: {m}"))?;
            }
            Ok(Some(got))
        }
        (Err(e), Err(g)) if e.to_string() == g.to_string() => Ok(None),
        // Untraced, a failing node no output needs is optimized away before compilation.
        (Err(_), Ok(_)) if !trace => Ok(None),
        (e, g) => Err(format!(
            "interpreter {:?} vs JIT {:?}",
            e.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            g.map(|_| ()).map_err(|e| e.to_string())
        )),
    }
}
