//! Which values share one buffer: a reshape is a view of its operand's buffer, and an
//! in-place dropout (`inplace = true`) writes its result over its input's buffer when it may.
//! Values that share a buffer form a *group*; the memory plan gives each group one buffer.
//!
//! No other node reads the buffer an in-place dropout overwrites: the verifier's invariant 9
//! ([`crate::graph::verify`]) guarantees it for every graph that gets here. An in-place
//! dropout `d` of input `h` then takes `h`'s buffer when both values are materialized (a value
//! kept in registers has no buffer to share) and no value in the buffer is a graph output, a
//! parameter or a constant. Those outlive the run (the caller reads outputs afterwards;
//! parameters and constants serve every run), so they are never overwritten: `d` then gets a
//! buffer of its own, exactly as without `inplace`.
//!
//! Overwriting is safe for our loops: every dropout kind reads element `i` of its input and
//! then writes element `i` of its result, never an element it has yet to read. The channel-wise
//! kinds draw all their keep bytes into a scratch buffer before that loop, so the mask does not
//! depend on the input's buffer either.

use super::schedule::Schedule;
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
            for user in graph.users_of(member) {
                if graph[user].op.class() != OpClass::View {
                    readers.push(user);
                }
            }
        }
        readers
    }
}

/// Forms the groups of `graph` under `schedule`: views first, then every in-place dropout in
/// execution order.
pub(crate) fn group(graph: &Graph, index: &ScheduleIndex) -> Groups {
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
        let node = &graph[id];
        let group = match node.op.class() {
            OpClass::View => groups.of(graph.operands_of(id)[0]),
            OpClass::Leaf(_) => Some(groups.fresh()),
            OpClass::ElementWise(_)
            | OpClass::Movement
            | OpClass::Reduction
            | OpClass::Window
            | OpClass::Convolution
            | OpClass::ConvolutionWeightGrad
            | OpClass::ConvolutionInputGrad
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
        .filter(|&id| graph[id].op.reads_in_place().is_some())
        .collect();
    inplace.sort_by_key(|&id| index.position(id));
    for dropout in inplace {
        if let Some(g) = shared_group(graph, &groups, dropout) {
            groups.merge(&rank, dropout, g);
        }
    }
    groups
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

/// The group whose buffer `dropout` takes, if it may (see the module docs).
fn shared_group(graph: &Graph, groups: &Groups, dropout: NodeId) -> Option<usize> {
    let overwritten = (graph[dropout].op.reads_in_place())
        .expect("invariant: only ops that ask to run in place share a buffer");
    let input = graph.operands_of(dropout)[overwritten];
    let (Some(g), Some(_)) = (groups.of(input), groups.of(dropout)) else {
        return None;
    };
    let outlives_run = groups.members(g).iter().any(|&id| {
        let leaf = graph[id].op.leaf();
        matches!(leaf, Some(Leaf::Parameter | Leaf::Constant))
            || graph.outputs().iter().any(|o| o.node == id)
    });
    (!outlives_run).then_some(g)
}
