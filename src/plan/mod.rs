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
//!    threads share, the same units for any thread count.
//!
//! Nothing here generates code or touches a value: the plan depends on the graph's shapes and
//! the options alone, so it can be printed ([`Schedule::display`], [`Program::memory`]) and
//! tested as data.

pub(crate) mod alias;
mod arena;
mod fusion;
pub(crate) mod memory;
pub mod phase;
pub mod schedule;
mod summary;
pub mod vector;

pub use phase::{ELEMENT_BLOCK, Part, Phase, Unit};
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
    let memory = memory::plan(&graph, &schedule)?;
    let mut phases = phase::phases(&graph, &schedule, options.threads);
    for phase in &mut phases {
        phase.chunk_units = phase.chunk_units.min(options.max_chunk_units);
    }
    Ok(Program {
        graph,
        schedule,
        memory,
        phases,
    })
}
