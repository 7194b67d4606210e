//! Compiling a graph to native code: [`Compiler`] runs the passes for a mode, groups the
//! nodes into kernels ([`Schedule`], element-wise nodes fused), plans the buffers, cuts the
//! kernels into phases of fixed work units ([`Phase`]), lowers each phase into one Cranelift
//! function and JIT-compiles them into a [`CompiledGraph`], which runs on the caller's tensors
//! as often as asked, on as many threads as compiled for, with the same bits for any count.
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

mod alias;
mod arena;
mod bind;
mod cache;
mod fusion;
pub mod memory;
mod plan;
mod run;
pub mod schedule;
mod store;
mod threads;
mod workspace;

pub use crate::lower::{Part, Phase, Unit};
pub use memory::{BufferHome, BufferSummary, MemorySummary};
pub use store::ParameterStore;

use std::fmt::Write;
use std::sync::Arc;

use crate::error::Result;
use crate::graph::Mode;
use crate::graph::verify::verify;
use crate::graph::{Graph, NodeId};
use crate::jit::{Codegen, Jit};
use crate::lower::{Gemm, lower_phase, phases};
use crate::passes;
use crate::rng::CONTRACT_VERSION;

pub use cache::CompileCache;
use plan::Plan;
pub use schedule::Schedule;
use threads::Threads;

/// Compile options, builder style: `Compiler::new().mode(Mode::Eval).compile(&graph)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compiler {
    mode: Mode,
    verify: bool,
    gemm: Gemm,
    fuse: bool,
    threads: usize,
    max_chunk_units: usize,
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
            fuse: true,
            threads: 1,
            max_chunk_units: usize::MAX,
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

    /// Whether maximal groups of element-wise nodes run as one loop ([`Schedule::fused`], the
    /// default) or every node as its own ([`Schedule::unfused`]). Both compute the same bits;
    /// differential tests compare them.
    pub fn fuse(mut self, fuse: bool) -> Compiler {
        self.fuse = fuse;
        self
    }

    /// How many threads a run uses: 1 (the default) runs on the caller's thread; with `n > 1`
    /// the caller shares large phases with a persistent pool of `n - 1` threads, built once
    /// per count and shared process-wide (`compile` starts it). The results are bit-identical
    /// for any count: the work is cut into units by the shapes alone, never by the thread
    /// count ([`Phase`]). `compile` fails with [`crate::Error::Threads`] for 0.
    pub fn threads(mut self, threads: usize) -> Compiler {
        self.threads = threads;
        self
    }

    /// Caps the units one call of a split phase computes ([`Phase::chunk_units`], normally
    /// sized by the work) at `units` (at least 1). Smaller chunks change no result, only how
    /// finely threads share a phase; tests split even small graphs this way.
    pub fn max_chunk_units(mut self, units: usize) -> Compiler {
        self.max_chunk_units = units.max(1);
        self
    }

    /// The kernels `compile` runs for `optimized`, a graph after `passes::optimize`.
    pub fn schedule(&self, optimized: &Graph) -> Schedule {
        if self.fuse {
            Schedule::fused(optimized)
        } else {
            Schedule::unfused(optimized)
        }
    }

    /// Verifies `graph`, runs `passes::optimize` for the mode, and compiles the result.
    /// Fails with the verifier's errors, [`crate::Error::InplaceConflict`] for an in-place
    /// dropout whose input is read after it, [`crate::Error::Threads`] for 0 threads (or a
    /// pool the system cannot start), or [`crate::Error::UnsupportedHost`] on a machine the
    /// JIT cannot target (anything but x86-64 with SSE4.1).
    pub fn compile(&self, graph: &Graph) -> Result<CompiledGraph> {
        verify(graph)?;
        let threads = Threads::new(self.threads)?;
        let optimized = passes::optimize(graph, self.mode)?;
        let schedule = self.schedule(&optimized);
        let plan = plan::plan(&optimized, &schedule)?;
        let mut phases = phases(&optimized, &schedule, self.threads);
        for phase in &mut phases {
            phase.chunk_units = phase.chunk_units.min(self.max_chunk_units);
        }
        let mut codegen = Codegen::new(self.verify)?;
        let target = codegen.target_config();
        let mut error_nodes = Vec::new();
        let mut clif = String::new();
        for (i, phase) in phases.iter().enumerate() {
            let mut ctx = codegen.entry_context();
            let imports = codegen.declare_imports(&mut ctx.func);
            lower_phase(
                &mut ctx.func,
                &optimized,
                &schedule,
                phase,
                &plan.buffers,
                imports,
                self.gemm,
                target,
                &mut error_nodes,
            );
            let header = phase_header(&optimized, &schedule, i, phase);
            writeln!(clif, "{header}\n{}", ctx.func.display())
                .expect("invariant: writing to a String succeeds");
            codegen.define(ctx);
        }
        let jit = Arc::new(codegen.finish());
        let threads = threads.for_phases(&phases);
        Ok(CompiledGraph {
            source: graph.clone(),
            workspace: workspace::Cached::new(plan.arena_bytes(), plan.slots.len()),
            graph: optimized,
            mode: self.mode,
            contract_version: CONTRACT_VERSION,
            clif,
            schedule,
            plan,
            phases,
            threads,
            thread_count: self.threads,
            error_nodes,
            jit,
        })
    }
}

/// The comment line heading a phase's function in [`CompiledGraph::clif`].
fn phase_header(graph: &Graph, schedule: &Schedule, i: usize, phase: &Phase) -> String {
    let names: Vec<String> = (schedule.kernels[phase.kernel].nodes.iter())
        .map(|&id| format!("%{}", graph.node(id).name))
        .collect();
    let what = match phase.part {
        Part::Draw(id) => format!("keep bytes of %{}", graph.node(id).name),
        Part::CheckTargets(id) => format!("targets of %{}", graph.node(id).name),
        Part::Compute => names.join(", "),
    };
    format!(
        "; phase {i}: kernel {} ({what}): {} {}, {} per chunk",
        phase.kernel, phase.units, phase.unit, phase.chunk_units
    )
}

/// A graph compiled to native code for one mode. `Send + Sync`: runs only borrow it, so
/// threads may share one.
pub struct CompiledGraph {
    /// The graph as given: run bindings are checked against it, as the interpreter does.
    source: Graph,
    /// The graph after `passes::optimize`, which was lowered.
    graph: Graph,
    mode: Mode,
    contract_version: u32,
    clif: String,
    schedule: Schedule,
    plan: Plan,
    /// The kernels' phases, in execution order; phase `i` is the JIT's function `i`.
    phases: Vec<Phase>,
    /// Where the phases run.
    threads: Threads,
    /// The thread count compiled for.
    thread_count: usize,
    /// Error code `i + 1` of the generated code names `error_nodes[i]`.
    error_nodes: Vec<NodeId>,
    jit: Arc<Jit>,
    /// The arena and table runs reuse ([`workspace`]).
    workspace: workspace::Cached,
}

impl CompiledGraph {
    /// The mode it was compiled for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The RNG contract version its dropout masks follow ([`crate::rng::CONTRACT_VERSION`]).
    pub fn contract_version(&self) -> u32 {
        self.contract_version
    }

    /// The graph after the passes: what was lowered.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The kernels it runs, in order (`dump --stage optimized` prints them).
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The phases it runs, in order: what each computes and how its work is cut.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The thread count it was compiled for.
    pub fn threads(&self) -> usize {
        self.thread_count
    }

    /// The Cranelift IR of the generated functions, one per phase in order, each headed by a
    /// `; phase` comment line, before Cranelift's own optimizations (`dump --stage clif`).
    pub fn clif(&self) -> &str {
        &self.clif
    }
}

impl std::fmt::Debug for CompiledGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledGraph")
            .field("graph", &self.graph.name())
            .field("mode", &self.mode)
            .field("contract_version", &self.contract_version)
            .field("threads", &self.thread_count)
            .finish_non_exhaustive()
    }
}
