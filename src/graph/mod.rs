//! The graph IR: named op nodes in a petgraph `StableGraph` whose edges carry operand positions.
//!
//! [`Graph`] is the only API passes use; the petgraph graph stays private so the invariants
//! listed in [`verify`] hold by construction: every node has a unique name and a type inferred
//! from its op and operands, operands precede their users (no cycles), and every output names a
//! live node. A `StableGraph` keeps node ids valid when passes delete nodes.

pub mod batch_norm;
mod builder;
pub mod conv;
pub mod dropout;
pub mod embedding;
mod functions;
pub mod infer;
pub(crate) mod inplace;
pub mod layer_norm;
mod mask;
mod mode;
pub mod op;
pub mod pool;
mod rewrite;
pub mod samples;
pub(crate) mod signature;
pub mod verify;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::fmt;
use std::ops::Index;
use std::sync::atomic::{AtomicU64, Ordering};

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::{EdgeRef, NodeIndexable};

pub use crate::types::{DType, Shape, TensorType};
pub use batch_norm::{BatchNorm, Running, Stat};
pub use builder::{Builder, Naming};
pub use conv::Conv;
pub use dropout::{Dropout, DropoutKind, MaskSamples};
pub use embedding::{Embedding, EmbeddingGrad};
pub use functions::{Approximate, BinaryOp, ReduceOp, UnaryOp};
pub use layer_norm::LayerNorm;
pub use mode::{Mode, steps_per_run};
pub use op::{Effects, Elementwise, Leaf, Op, OpClass};
pub use pool::{Pool, PoolKind};

use crate::error::{Error, Result};

/// A node's handle. It names one node of one graph (and of the graph's clones, which hold the
/// same nodes): a handle from another graph, or of a node since removed, is refused by every
/// checked method ([`Error::ForeignNode`]), never taken for whatever node now sits at its
/// place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    index: NodeIndex<u32>,
    /// Unique in the process: the node this handle was made for.
    serial: u64,
}

impl NodeId {
    /// The position in the underlying storage (stable, but with holes after removals, and
    /// reused by later nodes): an index for dense per-node tables.
    pub fn index(self) -> usize {
        self.index.index()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.index())
    }
}

/// The next node serial of the process: every node added anywhere gets its own.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(0);

/// A node name: one or more of `A-Z a-z 0-9 _ .` (printed after `%` in the textual IR).
pub fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// One operation with its result's name and inferred type.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique within the graph; the name the textual IR, errors and dumps use.
    pub name: String,
    /// What the node computes.
    pub op: Op,
    /// The result's type, inferred from the op and the operands' types.
    pub ty: TensorType,
}

/// A node as the graph stores it: with the serial its handles carry.
#[derive(Clone, Debug)]
struct Entry {
    serial: u64,
    node: Node,
}

/// A value the graph returns, under a name of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The output's name (may equal the node's).
    pub name: String,
    /// The node whose value is returned.
    pub node: NodeId,
}

/// A dataflow graph of ops: the unit that is verified, transformed, interpreted and compiled.
///
/// Building and reading it through its methods is checked: a malformed or taken name, operands
/// that do not fit an op, a type too large for memory, a handle of another graph or of a
/// removed node are typed errors. `graph[id]` is the unchecked read, for handles the graph
/// itself gave out (it panics on any other, as indexing a slice out of range does).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    name: String,
    nodes: StableGraph<Entry, usize>,
    by_name: HashMap<String, NodeId>,
    outputs: Vec<Output>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Ok` if `id` is a live node of this graph; [`Error::ForeignNode`] otherwise.
    fn check(&self, id: NodeId) -> Result<()> {
        match self.nodes.node_weight(id.index) {
            Some(entry) if entry.serial == id.serial => Ok(()),
            _ => Err(Error::ForeignNode {
                id: id.to_string(),
                graph: self.name.clone(),
            }),
        }
    }

    /// The handle of the node stored at `index`.
    fn id_at(&self, index: NodeIndex<u32>) -> NodeId {
        NodeId {
            index,
            serial: self.nodes[index].serial,
        }
    }

    /// The type a node called `name` computing `op` of `operands` would have, or the typed
    /// error naming it (operands of another graph included); adds nothing.
    pub fn infer(&self, name: &str, op: &Op, operands: &[NodeId]) -> Result<TensorType> {
        for &operand in operands {
            self.check(operand)?;
        }
        let operand_types: Vec<&TensorType> = operands.iter().map(|&o| &self[o].ty).collect();
        infer::infer_type(op, &operand_types).map_err(|detail| Error::Type {
            node: name.to_string(),
            op: op.name(),
            detail,
        })
    }

    /// Adds a node computing `op` of `operands` (in position order) and infers its type.
    /// Fails on a malformed or taken name (see [`is_node_name`]), operands of another graph
    /// ([`Error::ForeignNode`]) or operands that do not fit the op, naming the node.
    pub fn add(&mut self, name: impl Into<String>, op: Op, operands: &[NodeId]) -> Result<NodeId> {
        let name = name.into();
        if !is_node_name(&name) {
            return Err(Error::InvalidName { name, what: "node" });
        }
        if self.by_name.contains_key(&name) || self.outputs.iter().any(|o| o.name == name) {
            return Err(Error::DuplicateName { name, what: "node" });
        }
        let ty = self.infer(&name, &op, operands)?;
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let node = Node {
            name: name.clone(),
            op,
            ty,
        };
        let index = self.nodes.add_node(Entry { serial, node });
        for (position, &operand) in operands.iter().enumerate() {
            self.nodes.add_edge(operand.index, index, position);
        }
        let id = NodeId { index, serial };
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// Marks `node` as a graph output called `name`. Outputs and nodes share one namespace
    /// (files, dumps and bindings are named after them): an output may take its own node's
    /// name, not another node's. Fails on a malformed or taken name, or a node of another
    /// graph.
    pub fn add_output(&mut self, name: impl Into<String>, node: NodeId) -> Result<()> {
        let name = name.into();
        if !is_node_name(&name) {
            return Err(Error::InvalidName {
                name,
                what: "output",
            });
        }
        self.check(node)?;
        let other_node = self.find(&name).is_some_and(|named| named != node);
        if other_node || self.outputs.iter().any(|o| o.name == name) {
            return Err(Error::DuplicateName {
                name,
                what: "output",
            });
        }
        self.outputs.push(Output { name, node });
        Ok(())
    }

    /// The node behind a handle; [`Error::ForeignNode`] for a handle of another graph or of a
    /// removed node.
    pub fn node(&self, id: NodeId) -> Result<&Node> {
        self.check(id)?;
        Ok(&self[id])
    }

    /// The node called `name`.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// Like [`Graph::find`], but an error naming the missing node.
    pub fn lookup(&self, name: &str) -> Result<NodeId> {
        self.find(name).ok_or_else(|| Error::UnknownNode {
            name: name.to_string(),
        })
    }

    /// The node's operands in position order; [`Error::ForeignNode`] for a handle of another
    /// graph or of a removed node.
    pub fn operands(&self, id: NodeId) -> Result<Vec<NodeId>> {
        self.check(id)?;
        Ok(self.operands_of(id))
    }

    /// The nodes that use `id` as an operand, each once, in id order; [`Error::ForeignNode`]
    /// for a handle of another graph or of a removed node.
    pub fn users(&self, id: NodeId) -> Result<Vec<NodeId>> {
        self.check(id)?;
        Ok(self.users_of(id))
    }

    /// [`Graph::operands`] of a node of this graph, unchecked: for the crate's own passes,
    /// whose handles come from the graph itself.
    pub(crate) fn operands_of(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(usize, NodeIndex<u32>)> = self
            .nodes
            .edges_directed(id.index, Direction::Incoming)
            .map(|e| (*e.weight(), e.source()))
            .collect();
        edges.sort();
        edges
            .into_iter()
            .map(|(_, node)| self.id_at(node))
            .collect()
    }

    /// [`Graph::users`] of a node of this graph, unchecked (see [`Graph::operands_of`]).
    pub(crate) fn users_of(&self, id: NodeId) -> Vec<NodeId> {
        let users: BTreeSet<NodeId> = (self.nodes)
            .neighbors_directed(id.index, Direction::Outgoing)
            .map(|index| self.id_at(index))
            .collect();
        users.into_iter().collect()
    }

    /// The graph's outputs in declaration order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The multiply-adds of the graph's matrix products (`matmul`, `linear`) in one run: the
    /// work GEMM-bound figures are stated in (two flops each).
    pub fn multiply_adds(&self) -> u64 {
        let mut total: u64 = 0;
        for id in self.node_ids() {
            let node = &self[id];
            let depth = match &node.op {
                Op::MatMul { transpose_a, .. } => {
                    let a = self.operands_of(id)[0];
                    let dims = self[a].ty.shape.dims();
                    dims[dims.len() - if *transpose_a { 2 } else { 1 }]
                }
                Op::Linear { .. } => self[self.operands_of(id)[1]].ty.shape.dims()[1],
                _ => continue,
            };
            let product = (node.ty.shape.numel() as u64).saturating_mul(depth as u64);
            total = total.saturating_add(product);
        }
        total
    }

    /// The number of live nodes.
    pub fn len(&self) -> usize {
        self.nodes.node_count()
    }

    /// True if the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live node id in storage order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.node_indices().map(|index| self.id_at(index))
    }

    /// Every node in a deterministic topological order: operands first, ties broken by id, so
    /// a graph built in order prints in the order it was written.
    pub fn topo_order(&self) -> Vec<NodeId> {
        // Dense tables by storage index: this runs in every pass and plan step, so it has to
        // stay linear-time on graphs of 100,000 nodes.
        let slots = self.nodes.node_bound();
        let mut pending = vec![0usize; slots];
        let mut ready: BinaryHeap<Reverse<NodeIndex<u32>>> = BinaryHeap::new();
        for index in self.nodes.node_indices() {
            let operands = self
                .nodes
                .edges_directed(index, Direction::Incoming)
                .count();
            pending[index.index()] = operands;
            if operands == 0 {
                ready.push(Reverse(index));
            }
        }
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(index)) = ready.pop() {
            order.push(self.id_at(index));
            for edge in self.nodes.edges_directed(index, Direction::Outgoing) {
                let user = edge.target();
                pending[user.index()] -= 1;
                if pending[user.index()] == 0 {
                    ready.push(Reverse(user));
                }
            }
        }
        assert_eq!(order.len(), self.len(), "invariant: the graph is acyclic");
        order
    }

    /// The input nodes in topological order.
    pub fn inputs(&self) -> Vec<NodeId> {
        self.leaves(Leaf::Input)
    }

    /// The parameter nodes in topological order.
    pub fn parameters(&self) -> Vec<NodeId> {
        self.leaves(Leaf::Parameter)
    }

    fn leaves(&self, leaf: Leaf) -> Vec<NodeId> {
        (self.topo_order().into_iter())
            .filter(|&id| self[id].op.leaf() == Some(leaf))
            .collect()
    }

    /// Makes every user of `old` (and every output naming it) use `new` instead.
    /// `new` must have `old`'s type; `old` is left without users. (Passes only: a broken
    /// condition is a compiler bug.)
    pub(crate) fn replace_all_uses(&mut self, old: NodeId, new: NodeId) {
        assert_eq!(
            self[old].ty, self[new].ty,
            "invariant: a replacement has the replaced node's type"
        );
        let uses: Vec<_> = self
            .nodes
            .edges_directed(old.index, Direction::Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (edge, user, position) in uses {
            self.nodes.remove_edge(edge);
            self.nodes.add_edge(new.index, user, position);
        }
        for output in &mut self.outputs {
            if output.node == old {
                output.node = new;
            }
        }
    }

    /// Removes a node that nothing uses any more and returns it. (Passes only: a node still
    /// in use is a compiler bug.)
    pub(crate) fn remove(&mut self, id: NodeId) -> Node {
        assert!(
            self.users_of(id).is_empty(),
            "invariant: a removed node has no users"
        );
        assert!(
            self.outputs.iter().all(|o| o.node != id),
            "invariant: a removed node is not an output"
        );
        let entry = (self.nodes.remove_node(id.index)).expect("invariant: removed node is live");
        self.by_name.remove(&entry.node.name);
        entry.node
    }

    /// A copy in which every node is also an output named after itself (after the existing
    /// outputs, which keep their order): for `run --save-all` and differential tests, which
    /// compare every intermediate value.
    pub fn with_every_node_as_output(&self) -> Graph {
        let mut graph = self.clone();
        for id in self.topo_order() {
            let name = &self[id].name;
            if graph.outputs.iter().all(|o| &o.name != name) {
                graph
                    .add_output(name.clone(), id)
                    .expect("invariant: a node's own name is free as an output name");
            }
        }
        graph
    }

    /// Mutable access to a node's op, to rewrite its attributes; [`Error::ForeignNode`] for a
    /// handle of another graph or of a removed node. The node's stored type stays: the
    /// verifier re-infers every type and reports a difference.
    pub fn op_mut(&mut self, id: NodeId) -> Result<&mut Op> {
        self.check(id)?;
        Ok(&mut self.nodes[id.index].node.op)
    }
}

/// The unchecked read: the node behind a handle this graph gave out. Panics, naming the
/// invariant, on a handle of another graph or of a removed node; [`Graph::node`] is the
/// checked read.
impl Index<NodeId> for Graph {
    type Output = Node;

    fn index(&self, id: NodeId) -> &Node {
        match self.nodes.node_weight(id.index) {
            Some(entry) if entry.serial == id.serial => &entry.node,
            _ => panic!("invariant: {id} is a live node of graph {}", self.name),
        }
    }
}

/// Structural equality: the same name, the same nodes by name (op, type, and operands by name
/// in position order) and the same outputs in order. Node ids and insertion order do not
/// matter, so a graph equals its own printed-and-parsed copy.
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        let operand_names = |graph: &Graph, id: NodeId| -> Vec<String> {
            let operands = graph.operands_of(id);
            operands
                .into_iter()
                .map(|o| graph[o].name.clone())
                .collect()
        };
        let same_nodes = self.node_ids().all(|id| {
            let node = &self[id];
            other.find(&node.name).is_some_and(|twin| {
                &other[twin] == node && operand_names(self, id) == operand_names(other, twin)
            })
        });
        let same_outputs = self.outputs.len() == other.outputs.len()
            && self
                .outputs
                .iter()
                .zip(&other.outputs)
                .all(|(a, b)| a.name == b.name && self[a.node].name == other[b.node].name);
        self.name == other.name && self.len() == other.len() && same_nodes && same_outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_print_and_stay_unique() {
        let mut g = Graph::new("names");
        let input = || Op::Input(TensorType::f32([2]));
        let err = g.add("fc 1", input(), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node name \"fc 1\" has to consist of letters, digits, '_' and '.'"
        );
        let x = g.add("x", input(), &[]).unwrap();
        let y = g.add("y", input(), &[]).unwrap();
        let err = g.add_output("y!", x).unwrap_err();
        assert_eq!(
            err.to_string(),
            "output name \"y!\" has to consist of letters, digits, '_' and '.'"
        );
        let err = g.add_output("y", x).unwrap_err();
        assert_eq!(err.to_string(), "the output name y is already taken");
        g.add_output("x", x).unwrap();
        g.add_output("out", y).unwrap();
        let err = g.add("out", input(), &[]).unwrap_err();
        assert_eq!(err.to_string(), "the node name out is already taken");
    }

    #[test]
    fn handles_of_another_graph_or_of_removed_nodes_are_refused() {
        let input = || Op::Input(TensorType::f32([2]));
        let mut a = Graph::new("a");
        let ax = a.add("x", input(), &[]).unwrap();
        let mut b = Graph::new("b");
        let bx = b.add("x", input(), &[]).unwrap();
        // The same storage index in both graphs: before, `ax` wired b's node silently.
        assert_eq!(ax.index(), bx.index());
        let foreign =
            "node #0 is not a node of graph b: it belongs to another graph or was removed";
        let relu = Op::Unary(UnaryOp::Relu);
        assert_eq!(
            b.add("y", relu.clone(), &[ax]).unwrap_err().to_string(),
            foreign
        );
        assert_eq!(b.add_output("y", ax).unwrap_err().to_string(), foreign);
        assert_eq!(b.node(ax).unwrap_err().to_string(), foreign);
        assert_eq!(b.operands(ax).unwrap_err().to_string(), foreign);
        assert_eq!(b.users(ax).unwrap_err().to_string(), foreign);
        assert_eq!(b.op_mut(ax).unwrap_err().to_string(), foreign);
        // A removed node's handle stays refused after its slot is reused.
        let by = b.add("y", relu.clone(), &[bx]).unwrap();
        b.remove(by);
        let bz = b.add("z", relu, &[bx]).unwrap();
        assert_eq!(by.index(), bz.index(), "the slot is reused");
        let err = b.node(by).unwrap_err();
        assert!(matches!(err, Error::ForeignNode { .. }), "{err:?}");
        assert_eq!(b.node(bz).unwrap().name, "z");
        // A clone holds the same nodes, so their handles serve it too.
        let copy = b.clone();
        assert_eq!(copy.node(bz).unwrap().name, "z");
        assert_eq!(copy.operands(bz).unwrap(), vec![bx]);
    }
}
