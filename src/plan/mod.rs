//! Planning: every decision about how an optimized graph runs, made once and carried as data
//! in a [`Program`] that lowering turns into code and the runtime executes.
//!
//! The decisions, in the order the crate-private `plan` function makes them:
//! 1. the [`Schedule`]: which nodes share a kernel (`fusion`: maximal groups of element-wise
//!    nodes), in which order kernels run, which values live in memory between them, and
//!    whether each element-wise kernel is a vector or a scalar loop ([`vector::Form`]);
//! 2. the memory plan (`memory`): which values share a buffer (`alias`: views, in-place
//!    dropouts) and where each buffer lives (the caller's tensors or a range of one arena,
//!    reused by liveness, `arena`);
//! 3. the [`Phase`]s ([`phase`]): each kernel cut into functions of fixed work units that
//!    threads share, the same units for any thread count;
//! 4. for a graph of Monte Carlo samples, the [`SampleTiling`] ([`samples`]): the shared
//!    kernels first, then the per-sample ones a chunk of samples at a time, as the list of
//!    [`PhaseCall`]s a run makes.
//!
//! Nothing here generates code or touches a value: the plan depends on the graph's shapes and
//! the options alone, so it can be printed ([`Schedule::display`], [`Program::memory`]) and
//! tested as data.

pub(crate) mod alias;
mod arena;
mod fusion;
pub(crate) mod memory;
pub mod phase;
pub mod samples;
pub mod schedule;
mod summary;
pub mod vector;

pub use phase::{ELEMENT_BLOCK, Part, Phase, Unit};
pub use samples::{PhaseCall, SampleTiling};
pub use schedule::{Kernel, Schedule};
pub use summary::{BufferHome, BufferSummary, MemorySummary};
pub use vector::{Form, MaskForm, Read};

use crate::error::Result;
use crate::graph::Graph;
use memory::MemoryPlan;

/// How [`plan`] decides what options leave open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlanOptions {
    /// Fuse element-wise nodes into one loop per maximal group ([`Schedule::fused`]), or give
    /// every node its own kernel ([`Schedule::unfused`]).
    pub fuse: bool,
    /// The thread count the phases are chunked for.
    pub threads: usize,
    /// The most units one call of a split phase computes (at least 1).
    pub max_chunk_units: usize,
}

/// An optimized graph with every decision about running it: what lowering compiles and the
/// runtime runs.
#[derive(Clone, Debug)]
pub struct Program {
    /// The graph after the passes.
    pub(crate) graph: Graph,
    /// Its kernels in execution order.
    pub(crate) schedule: Schedule,
    /// Where each value lives.
    pub(crate) memory: MemoryPlan,
    /// The kernels' phases in execution order; phase `i` is generated function `i`.
    pub(crate) phases: Vec<Phase>,
    /// How a graph of samples runs its per-sample kernels, if it is tiled.
    pub(crate) tiling: Option<SampleTiling>,
    /// The phase calls a run makes, in order.
    pub(crate) calls: Vec<PhaseCall>,
    /// Generator steps one drawing run claims ([`crate::graph::steps_per_run`] of the graph
    /// before the passes, which may remove a dropout; the compiler sets it).
    pub(crate) steps_per_run: usize,
}

impl Program {
    /// The graph it runs (after the passes).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Its kernels, in order.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Its phases, in order: what each computes and how its work is cut.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// How a graph of Monte Carlo samples runs its per-sample kernels, if it is tiled.
    pub fn tiling(&self) -> Option<&SampleTiling> {
        self.tiling.as_ref()
    }
}

/// Plans `graph` (a graph after `passes::optimize`). Fails with
/// [`crate::Error::ArenaTooLarge`] if the values live at once need more memory than one
/// allocation can hold.
pub(crate) fn plan(graph: Graph, options: PlanOptions) -> Result<Program> {
    let schedule = if options.fuse {
        Schedule::fused(&graph)
    } else {
        Schedule::unfused(&graph)
    };
    let (schedule, sampled) = samples::order(&graph, schedule);
    let mut phases = phase::phases(&graph, &schedule, options.threads);
    for phase in &mut phases {
        phase.chunk_units = phase.chunk_units.min(options.max_chunk_units);
    }
    let tiling = sampled.and_then(|s| samples::tiling(&graph, &schedule, &phases, s));
    if let Some(t) = &tiling {
        samples::rechunk(&graph, &schedule, &mut phases, t, options.threads);
        for phase in &mut phases {
            phase.chunk_units = phase.chunk_units.min(options.max_chunk_units);
        }
    }
    let loop_from = tiling.as_ref().map(|t| t.first_kernel);
    let memory = memory::plan(&graph, &schedule, &phases, loop_from)?;
    let calls = samples::calls(&graph, &schedule, &phases, tiling.as_ref());
    Ok(Program {
        tiling,
        calls,
        steps_per_run: crate::graph::steps_per_run(&graph),
        graph,
        schedule,
        memory,
        phases,
    })
}
