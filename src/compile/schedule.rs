//! The schedule: the order of kernels a compiled graph executes, each one loop nest (or one
//! library call), and which values live in memory between them.
//!
//! A kernel computes one or more nodes. Values a kernel produces and no later kernel (and no
//! output) reads stay in registers inside its loop; the others are *materialized*: they get a
//! buffer from the memory plan. Without fusion every node is its own kernel and every value is
//! materialized.

use std::fmt;

use crate::graph::{Graph, NodeId, Op};

/// One unit of generated code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// The nodes it computes, in topological order.
    pub nodes: Vec<NodeId>,
    /// The nodes whose values it writes to memory: used by a later kernel or a graph output.
    pub outputs: Vec<NodeId>,
}

/// The kernels of a graph in execution order. Leaves (inputs, parameters, constants) and
/// reshapes (an alias of their operand's buffer) compute nothing and belong to no kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Kernels in execution order.
    pub kernels: Vec<Kernel>,
}

impl Schedule {
    /// Every computing node its own kernel, in topological order.
    pub fn unfused(graph: &Graph) -> Schedule {
        let kernels = graph
            .topo_order()
            .into_iter()
            .filter(|&id| computes(&graph.node(id).op))
            .map(|id| Kernel {
                nodes: vec![id],
                outputs: vec![id],
            })
            .collect();
        Schedule { kernels }
    }

    /// Renders the schedule with `graph`'s node names, one `# kernel` comment line per kernel,
    /// so it can follow a textual dump of the graph.
    pub fn display<'a>(&'a self, graph: &'a Graph) -> ScheduleDisplay<'a> {
        ScheduleDisplay {
            schedule: self,
            graph,
        }
    }
}

/// True for the nodes a kernel has to compute.
pub fn computes(op: &Op) -> bool {
    match op {
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Reshape { .. } => false,
        Op::Unary(_)
        | Op::Binary(_)
        | Op::MatMul
        | Op::Linear { .. }
        | Op::Transpose { .. }
        | Op::Reduce { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::CrossEntropy
        | Op::Dropout(_) => true,
    }
}

/// [`Schedule::display`]'s value.
pub struct ScheduleDisplay<'a> {
    schedule: &'a Schedule,
    graph: &'a Graph,
}

impl fmt::Display for ScheduleDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |ids: &[NodeId]| {
            let names: Vec<String> = ids
                .iter()
                .map(|&id| format!("%{}", self.graph.node(id).name))
                .collect();
            names.join(", ")
        };
        for (i, kernel) in self.schedule.kernels.iter().enumerate() {
            writeln!(
                f,
                "# kernel {i}: {} -> {}",
                names(&kernel.nodes),
                names(&kernel.outputs)
            )?;
        }
        Ok(())
    }
}
