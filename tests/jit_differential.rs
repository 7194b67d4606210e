//! Differential tests: the JIT against the interpreter, the executable definition of every
//! op, on every program in `ir/` and on random graphs, in both modes.
//!
//! Every node is made an output (`__trace_<i>`), so every intermediate value is compared, not
//! only the graph's outputs. With `Gemm::Reference` (the interpreter's summation order) every
//! value must be bit-identical (any NaN matching any NaN: Rust does not specify NaN payloads),
//! and errors must read the same. With the
//! default `sgemm`, products sum in another order, so values downstream of a `matmul` or
//! `linear` are compared within a tolerance (dropout masks still match: a dropped element is
//! exactly `+0.0` in both). Cranelift's verifier runs on every generated function.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use dropjit::{
    CompiledGraph, Compiler, Gemm, Generator, Graph, Mode, Op, ParameterStore, Tensor, init,
    interp, text,
};

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

fn compile(graph: &Graph, mode: Mode, gemm: Gemm) -> CompiledGraph {
    Compiler::new()
        .mode(mode)
        .verify(true)
        .gemm(gemm)
        .compile(graph)
        .unwrap_or_else(|e| panic!("compiling {}: {e}\n{graph}", graph.name()))
}

/// How two values may differ.
#[derive(Clone, Copy)]
enum Agreement {
    Bits,
    Within(f32),
}

fn compare(expected: &Tensor, got: &Tensor, agreement: Agreement) -> Result<(), String> {
    if expected.ty() != got.ty() {
        return Err(format!("type {} vs {}", expected.ty(), got.ty()));
    }
    if let (Some(e), Some(g)) = (expected.as_i32(), got.as_i32()) {
        return if e == g {
            Ok(())
        } else {
            Err(format!("{e:?} vs {g:?}"))
        };
    }
    let (e, g) = (expected.as_f32().expect("f32"), got.as_f32().expect("f32"));
    for (i, (&a, &b)) in e.iter().zip(g).enumerate() {
        let same = match agreement {
            // Rust leaves NaN payloads unspecified (LLVM may commute `a + b`), so any NaN
            // matches any NaN; every other value, -0.0 included, must match bit for bit.
            Agreement::Bits => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            Agreement::Within(tolerance) => {
                a.to_bits() == b.to_bits()
                    || (a.is_nan() && b.is_nan())
                    || (a - b).abs() <= tolerance * (1.0 + a.abs().max(b.abs()))
            }
        };
        if !same {
            return Err(format!(
                "element {i}: interpreter {a:?} ({:#010x}), JIT {b:?} ({:#010x})",
                a.to_bits(),
                b.to_bits()
            ));
        }
    }
    Ok(())
}

/// Runs `graph` (with every node exposed) on both engines and compares everything: outputs,
/// errors, and the generator's step afterwards.
fn check(
    graph: &Graph,
    mode: Mode,
    gemm: Gemm,
    agreement: Agreement,
    seed: u64,
) -> Result<(), String> {
    // In-place requests change no value, and tracing makes every value an output, which is
    // never overwritten; tests/jit_memory.rs covers them (and their conflicts).
    let traced = Graph::with_every_node_as_output(&common::without_inplace(graph));
    let values = init::random_values(&traced, seed);
    let mut interp_rng = Generator::new(seed).with_step(5);
    let expected = interp::run(&traced, mode, &mut interp_rng, &values);
    let compiled = compile(&traced, mode, gemm);
    let (inputs, params) = ParameterStore::split(&traced, values);
    let mut jit_rng = Generator::new(seed).with_step(5);
    let got = compiled.run(&mut jit_rng, &inputs, &params);
    if interp_rng != jit_rng {
        return Err(format!(
            "generator steps {} vs {}",
            interp_rng.step(),
            jit_rng.step()
        ));
    }
    match (expected, got) {
        (Ok(expected), Ok(got)) => {
            for ((name, e), (_, g)) in expected.iter().zip(&got) {
                compare(e, g, agreement).map_err(|m| format!("output {name}: {m}"))?;
            }
            Ok(())
        }
        (Err(e), Err(g)) if e.to_string() == g.to_string() => Ok(()),
        (e, g) => Err(format!(
            "interpreter {:?} vs JIT {:?}",
            e.map(|_| ()).map_err(|e| e.to_string()),
            g.map(|_| ()).map_err(|e| e.to_string())
        )),
    }
}

#[test]
fn ir_programs_match_the_interpreter_bit_for_bit() {
    for path in ir_files() {
        let graph = parse_file(&path);
        for mode in [Mode::Train, Mode::Eval] {
            if let Err(message) = check(&graph, mode, Gemm::Reference, Agreement::Bits, SEED) {
                panic!("{} in {mode:?} mode: {message}", path.display());
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
            if let Err(message) = check(&graph, mode, Gemm::Blocked, agreement, SEED) {
                panic!("{} in {mode:?} mode: {message}", path.display());
            }
        }
    }
}

#[test]
fn random_graphs_match_the_interpreter_bit_for_bit() {
    for seed in 0..300 {
        let graph = common::random_graph(seed);
        for mode in [Mode::Train, Mode::Eval] {
            if let Err(message) = check(&graph, mode, Gemm::Reference, Agreement::Bits, seed) {
                panic!("random graph seed {seed} in {mode:?} mode: {message}\n{graph}");
            }
        }
    }
}
