//! Running compiled code: [`CompiledGraph`] holds a planned program ([`crate::plan::Program`])
//! and its machine code (`crate::jit`), and runs it on the caller's tensors as often as
//! asked: binding checks (`bind`), the reused workspace (`workspace`), the phases on one
//! thread or several (`threads`), and parameters from a [`ParameterStore`] (`store`).
//!
//! The runtime reads the plan as data and calls the compiled functions through the one entry
//! ABI; it knows nothing of how they were generated.

mod bind;
mod run;
mod store;
pub(crate) mod threads;
mod workspace;

pub use store::ParameterStore;

use std::sync::Arc;

use crate::graph::{Graph, Mode};
use crate::jit::Jit;
use crate::plan::{MemorySummary, Phase, Program, SampleTiling, Schedule};
use crate::rng::CONTRACT_VERSION;
use threads::Threads;

/// A graph compiled to native code for one mode. `Send + Sync`: runs only borrow it, so
/// threads may share one.
pub struct CompiledGraph {
    /// The graph as given: run bindings are checked against it, as the interpreter does.
    source: Graph,
    /// The graph after the passes and every decision about running it.
    program: Program,
    mode: Mode,
    contract_version: u32,
    /// Where the phases run.
    threads: Threads,
    /// The thread count compiled for.
    thread_count: usize,
    /// One function per phase of the program.
    jit: Arc<Jit>,
    /// The arena and table runs reuse (`workspace`).
    workspace: workspace::Cached,
}

impl CompiledGraph {
    /// A compiled graph of `source`, planned as `program` for `mode`, whose phases are `jit`'s
    /// functions, running on `threads` (`thread_count` of them).
    pub(crate) fn new(
        source: Graph,
        program: Program,
        mode: Mode,
        jit: Jit,
        threads: Threads,
        thread_count: usize,
    ) -> CompiledGraph {
        let memory = &program.memory;
        CompiledGraph {
            source,
            workspace: workspace::Cached::new(memory.arena_bytes(), memory.slots.len()),
            threads: threads.for_phases(&program.phases),
            program,
            mode,
            contract_version: CONTRACT_VERSION,
            thread_count,
            jit: Arc::new(jit),
        }
    }

    /// The mode it was compiled for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The RNG contract version its dropout masks follow ([`crate::rng::CONTRACT_VERSION`]).
    pub fn contract_version(&self) -> u32 {
        self.contract_version
    }

    /// The planned program it runs: the graph after the passes, the schedule, the memory plan
    /// and the phases.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The graph after the passes: what was lowered.
    pub fn graph(&self) -> &Graph {
        self.program.graph()
    }

    /// The kernels it runs, in order (`dump --stage optimized` prints them).
    pub fn schedule(&self) -> &Schedule {
        self.program.schedule()
    }

    /// The phases it runs, in order: what each computes and how its work is cut.
    pub fn phases(&self) -> &[Phase] {
        self.program.phases()
    }

    /// For a graph of Monte Carlo samples: how its per-sample kernels run, a chunk of samples
    /// at a time after the shared ones (`dump --stage optimized` prints it), if tiled.
    pub fn tiling(&self) -> Option<&SampleTiling> {
        self.program.tiling()
    }

    /// Its memory plan: buffers, arena size, reuse (`dump --stage optimized` prints it).
    pub fn memory(&self) -> MemorySummary {
        self.program.memory()
    }

    /// The thread count it was compiled for.
    pub fn threads(&self) -> usize {
        self.thread_count
    }

    /// The Cranelift IR of the generated functions, one per phase in order, each headed by a
    /// `; phase` comment line, before Cranelift's own optimizations (`dump --stage clif`).
    pub fn clif(&self) -> &str {
        self.jit.clif()
    }
}

impl std::fmt::Debug for CompiledGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledGraph")
            .field("graph", &self.graph().name())
            .field("mode", &self.mode)
            .field("contract_version", &self.contract_version)
            .field("threads", &self.thread_count)
            .finish_non_exhaustive()
    }
}
