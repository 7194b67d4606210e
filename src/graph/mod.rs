//! The graph IR: named op nodes in a petgraph `StableGraph` whose edges carry operand positions.
//!
//! [`Graph`] is the only API passes use; the petgraph graph stays private so the invariants
//! listed in [`verify`] hold by construction: every node has a unique name and a type inferred
//! from its op and operands, operands precede their users (no cycles), and every output names a
//! live node. A `StableGraph` keeps node ids valid when passes delete nodes.

mod builder;
pub mod dropout;
mod functions;
pub mod infer;
mod inplace;
mod mask;
mod mode;
pub mod op;
mod rewrite;
pub mod verify;

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::EdgeRef;

pub use crate::types::{DType, Shape, TensorType};
pub use builder::{Builder, Naming};
pub use dropout::{Dropout, DropoutKind};
pub use functions::{BinaryOp, ReduceOp, UnaryOp};
pub use mode::Mode;
pub use op::{Effects, Elementwise, Leaf, Op, OpClass};

use crate::error::{Error, Result};

/// A node's handle; stays valid until that node is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(NodeIndex<u32>);

impl NodeId {
    /// The position in the underlying storage (stable, but with holes after removals).
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.index())
    }
}

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

/// A value the graph returns, under a name of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The output's name (may equal the node's).
    pub name: String,
    /// The node whose value is returned.
    pub node: NodeId,
}

/// A dataflow graph of ops: the unit that is verified, transformed, interpreted and compiled.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    name: String,
    nodes: StableGraph<Node, usize>,
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

    /// Adds a node computing `op` of `operands` (in position order) and infers its type.
    /// Fails on a malformed or taken name (see [`is_node_name`]) or operands that do not fit the
    /// op, naming the node.
    pub fn add(&mut self, name: impl Into<String>, op: Op, operands: &[NodeId]) -> Result<NodeId> {
        let name = name.into();
        if !is_node_name(&name) {
            return Err(Error::InvalidName { name, what: "node" });
        }
        if self.by_name.contains_key(&name) || self.outputs.iter().any(|o| o.name == name) {
            return Err(Error::DuplicateName { name, what: "node" });
        }
        for &operand in operands {
            assert!(
                self.nodes.contains_node(operand.0),
                "invariant: operand {operand} of {name} is a live node"
            );
        }
        let operand_types: Vec<&TensorType> = operands.iter().map(|&o| &self.node(o).ty).collect();
        let ty = infer::infer_type(&op, &operand_types).map_err(|detail| Error::Type {
            node: name.clone(),
            op: op.name(),
            detail,
        })?;
        let id = NodeId(self.nodes.add_node(Node {
            name: name.clone(),
            op,
            ty,
        }));
        for (position, &operand) in operands.iter().enumerate() {
            self.nodes.add_edge(operand.0, id.0, position);
        }
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// Marks `node` as a graph output called `name`. Outputs and nodes share one namespace
    /// (files, dumps and bindings are named after them): an output may take its own node's
    /// name, not another node's.
    pub fn add_output(&mut self, name: impl Into<String>, node: NodeId) -> Result<()> {
        let name = name.into();
        if !is_node_name(&name) {
            return Err(Error::InvalidName {
                name,
                what: "output",
            });
        }
        let other_node = self.find(&name).is_some_and(|named| named != node);
        if other_node || self.outputs.iter().any(|o| o.name == name) {
            return Err(Error::DuplicateName {
                name,
                what: "output",
            });
        }
        assert!(
            self.nodes.contains_node(node.0),
            "invariant: output {name} names a live node"
        );
        self.outputs.push(Output { name, node });
        Ok(())
    }

    /// The node behind a handle. Panics on a removed node (a compiler bug).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
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

    /// The node's operands in position order.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(usize, NodeId)> = self
            .nodes
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| (*e.weight(), NodeId(e.source())))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, node)| node).collect()
    }

    /// The nodes that use `id` as an operand, each once, in id order.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let users: BTreeSet<NodeId> = self
            .nodes
            .neighbors_directed(id.0, Direction::Outgoing)
            .map(NodeId)
            .collect();
        users.into_iter().collect()
    }

    /// The graph's outputs in declaration order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
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
        self.nodes.node_indices().map(NodeId)
    }

    /// Every node in a deterministic topological order: operands first, ties broken by id, so
    /// a graph built in order prints in the order it was written.
    pub fn topo_order(&self) -> Vec<NodeId> {
        let mut pending: HashMap<NodeId, usize> = self
            .node_ids()
            .map(|id| (id, self.operands(id).len()))
            .collect();
        let mut ready: BTreeSet<NodeId> = pending
            .iter()
            .filter(|&(_, &n)| n == 0)
            .map(|(&id, _)| id)
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(id) = ready.pop_first() {
            order.push(id);
            for edge in self.nodes.edges_directed(id.0, Direction::Outgoing) {
                let user = NodeId(edge.target());
                let count = pending
                    .get_mut(&user)
                    .expect("invariant: users are live nodes");
                *count -= 1;
                if *count == 0 {
                    ready.insert(user);
                }
            }
        }
        assert_eq!(order.len(), self.len(), "invariant: the graph is acyclic");
        order
    }

    /// The input nodes in topological order.
    pub fn inputs(&self) -> Vec<NodeId> {
        self.leaves_where(|op| matches!(op, Op::Input(_)))
    }

    /// The parameter nodes in topological order.
    pub fn parameters(&self) -> Vec<NodeId> {
        self.leaves_where(|op| matches!(op, Op::Parameter(_)))
    }

    fn leaves_where(&self, keep: impl Fn(&Op) -> bool) -> Vec<NodeId> {
        self.topo_order()
            .into_iter()
            .filter(|&id| keep(&self.node(id).op))
            .collect()
    }

    /// Makes every user of `old` (and every output naming it) use `new` instead.
    /// `new` must have `old`'s type; `old` is left without users.
    pub fn replace_all_uses(&mut self, old: NodeId, new: NodeId) {
        assert_eq!(
            self.node(old).ty,
            self.node(new).ty,
            "invariant: a replacement has the replaced node's type"
        );
        let uses: Vec<_> = self
            .nodes
            .edges_directed(old.0, Direction::Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (edge, user, position) in uses {
            self.nodes.remove_edge(edge);
            self.nodes.add_edge(new.0, user, position);
        }
        for output in &mut self.outputs {
            if output.node == old {
                output.node = new;
            }
        }
    }

    /// Removes a node that nothing uses any more and returns it.
    pub fn remove(&mut self, id: NodeId) -> Node {
        assert!(
            self.users(id).is_empty(),
            "invariant: a removed node has no users"
        );
        assert!(
            self.outputs.iter().all(|o| o.node != id),
            "invariant: a removed node is not an output"
        );
        let node = self
            .nodes
            .remove_node(id.0)
            .expect("invariant: removed node is live");
        self.by_name.remove(&node.name);
        node
    }

    /// A copy in which every node is also an output named after itself (after the existing
    /// outputs, which keep their order): for `run --save-all` and differential tests, which
    /// compare every intermediate value.
    pub fn with_every_node_as_output(&self) -> Graph {
        let mut graph = self.clone();
        for id in self.topo_order() {
            let name = &self.node(id).name;
            if graph.outputs.iter().all(|o| &o.name != name) {
                graph
                    .add_output(name.clone(), id)
                    .expect("invariant: a node's own name is free as an output name");
            }
        }
        graph
    }

    /// Mutable access to a node's op, for passes that rewrite attributes. The op's type must
    /// not change; the verifier re-infers every type and reports a difference.
    pub fn op_mut(&mut self, id: NodeId) -> &mut Op {
        &mut self.nodes[id.0].op
    }
}

/// Structural equality: the same name, the same nodes by name (op, type, and operands by name
/// in position order) and the same outputs in order. Node ids and insertion order do not
/// matter, so a graph equals its own printed-and-parsed copy.
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        let operand_names = |graph: &Graph, id: NodeId| -> Vec<String> {
            let operands = graph.operands(id);
            operands
                .into_iter()
                .map(|o| graph.node(o).name.clone())
                .collect()
        };
        let same_nodes = self.node_ids().all(|id| {
            let node = self.node(id);
            other.find(&node.name).is_some_and(|twin| {
                other.node(twin) == node && operand_names(self, id) == operand_names(other, twin)
            })
        });
        let same_outputs = self.outputs.len() == other.outputs.len()
            && self.outputs.iter().zip(&other.outputs).all(|(a, b)| {
                a.name == b.name && self.node(a.node).name == other.node(b.node).name
            });
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
}
