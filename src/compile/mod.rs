//! Compiling a graph to native code, the pipeline's driver: [`Compiler`] verifies a graph,
//! runs the passes for a mode ([`crate::passes`]), plans the program ([`crate::plan`]: kernels,
//! memory, phases), lowers each phase into one Cranelift function (`crate::lower`),
//! JIT-compiles them (`crate::jit`) and returns a [`CompiledGraph`] ([`crate::runtime`]),
//! which runs on the caller's tensors as often as asked, on as many threads as compiled for,
//! with the same bits for any count. [`CompileCache`] compiles each (graph, mode) once.
//!
//! ```
//! # fn main() -> dropjit::Result<()> {
//! use std::collections::BTreeMap;
//! use dropjit::{Compiler, Generator, Mode, ParameterStore};
//! let graph = dropjit::text::parse("graph g {\n  %x: f32[4] = input\n  %y: f32[4] = dropout %x {p = 0.5}\n  output y = %y\n}\n")?;
//! let compiled = Compiler::new().mode(Mode::Train).compile(&graph)?;
//! let inputs = BTreeMap::from([("x".to_string(), dropjit::Tensor::from_f32([4], vec![1.0; 4])?)]);
//! let outputs = compiled.run(&mut Generator::new(7), &inputs, &ParameterStore::new())?;
//! // Kept elements are doubled, dropped ones are +0.0.
//! assert!(outputs[0].1.as_f32().unwrap().iter().all(|&v| v == 0.0 || v == 2.0));
//! # Ok(()) }
//! ```

mod cache;

pub use cache::CompileCache;

use crate::error::Error;
use crate::error::Result;
use crate::graph::verify::verify;
use crate::graph::{Graph, Mode};
use crate::isa::Isa;
use crate::jit::Codegen;
use crate::lower::{self, Choices, Gemm};
use crate::passes;
use crate::plan::{self, PlanOptions};
use crate::runtime::CompiledGraph;
use crate::runtime::threads::Threads;

/// Compile options, builder style: `Compiler::new().mode(Mode::Eval).compile(&graph)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compiler {
    mode: Mode,
    verify: bool,
    gemm: Gemm,
    isa: Isa,
    fuse: bool,
    threads: usize,
    max_chunk_units: usize,
    samples: Option<usize>,
}

impl Default for Compiler {
    fn default() -> Compiler {
        Compiler::new()
    }
}

impl Compiler {
    /// Train mode (as PyTorch modules start), `sgemm` products, element-wise fusion, one
    /// thread, and Cranelift's verifier on in debug builds.
    pub fn new() -> Compiler {
        Compiler {
            mode: Mode::Train,
            verify: cfg!(debug_assertions),
            gemm: Gemm::Blocked,
            isa: Isa::best(),
            fuse: true,
            threads: 1,
            max_chunk_units: usize::MAX,
            samples: None,
        }
    }

    /// Whether dropout is active in the compiled code.
    pub fn mode(mut self, mode: Mode) -> Compiler {
        self.mode = mode;
        self
    }

    /// Runs Cranelift's verifier on the generated function (a failure is a compiler bug and
    /// panics with the function's text). Tests switch it on.
    pub fn verify(mut self, verify: bool) -> Compiler {
        self.verify = verify;
        self
    }

    /// How `matmul` and `linear` compute their products.
    pub fn gemm(mut self, gemm: Gemm) -> Compiler {
        self.gemm = gemm;
        self
    }

    /// The instruction set of the Rust helpers generated code calls, the keep-bit generator
    /// ([`crate::rng::planes`]) and the blocked GEMM ([`crate::gemm`]): the host's widest by
    /// default. Every one gives the same bits; tests force each one this host runs, and
    /// `compile` fails with [`crate::Error::UnsupportedHost`] for one it cannot.
    pub fn isa(mut self, isa: Isa) -> Compiler {
        self.isa = isa;
        self
    }

    /// Whether maximal groups of element-wise nodes run as one loop
    /// ([`crate::plan::Schedule::fused`], the default) or every node as its own
    /// ([`crate::plan::Schedule::unfused`]). Both compute the same bits;
    /// differential tests compare them.
    pub fn fuse(mut self, fuse: bool) -> Compiler {
        self.fuse = fuse;
        self
    }

    /// How many threads a run uses: 1 (the default) runs on the caller's thread; with `n > 1`
    /// the caller shares large phases with a persistent pool of `n - 1` threads, built once
    /// per count and shared process-wide (`compile` starts it). The results are bit-identical
    /// for any count: the work is cut into units by the shapes alone, never by the thread
    /// count ([`crate::plan::Phase`]). `compile` fails with [`crate::Error::Threads`] for 0.
    pub fn threads(mut self, threads: usize) -> Compiler {
        self.threads = threads;
        self
    }

    /// Caps the units one call of a split phase computes ([`crate::plan::Phase::chunk_units`], normally
    /// sized by the work) at `units` (at least 1). Smaller chunks change no result, only how
    /// finely threads share a phase; tests split even small graphs this way.
    pub fn max_chunk_units(mut self, units: usize) -> Compiler {
        self.max_chunk_units = units.max(1);
        self
    }

    /// Compiles one graph of `samples` Monte Carlo forward passes
    /// ([`crate::passes::batch_samples()`]): every output gains a leading dimension of samples,
    /// the part of the graph before the first dropout runs once, and a run claims a step per
    /// sample (sample `s` of a run at step `t` is a run of the graph at step `t + s`). Meant
    /// for [`Mode::Mc`]; `None` (the default) compiles the graph as it is.
    pub fn samples(mut self, samples: Option<usize>) -> Compiler {
        self.samples = samples;
        self
    }

    /// Verifies `graph`, runs the passes for the mode (and samples), and compiles the result.
    /// Fails with the verifier's errors, [`crate::Error::InplaceConflict`] for an in-place
    /// dropout whose input is read after it, [`crate::Error::Threads`] for 0 threads (or a
    /// pool the system cannot start), or [`crate::Error::UnsupportedHost`] on a machine the
    /// JIT cannot target (anything but x86-64 with SSE4.1).
    pub fn compile(&self, graph: &Graph) -> Result<CompiledGraph> {
        verify(graph)?;
        if !self.isa.is_available() {
            return Err(Error::UnsupportedHost {
                reason: format!(
                    "the {} instruction set needs a CPU feature this host lacks",
                    self.isa.name()
                ),
            });
        }
        let threads = Threads::new(self.threads)?;
        let pipeline = passes::PipelineOptions {
            samples: self.samples,
            ..passes::PipelineOptions::new(self.mode)
        };
        let optimized = passes::run_pipeline(graph, &pipeline)?;
        let steps_per_run = optimized.steps_per_run;
        let options = PlanOptions {
            fuse: self.fuse,
            threads: self.threads,
            max_chunk_units: self.max_chunk_units,
        };
        let mut program = plan::plan(optimized.graph, options)?;
        program.steps_per_run = steps_per_run;
        let codegen = Codegen::new(self.verify, program.phases().len())?;
        let choices = Choices {
            gemm: self.gemm,
            isa: self.isa,
        };
        let jit = lower::lower(&program, choices, codegen);
        Ok(CompiledGraph::new(
            graph.clone(),
            program,
            self.mode,
            jit,
            threads,
            self.threads,
        ))
    }
}
