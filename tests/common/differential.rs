//! The differential check shared by tests/jit_differential.rs and the compile fuzz target
//! (tests/fuzz/entries.rs): a graph on the interpreter, the definition, against the JIT, in
//! a mode, a setup (GEMM, fusion, tracing) and spreads over threads; outputs, errors and the
//! generator's step afterwards must agree.

use dropjit::{
    CompiledGraph, Compiler, Gemm, Generator, Graph, Isa, Mode, ParameterStore, Tensor, init,
    interp,
};

use super::compare::{Agreement, compare};

/// How a graph is compiled and what is compared.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub gemm: Gemm,
    pub fuse: bool,
    /// Every node an output, so every value is materialized and compared.
    pub trace: bool,
}

/// Fused and unfused, traced and not, with the interpreter's summation order.
pub const BIT_EXACT: [Setup; 4] = [
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

/// How a JIT run is spread over threads.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub threads: usize,
    /// Every phase split into chunks of one unit, rather than as compiled.
    pub finest: bool,
}

/// One thread, then two and three threads splitting every phase into one-unit chunks.
pub const ONE_TWO_THREE: [Spread; 3] = [
    Spread {
        threads: 1,
        finest: false,
    },
    Spread {
        threads: 2,
        finest: true,
    },
    Spread {
        threads: 3,
        finest: true,
    },
];

/// The instruction set of the helpers (keep bits, GEMM) a spread compiles with: one thread
/// the host's widest, two the next, three the next again (wrapping), so every instruction
/// set this host runs ([`Isa::available`]) meets the interpreter, and the other spreads, in
/// the same comparison.
pub fn isa(spread: Spread) -> Isa {
    let available = Isa::available();
    available[available.len() - 1 - (spread.threads - 1) % available.len()]
}

pub fn compiler(mode: Mode, setup: Setup, spread: Spread) -> Compiler {
    let compiler = (Compiler::new().mode(mode).verify(true))
        .gemm(setup.gemm)
        .fuse(setup.fuse)
        .threads(spread.threads)
        .isa(isa(spread));
    if spread.finest {
        compiler.max_chunk_units(1)
    } else {
        compiler
    }
}

pub fn compile(graph: &Graph, compiler: Compiler) -> CompiledGraph {
    compiler
        .compile(graph)
        .unwrap_or_else(|e| panic!("compiling {}: {e}\n{graph}", graph.name()))
}

/// Runs `graph` (with every node exposed if `setup.trace`) on the interpreter and, compiled
/// spread each way of `spreads`, on the JIT, and compares everything: outputs, errors, and
/// the generator's step afterwards. Later JIT runs must equal the first bit for bit.
pub fn check(
    graph: &Graph,
    mode: Mode,
    setup: Setup,
    agreement: Agreement,
    seed: u64,
    spreads: &[Spread],
) -> Result<(), String> {
    // In-place requests change no value, but an in-place dropout whose input is read later
    // does not compile; tests/jit_memory.rs covers in-place (and its conflicts).
    let base = super::without_inplace(graph);
    let traced = if setup.trace {
        Graph::with_every_node_as_output(&base)
    } else {
        base
    };
    let values = init::random_values(&traced, seed).unwrap();
    let mut interp_rng = Generator::new(seed).with_step(5);
    let expected = interp::run(&traced, mode, &mut interp_rng, &values);
    let (inputs, params) = ParameterStore::split(&traced, values);
    let mut first: Option<dropjit::Result<Vec<(String, Tensor)>>> = None;
    for &spread in spreads {
        let n = format!("{} threads, {} helpers", spread.threads, isa(spread).name());
        let compiled = compile(&traced, compiler(mode, setup, spread));
        let mut jit_rng = Generator::new(seed).with_step(5);
        let got = compiled.run(&mut jit_rng, &inputs, &params);
        if interp_rng != jit_rng {
            return Err(format!(
                "{n}: generator steps {} vs {}",
                interp_rng.step(),
                jit_rng.step()
            ));
        }
        agree(&expected, &got, setup, agreement).map_err(|m| format!("{n}: {m}"))?;
        match &first {
            None => first = Some(got),
            Some(first) => same_bits(first, &got).map_err(|m| format!("{n} vs the first: {m}"))?,
        }
    }
    Ok(())
}

/// The JIT's result against the interpreter's.
pub fn agree(
    expected: &dropjit::Result<Vec<(String, Tensor)>>,
    got: &dropjit::Result<Vec<(String, Tensor)>>,
    setup: Setup,
    agreement: Agreement,
) -> Result<(), String> {
    match (expected, got) {
        (Ok(expected), Ok(got)) => {
            for ((name, e), (_, g)) in expected.iter().zip(got) {
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
            e.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            g.as_ref().map(|_| ()).map_err(|e| e.to_string())
        )),
    }
}

/// Two JIT results, equal to the bit (NaN payloads included: the same code computed them).
pub fn same_bits(
    a: &dropjit::Result<Vec<(String, Tensor)>>,
    b: &dropjit::Result<Vec<(String, Tensor)>>,
) -> Result<(), String> {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            for ((name, x), (_, y)) in a.iter().zip(b) {
                if x.ty() != y.ty() || x.to_le_bytes() != y.to_le_bytes() {
                    return Err(format!("output {name} differs"));
                }
            }
            Ok(())
        }
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(()),
        (a, b) => Err(format!(
            "{:?} vs {:?}",
            a.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            b.as_ref().map(|_| ()).map_err(|e| e.to_string())
        )),
    }
}

/// Checks `graph` against the interpreter bit for bit in train, eval and Monte Carlo mode,
/// with every bit-exact setup, on one and two threads; panics naming the first failure.
pub fn check_every_mode(graph: &Graph, seed: u64) {
    for mode in [Mode::Train, Mode::Eval, Mode::Mc] {
        for setup in BIT_EXACT {
            check(
                graph,
                mode,
                setup,
                Agreement::Bits,
                seed,
                &ONE_TWO_THREE[..2],
            )
            .unwrap_or_else(|e| panic!("{} in {mode:?}, {setup:?}: {e}", graph.name()));
        }
    }
}

/// Compiles `graph` in `mode` with the reference GEMM on one and two threads, runs it on
/// `values` (inputs and parameters by name) and asserts every output has the bits of
/// `expected` (the interpreter's outputs by name); `what` heads the panic message.
pub fn assert_jit_equals(
    graph: &Graph,
    mode: Mode,
    values: &std::collections::BTreeMap<String, Tensor>,
    expected: &std::collections::BTreeMap<String, Tensor>,
    what: &str,
) {
    let (inputs, params) = ParameterStore::split(graph, values.clone());
    for spread in &ONE_TWO_THREE[..2] {
        let compiled = Compiler::new()
            .mode(mode)
            .verify(true)
            .gemm(Gemm::Reference)
            .threads(spread.threads)
            .compile(graph)
            .unwrap_or_else(|e| panic!("{what}: compiling: {e}"));
        let jit = compiled
            .run(&mut Generator::new(0), &inputs, &params)
            .unwrap_or_else(|e| panic!("{what}: running: {e}"));
        for (name, tensor) in jit {
            compare(&expected[&name], &tensor, Agreement::Bits).unwrap_or_else(|m| {
                panic!(
                    "{what} {mode:?} {name}, {} threads (JIT against the interpreter): {m}",
                    spread.threads
                )
            });
        }
    }
}
