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
//! 4. A kernel has at most [`MAX_KERNEL_NODES`] nodes.
//! 5. Epilogues: a max pool takes the channel dropout that is its only reader
//!    ([`pool_epilogue`]): the pool's kernel applies the dropout to each plane it writes, so
//!    the pooled values never reach memory (max pooling + Dropout2d is one pass). A
//!    convolution takes a ReLU of it ([`conv_epilogue`]), applied with the bias in the pass
//!    after the product (the convolution's values reach memory only if another kernel reads
//!    them, as a ReLU gradient does). A max pool's gradient takes the ReLU gradient of it
//!    ([`pool_grad_epilogue`]), applied plane by plane while the plane is in cache. Such a
//!    group takes nothing else.
//!
//! Nodes are visited in topological order and each joins its operands' groups greedily, in
//! operand order, so the result is deterministic. Reshapes take part in the cycle check (a
//! path may run through one) but form no kernel: they alias their operand's buffer.

use std::collections::BTreeSet;

use crate::graph::{BinaryOp, Graph, NodeId, Op, PoolKind, UnaryOp};

/// The most nodes one kernel fuses (rule 4): one kernel is one Cranelift function, whose
/// compile time grows faster than its length, so a long chain compiles as a run of kernels
/// of this size; each boundary costs one buffer round trip, nothing against 256 nodes' work.
pub(crate) const MAX_KERNEL_NODES: usize = 256;

/// The groups of `graph`'s computing nodes in an execution order, each one's nodes in
/// topological order. Leaves and reshapes belong to none.
pub(super) fn fuse(graph: &Graph) -> Vec<Vec<NodeId>> {
    let order = graph.topo_order();
    let mut fusion = Fusion::default();
    for &id in &order {
        let op = &graph[id].op;
        if op.is_leaf() {
            continue;
        }
        let mut group = fusion.new_group(graph, id);
        if !op.is_elementwise() {
            fusion.closed[group] = true;
            continue;
        }
        for operand in graph.operands_of(id) {
            if let Some(other) = fusion.fusable(graph, id, operand)
                && other != group
                && fusion.groups[group].len() + fusion.groups[other].len() <= MAX_KERNEL_NODES
                && !fusion.would_cycle(group, other)
            {
                group = fusion.merge(group, other);
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

/// True if `relu_grad` is a ReLU gradient of the max pool gradient `pool_grad` (its first
/// operand, not its second) (rule 5).
pub(crate) fn pool_grad_epilogue(graph: &Graph, pool_grad: NodeId, relu_grad: NodeId) -> bool {
    let max_pool_grad = matches!(&graph[pool_grad].op, Op::PoolGrad(p) if p.kind == PoolKind::Max);
    let is_relu_grad = graph[relu_grad].op == Op::Binary(BinaryOp::ReluGrad);
    max_pool_grad && is_relu_grad && {
        let operands = graph.operands_of(relu_grad);
        operands[0] == pool_grad && operands[1] != pool_grad
    }
}

/// True if `relu` is a ReLU of the convolution `conv` (rule 5).
pub(crate) fn conv_epilogue(graph: &Graph, conv: NodeId, relu: NodeId) -> bool {
    matches!(graph[conv].op, Op::Conv(_)) && graph[relu].op == Op::Unary(UnaryOp::Relu)
}

/// True if the dropout `dropout` is the epilogue of the max pool `pool` (rule 5): its only
/// reader (and no output of the graph), a zeroing channel kind with a random mask of one
/// element per plane of the pool's output (leading dimensions, then ones), not in place,
/// not of Monte Carlo samples.
pub(crate) fn pool_epilogue(graph: &Graph, pool: NodeId, dropout: NodeId) -> bool {
    let (Op::Pool(p), Op::Dropout(d)) = (&graph[pool].op, &graph[dropout].op) else {
        return false;
    };
    let shape = &graph[pool].ty.shape;
    let spatial = p.spatial();
    let per_plane = (d.mask_shape(shape).ok()).is_some_and(|mask| {
        let (leading, rest) = mask.dims().split_at(shape.rank() - spatial);
        leading == &shape.dims()[..shape.rank() - spatial] && rest.iter().all(|&n| n == 1)
    });
    p.kind == PoolKind::Max
        && !d.kind.is_alpha()
        && !d.kind.is_elementwise()
        && d.is_random()
        && !d.inplace
        && !d.sample_steps
        && per_plane
        && graph.users_of(pool) == [dropout]
        && !graph.outputs().iter().any(|o| o.node == pool)
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

/// The grouping in progress. The edges between groups are kept as sets, updated as nodes
/// arrive and groups merge, so a merge costs the smaller group's size and a cycle check the
/// groups it walks, never a scan of a group's members: compile time stays near-linear in the
/// length of a fused chain.
#[derive(Default)]
struct Fusion {
    /// By node index: the group of a visited computing node or reshape.
    group_of: Vec<Option<usize>>,
    /// By group: its nodes (emptied when merged into another).
    groups: Vec<Vec<NodeId>>,
    /// By group: the other groups that read one of its values.
    successors: Vec<BTreeSet<usize>>,
    /// By group: the other groups it reads a value of.
    predecessors: Vec<BTreeSet<usize>>,
    /// By group: it holds a node that is not element-wise, so it takes no element-wise
    /// consumer (a pool's only epilogue is its channel dropout, rule 5).
    closed: Vec<bool>,
}

impl Fusion {
    /// A group of `id` alone, read by nothing yet (users come later in topological order).
    fn new_group(&mut self, graph: &Graph, id: NodeId) -> usize {
        let group = self.groups.len();
        self.groups.push(vec![id]);
        self.successors.push(BTreeSet::new());
        self.predecessors.push(BTreeSet::new());
        self.closed.push(false);
        if self.group_of.len() <= id.index() {
            self.group_of.resize(id.index() + 1, None);
        }
        self.group_of[id.index()] = Some(group);
        for operand in graph.operands_of(id) {
            if let Some(producer) = self.group(operand) {
                self.successors[producer].insert(group);
                self.predecessors[group].insert(producer);
            }
        }
        group
    }

    fn group(&self, id: NodeId) -> Option<usize> {
        self.group_of.get(id.index()).copied().flatten()
    }

    /// The group `operand` is in, if `id` may join it: an element-wise producer of `id`'s
    /// shape in an open group (rule 2), or a max pool `id` is the epilogue of (rule 5).
    fn fusable(&self, graph: &Graph, id: NodeId, operand: NodeId) -> Option<usize> {
        let producer = &graph[operand];
        let same_shape = producer.ty.shape == graph[id].ty.shape;
        let group = self.group(operand)?;
        let elementwise = producer.op.is_elementwise() && !self.closed[group];
        let epilogue = (pool_epilogue(graph, operand, id)
            || conv_epilogue(graph, operand, id)
            || pool_grad_epilogue(graph, operand, id))
            && self.groups[group].len() == 1;
        ((elementwise || epilogue) && same_shape).then_some(group)
    }

    /// True if a path leads from `a` or `b` through another group back into `a` or `b`
    /// (rule 3), so merging them would make a kernel wait for itself.
    fn would_cycle(&self, a: usize, b: usize) -> bool {
        let mut seen = BTreeSet::new();
        let mut pending: Vec<usize> = (self.successors[a].iter())
            .chain(&self.successors[b])
            .copied()
            .filter(|&g| g != a && g != b)
            .collect();
        while let Some(group) = pending.pop() {
            if group == a || group == b {
                return true;
            }
            if seen.insert(group) {
                pending.extend(&self.successors[group]);
            }
        }
        false
    }

    /// Merges groups `a` and `b` into whichever is larger and returns it: every node and
    /// edge of the smaller one moves, so a chain that grows one node at a time costs
    /// linear time in all.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let size =
            |g: usize| self.groups[g].len() + self.successors[g].len() + self.predecessors[g].len();
        let (into, from) = if size(a) >= size(b) { (a, b) } else { (b, a) };
        let nodes = std::mem::take(&mut self.groups[from]);
        for &id in &nodes {
            self.group_of[id.index()] = Some(into);
        }
        self.groups[into].extend(nodes);
        self.closed[into] |= self.closed[from];
        for successor in std::mem::take(&mut self.successors[from]) {
            self.predecessors[successor].remove(&from);
            if successor != into {
                self.predecessors[successor].insert(into);
                self.successors[into].insert(successor);
            }
        }
        for predecessor in std::mem::take(&mut self.predecessors[from]) {
            self.successors[predecessor].remove(&from);
            if predecessor != into {
                self.successors[predecessor].insert(into);
                self.predecessors[into].insert(predecessor);
            }
        }
        into
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
        let successors = &self.successors;
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
