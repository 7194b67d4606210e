//! Which values share one buffer: a reshape is a view of its operand's buffer, and an
//! in-place dropout (`inplace = true`) writes its result over its input's buffer when that is
//! safe. Values that share a buffer form a *group*; the memory plan gives each group one
//! buffer.
//!
//! An in-place dropout `d` of input `h` takes `h`'s buffer when:
//! 1. no other node reads `h`'s buffer (through `h`, a view of it, or an earlier in-place
//!    result in it; the earlier in-place dropouts of a chain themselves excepted). Otherwise
//!    compilation fails with [`Error::InplaceConflict`] naming `d` and that reader: the program
//!    asks to destroy a value something else needs. The rule does not depend on the schedule
//!    (fusion may run a reader that comes first in the program after `d`'s kernel), so whether
//!    a graph compiles never depends on how it is fused.
//! 2. both values are materialized (a value kept in registers has no buffer to share), and no
//!    value in the buffer is a graph output, a parameter or a constant. Those outlive the run
//!    (the caller reads outputs afterwards; parameters and constants serve every run), so they
//!    are never overwritten: `d` then gets a buffer of its own, exactly as without `inplace`.
//!
//! Overwriting is safe for our loops: every dropout kind reads element `i` of its input and
//! then writes element `i` of its result, never an element it has yet to read. The channel-wise
//! kinds draw all their keep bytes into a scratch buffer before that loop, so the mask does not
//! depend on the input's buffer either.

use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::graph::{Graph, Leaf, NodeId, OpClass};

/// The schedule, indexed by node.
pub(crate) struct ScheduleIndex {
    /// By node index: the kernel computing it.
    kernel: Vec<Option<usize>>,
    /// By node index: its place in execution order (kernels in order, nodes in kernel order).
    position: Vec<Option<usize>>,
    /// By node index: whether some kernel writes its value to memory.
    materialized: Vec<bool>,
}

impl ScheduleIndex {
    /// Indexes `schedule`, a schedule of `graph`.
    pub(crate) fn new(graph: &Graph, schedule: &Schedule) -> ScheduleIndex {
        let len = graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0);
        let mut index = ScheduleIndex {
            kernel: vec![None; len],
            position: vec![None; len],
            materialized: vec![false; len],
        };
        let mut position = 0;
        for (k, kernel) in schedule.kernels.iter().enumerate() {
            for id in &kernel.nodes {
                index.kernel[id.index()] = Some(k);
                index.position[id.index()] = Some(position);
                position += 1;
            }
            for id in &kernel.outputs {
                index.materialized[id.index()] = true;
            }
        }
        index
    }

    /// The kernel computing `id`, which has to be a computing node.
    pub(crate) fn kernel(&self, id: NodeId) -> usize {
        self.kernel[id.index()].expect("invariant: the schedule computes every computing node")
    }

    fn position(&self, id: NodeId) -> usize {
        self.position[id.index()].expect("invariant: the schedule computes every computing node")
    }
}

/// The groups of values that share a buffer.
pub(crate) struct Groups {
    /// By node index: its group, for nodes whose value is in memory (leaves, materialized
    /// values and views of either).
    group: Vec<Option<usize>>,
    /// The nodes of each group in topological order; merged-away groups are empty.
    members: Vec<Vec<NodeId>>,
    /// The in-place dropouts that took their input's buffer, in execution order.
    pub shared: Vec<NodeId>,
}

impl Groups {
    /// The group holding `id`'s value, if it is in memory.
    pub(crate) fn of(&self, id: NodeId) -> Option<usize> {
        self.group.get(id.index()).copied().flatten()
    }

    /// The values in group `g`, in topological order; the first one owns the buffer (a leaf,
    /// or the first value computed into it).
    pub(crate) fn members(&self, g: usize) -> &[NodeId] {
        &self.members[g]
    }

    /// The nodes that read group `g`'s buffer: users of its values, other than the views that
    /// are themselves in the group.
    pub(crate) fn readers(&self, graph: &Graph, g: usize) -> Vec<NodeId> {
        let mut readers = Vec::new();
        for &member in &self.members[g] {
            for user in graph.users(member) {
                if graph.node(user).op.class() != OpClass::View {
                    readers.push(user);
                }
            }
        }
        readers
    }
}

/// The computing nodes that read `id`'s value, directly or through views of it.
fn value_readers(graph: &Graph, id: NodeId) -> Vec<NodeId> {
    let mut readers = Vec::new();
    for user in graph.users(id) {
        if graph.node(user).op.class() == OpClass::View {
            readers.extend(value_readers(graph, user));
        } else {
            readers.push(user);
        }
    }
    readers
}

/// Forms the groups of `graph` under `schedule`: views first, then every in-place dropout in
/// execution order. Fails with [`Error::InplaceConflict`] (see the module docs).
pub(crate) fn group(graph: &Graph, index: &ScheduleIndex) -> Result<Groups> {
    let order = graph.topo_order();
    let len = index.kernel.len();
    let mut rank = vec![0; len];
    for (i, id) in order.iter().enumerate() {
        rank[id.index()] = i;
    }
    let mut groups = Groups {
        group: vec![None; len],
        members: Vec::new(),
        shared: Vec::new(),
    };
    // Views: a reshape joins its operand's group (operands come first in topological order).
    for &id in &order {
        let node = graph.node(id);
        let group = match node.op.class() {
            OpClass::View => groups.of(graph.operands(id)[0]),
            OpClass::Leaf(_) => Some(groups.fresh()),
            OpClass::ElementWise
            | OpClass::Movement
            | OpClass::Reduction
            | OpClass::Rows { .. }
            | OpClass::Product { .. }
            | OpClass::Whole => index.materialized[id.index()].then(|| groups.fresh()),
        };
        if let Some(g) = group {
            groups.group[id.index()] = Some(g);
            groups.members[g].push(id);
        }
    }
    let mut inplace: Vec<NodeId> = (order.iter().copied())
        .filter(|&id| graph.node(id).op.reads_in_place().is_some())
        .collect();
    inplace.sort_by_key(|&id| index.position(id));
    for dropout in inplace {
        if let Some(g) = check_inplace(graph, &rank, &groups, dropout)? {
            groups.merge(&rank, dropout, g);
        }
    }
    Ok(groups)
}

impl Groups {
    fn fresh(&mut self) -> usize {
        self.members.push(Vec::new());
        self.members.len() - 1
    }

    /// Moves the dropout's group into group `into`, keeping topological order (`rank`, by
    /// node index).
    fn merge(&mut self, rank: &[usize], dropout: NodeId, into: usize) {
        let from = self
            .of(dropout)
            .expect("invariant: a sharing dropout is materialized");
        let moved = std::mem::take(&mut self.members[from]);
        for &id in &moved {
            self.group[id.index()] = Some(into);
        }
        self.members[into].extend(moved);
        self.members[into].sort_by_key(|id| rank[id.index()]);
        self.shared.push(dropout);
    }
}

/// Rule 1 of the module docs for `dropout` (an error), then rule 2: the group whose buffer it
/// may take, if any.
fn check_inplace(
    graph: &Graph,
    rank: &[usize],
    groups: &Groups,
    dropout: NodeId,
) -> Result<Option<usize>> {
    let overwritten = (graph.node(dropout).op.reads_in_place())
        .expect("invariant: only ops that ask to run in place are checked");
    let input = graph.operands(dropout)[overwritten];
    // The buffer the dropout would overwrite: the input's group, or for a value in registers
    // the input and its views alone.
    let readers = match groups.of(input) {
        Some(g) => groups.readers(graph, g),
        None => value_readers(graph, input),
    };
    let chain = |r: &NodeId| *r == dropout || groups.shared.contains(r);
    if let Some(&other) = (readers.iter().filter(|r| !chain(r))).min_by_key(|r| rank[r.index()]) {
        let node = graph.node(dropout);
        return Err(Error::InplaceConflict {
            node: node.name.clone(),
            op: node.op.name(),
            input: graph.node(input).name.clone(),
            reader: graph.node(other).name.clone(),
        });
    }
    let (Some(g), Some(_)) = (groups.of(input), groups.of(dropout)) else {
        return Ok(None);
    };
    let outlives_run = groups.members(g).iter().any(|&id| {
        let leaf = graph.node(id).op.leaf();
        matches!(leaf, Some(Leaf::Parameter | Leaf::Constant))
            || graph.outputs().iter().any(|o| o.node == id)
    });
    Ok((!outlives_run).then_some(g))
}
