//! Element-wise fusion: which nodes share one loop. [`fuse`] partitions a graph's computing
//! nodes into groups and orders them; [`super::Schedule::fused`] turns the groups into kernels.
//!
//! The rules:
//! 1. Only element-wise nodes ([`crate::graph::Op::is_elementwise`]: unary, binary, dropout)
//!    are grouped; every other computing node is a group of its own.
//! 2. A node joins the group of an operand (producer -> consumer) only if both have the same
//!    output shape: the group's loop shape. Operands from outside a group may broadcast, since
//!    they are read from memory with broadcast strides; a value inside the group may not,
//!    since it exists only at the loop's current element.
//! 3. Kernels stay acyclic: merging is refused if a path would leave the merged group and
//!    come back into it through other groups. `a - amax(a)` needs the reduction of all of
//!    `a` before the subtraction runs, so `a` and the `sub` are two kernels. The check is on
//!    groups, not nodes: a path may enter a group at one member and leave it from another.
//!
//! Nodes are visited in topological order and each joins its operands' groups greedily, in
//! operand order, so the result is deterministic. Reshapes take part in the cycle check (a
//! path may run through one) but form no kernel: they alias their operand's buffer.

use std::collections::BTreeSet;

use crate::graph::{Graph, NodeId};

/// The groups of `graph`'s computing nodes in an execution order, each one's nodes in
/// topological order. Leaves and reshapes belong to none.
pub(super) fn fuse(graph: &Graph) -> Vec<Vec<NodeId>> {
    let order = graph.topo_order();
    let mut fusion = Fusion {
        graph,
        group_of: Vec::new(),
        groups: Vec::new(),
    };
    for &id in &order {
        let op = &graph[id].op;
        if op.is_leaf() {
            continue;
        }
        let group = fusion.new_group(id);
        if !op.is_elementwise() {
            continue;
        }
        for operand in graph.operands_of(id) {
            if let Some(other) = fusion.fusable(id, operand)
                && other != group
                && !fusion.would_cycle(group, other)
            {
                fusion.merge(group, other);
            }
        }
    }
    let position = positions(graph, &order);
    let mut groups = fusion.execution_order(&position);
    groups.retain(|nodes| graph[nodes[0]].op.computes());
    for nodes in &mut groups {
        nodes.sort_by_key(|id| position[id.index()]);
    }
    groups
}

/// Each node's index in `order`, by node index.
fn positions(graph: &Graph, order: &[NodeId]) -> Vec<usize> {
    let size = graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0);
    let mut position = vec![usize::MAX; size];
    for (i, id) in order.iter().enumerate() {
        position[id.index()] = i;
    }
    position
}

/// The grouping in progress.
struct Fusion<'g> {
    graph: &'g Graph,
    /// By node index: the group of a visited computing node or reshape.
    group_of: Vec<Option<usize>>,
    /// By group: its nodes (emptied when merged into another).
    groups: Vec<Vec<NodeId>>,
}

impl Fusion<'_> {
    fn new_group(&mut self, id: NodeId) -> usize {
        let group = self.groups.len();
        self.groups.push(vec![id]);
        if self.group_of.len() <= id.index() {
            self.group_of.resize(id.index() + 1, None);
        }
        self.group_of[id.index()] = Some(group);
        group
    }

    fn group(&self, id: NodeId) -> Option<usize> {
        self.group_of.get(id.index()).copied().flatten()
    }

    /// The group `operand` is in, if `id` may join it: an element-wise producer of `id`'s
    /// shape (rule 2).
    fn fusable(&self, id: NodeId, operand: NodeId) -> Option<usize> {
        let producer = &self.graph[operand];
        let same_shape = producer.ty.shape == self.graph[id].ty.shape;
        (producer.op.is_elementwise() && same_shape)
            .then(|| self.group(operand))
            .flatten()
    }

    /// The groups that read a value of `group`.
    fn successors(&self, group: usize) -> BTreeSet<usize> {
        let users = self.groups[group]
            .iter()
            .flat_map(|&id| self.graph.users_of(id));
        // Unvisited users have no group yet; they come later in topological order, so no
        // path between visited groups runs through them.
        users
            .filter_map(|user| self.group(user))
            .filter(|&g| g != group)
            .collect()
    }

    /// True if a path leads from `a` or `b` through another group back into `a` or `b`
    /// (rule 3), so merging them would make a kernel wait for itself.
    fn would_cycle(&self, a: usize, b: usize) -> bool {
        let mut seen = BTreeSet::new();
        let mut pending: Vec<usize> = self.successors(a).into_iter().collect();
        pending.extend(self.successors(b));
        pending.retain(|&g| g != a && g != b);
        while let Some(group) = pending.pop() {
            if group == a || group == b {
                return true;
            }
            if seen.insert(group) {
                pending.extend(self.successors(group));
            }
        }
        false
    }

    /// Moves `from`'s nodes into `into`.
    fn merge(&mut self, into: usize, from: usize) {
        let nodes = std::mem::take(&mut self.groups[from]);
        for &id in &nodes {
            self.group_of[id.index()] = Some(into);
        }
        self.groups[into].extend(nodes);
    }

    /// The nonempty groups, each after every group it reads from; among the groups ready to
    /// run, the one whose earliest node comes first in topological order goes first.
    fn execution_order(&self, position: &[usize]) -> Vec<Vec<NodeId>> {
        let earliest = |group: usize| {
            let nodes = &self.groups[group];
            nodes.iter().map(|id| position[id.index()]).min()
        };
        let live: Vec<usize> = (0..self.groups.len())
            .filter(|&g| !self.groups[g].is_empty())
            .collect();
        let mut waiting_on = vec![0usize; self.groups.len()];
        let successors: Vec<BTreeSet<usize>> =
            (0..self.groups.len()).map(|g| self.successors(g)).collect();
        for &g in &live {
            for &s in &successors[g] {
                waiting_on[s] += 1;
            }
        }
        let mut ready: BTreeSet<(usize, usize)> = (live.iter())
            .filter(|&&g| waiting_on[g] == 0)
            .map(|&g| (earliest(g).expect("live groups are nonempty"), g))
            .collect();
        let mut ordered = Vec::with_capacity(live.len());
        while let Some((_, group)) = ready.pop_first() {
            ordered.push(self.groups[group].clone());
            for &s in &successors[group] {
                waiting_on[s] -= 1;
                if waiting_on[s] == 0 {
                    ready.insert((earliest(s).expect("live groups are nonempty"), s));
                }
            }
        }
        assert_eq!(
            ordered.len(),
            live.len(),
            "invariant: fusion keeps the kernel graph acyclic"
        );
        ordered
    }
}
