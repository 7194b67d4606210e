//! Differential tests: the JIT against the interpreter, the executable definition of every
//! op, on every program in `ir/` and on random graphs, in both modes, fused and unfused.
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

use dropjit::{
    CompiledGraph, Compiler, Gemm, Generator, Graph, Mode, ParameterStore, Tensor, init, interp,
    text,
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

/// How a graph is compiled and what is compared.
#[derive(Clone, Copy, Debug)]
struct Setup {
    gemm: Gemm,
    fuse: bool,
    /// Every node an output, so every value is materialized and compared.
    trace: bool,
}

/// Fused and unfused, traced and not, with the interpreter's summation order.
const BIT_EXACT: [Setup; 4] = [
    Setup {
        gemm: Gemm::Reference,
        fuse: true,
        trace: true,
    },
    Setup {
        gemm: Gemm::Reference,
        fuse: true,
        trace: false,
    },
    Setup {
        gemm: Gemm::Reference,
        fuse: false,
        trace: true,
    },
    Setup {
        gemm: Gemm::Reference,
        fuse: false,
        trace: false,
    },
];

fn compile(graph: &Graph, mode: Mode, setup: Setup) -> CompiledGraph {
    Compiler::new()
        .mode(mode)
        .verify(true)
        .gemm(setup.gemm)
        .fuse(setup.fuse)
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
    if let (Some(e), Some(g)) = (expected.as_bool(), got.as_bool()) {
        return if e == g {
            Ok(())
        } else {
            Err(format!("{e:?} vs {g:?}"))
        };
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

/// Runs `graph` (with every node exposed if `setup.trace`) on both engines and compares
/// everything: outputs, errors, and the generator's step afterwards.
fn check(
    graph: &Graph,
    mode: Mode,
    setup: Setup,
    agreement: Agreement,
    seed: u64,
) -> Result<(), String> {
    // In-place requests change no value, but an in-place dropout whose input is read later
    // does not compile; tests/jit_memory.rs covers in-place (and its conflicts).
    let base = common::without_inplace(graph);
    let traced = if setup.trace {
        Graph::with_every_node_as_output(&base)
    } else {
        base
    };
    let values = init::random_values(&traced, seed);
    let mut interp_rng = Generator::new(seed).with_step(5);
    let expected = interp::run(&traced, mode, &mut interp_rng, &values);
    let compiled = compile(&traced, mode, setup);
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
        // Untraced, a failing node no output needs is optimized away before compilation, so
        // the JIT may succeed, or fail at a later node the interpreter never reached.
        (Err(_), Ok(_) | Err(_)) if !setup.trace => Ok(()),
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
            for setup in BIT_EXACT {
                if let Err(message) = check(&graph, mode, setup, Agreement::Bits, SEED) {
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
            if let Err(message) = check(&graph, mode, setup, agreement, SEED) {
                panic!("{} in {mode:?} mode: {message}", path.display());
            }
        }
    }
}

#[test]
fn random_graphs_match_the_interpreter_bit_for_bit() {
    for seed in 0..1000 {
        let graph = common::random_graph(seed);
        for mode in [Mode::Train, Mode::Eval] {
            for setup in &BIT_EXACT[..3] {
                if let Err(message) = check(&graph, mode, *setup, Agreement::Bits, seed) {
                    panic!(
                        "random graph seed {seed} in {mode:?} mode, {setup:?}: {message}\n{graph}"
                    );
                }
            }
        }
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
                    if let Err(message) = check(&graph, mode, setup, Agreement::Bits, seed) {
                        panic!("{} in {mode:?} mode, {setup:?}: {message}", graph.name());
                    }
                }
            }
        }
    }
}

/// The loops of a CLIF function: branches back to an earlier (or the same) block.
fn count_loops(clif: &str) -> usize {
    let mut block = 0usize;
    let mut loops = 0;
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
    for line in clif.lines().map(str::trim) {
        if line.starts_with("block") && line.ends_with(':') {
            block = number(line).expect("a block header names its block");
        } else if line.starts_with("brif") || line.starts_with("jump") {
            let targets = line
                .split_whitespace()
                .filter_map(|w| number(w.trim_end_matches(',')));
            loops += targets.filter(|&target| target <= block).count();
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
    let pairs: Vec<Vec<&str>> = (fused.schedule().kernels.iter())
        .filter(|k| k.nodes.len() > 1)
        .map(|k| k.nodes.iter().map(|&id| graph.node(id).op.name()).collect())
        .collect();
    assert_eq!(pairs, [["relu", "dropout"], ["relu", "dropout"]]);
    assert_eq!(fused.schedule().kernels.len(), 5);
    assert_eq!(unfused.schedule().kernels.len(), 7);
    // Each pair's two element loops became one; the mask draws stay.
    assert_eq!(count_loops(fused.clif()) + 2, count_loops(unfused.clif()));
}
