//! Graph-to-graph passes, and the pipeline that runs them in order.
//!
//! The pipeline is straight code: each pass is a named free function in its own file whose doc
//! says what it changes and what it leaves alone. More passes (fusion, dead-code elimination,
//! memory planning) join this list as the compiler grows.

pub mod eliminate_dropout;

pub use eliminate_dropout::eliminate_dropout;

use crate::error::Result;
use crate::graph::{Graph, verify::verify};
use crate::interp::Mode;

/// What one pass did, for `--print-after-all`-style reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes the pass removed.
    pub removed: usize,
}

/// Specialises `graph` for `mode` and runs every pass, verifying the result.
pub fn optimize(graph: &Graph, mode: Mode) -> Result<Graph> {
    let mut graph = graph.clone();
    eliminate_dropout(&mut graph, mode);
    verify(&graph)?;
    Ok(graph)
}
