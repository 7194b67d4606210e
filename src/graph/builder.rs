//! [`Builder`]: the one way the library adds nodes to a graph. Autodiff, the optimizers, the
//! training step, mask nodes, `nn` tracing and eager calls all build through it.
//!
//! A builder wraps `&mut Graph` and adds two things to [`Graph::add`]:
//! - **A naming policy** ([`Naming`]), the same for every node and output it adds:
//!   - [`Naming::Exact`]: the name as given; a taken name is an error (the training step, the
//!     optimizers, eager graphs);
//!   - [`Naming::NUMBERED`]: the name as given, else `name_1`, `name_2`, ... (autodiff);
//!   - [`Naming::CALLS`]: the name as given, else `name.call2`, `name.call3`, ... (tracing: a
//!     module's later calls).
//!
//!   A name is taken when a node or an output has it (they share one namespace).
//! - **Typed helpers** (`b.add(name, x, y)`, `b.matmul(name, a, b)`, ...) for the ops the
//!   library builds, so a caller writes `b.mul(name, a, b)` rather than
//!   `Op::Binary(BinaryOp::Mul)` and an operand slice; [`Builder::node`] adds any other op.
//!
//! The checks stay where they were, in [`Graph::add`]: the name has to be well formed and
//! free, and the operands have to fit the op; every helper returns that typed error, naming
//! the node ([`crate::Error::Type`], [`crate::Error::DuplicateName`], ...).
//! [`Builder::check`] asks the type question without adding a node.
//!
//! ```
//! # fn main() -> dropjit::Result<()> {
//! use dropjit::graph::{Builder, Naming};
//! use dropjit::{Graph, Tensor, TensorType};
//! let mut graph = Graph::new("affine");
//! let mut b = Builder::new(&mut graph, Naming::Exact);
//! let x = b.input("x", TensorType::f32([4, 3]))?;
//! let w = b.parameter("w", TensorType::f32([3, 2]))?;
//! let xw = b.matmul("xw", x, w)?;
//! let two = b.constant("two", Tensor::scalar(2.0))?;
//! let y = b.mul("y", xw, two)?;
//! b.output("y", y)?;
//! assert_eq!(b.graph().node(y)?.ty.shape.dims(), &[4, 2]);
//! // Operands that do not fit are the graph's type error, naming the node.
//! let err = b.matmul("bad", w, w).unwrap_err();
//! let expected = "matmul bad: cannot multiply [3, 2] by [3, 2]: inner dimensions 2 and 3 differ";
//! assert_eq!(err.to_string(), expected);
//!
//! // Numbered names: a taken name gets the first free `_k`.
//! let mut b = Builder::new(&mut graph, Naming::NUMBERED);
//! let again = b.mul("y", xw, two)?;
//! assert_eq!(b.graph()[again].name, "y_1");
//! # Ok(()) }
//! ```

use super::{BinaryOp, Graph, NodeId, Op, ReduceOp, Shape, TensorType, UnaryOp};
use crate::error::Result;
use crate::tensor::Tensor;

/// How a [`Builder`] names what it adds when the name asked for is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// The name as given; a taken name is [`crate::Error::DuplicateName`].
    Exact,
    /// The name as given if free, else `{name}{separator}{k}` for the first free `k` counting
    /// from `first`.
    Suffixed {
        /// Between the name and the number: `_`, `.call`.
        separator: &'static str,
        /// The first number tried.
        first: usize,
    },
}

impl Naming {
    /// `name`, `name_1`, `name_2`, ...: autodiff's names.
    pub const NUMBERED: Naming = Naming::Suffixed {
        separator: "_",
        first: 1,
    };

    /// `name`, `name.call2`, `name.call3`, ...: a traced module's first, second, third call.
    pub const CALLS: Naming = Naming::Suffixed {
        separator: ".call",
        first: 2,
    };
}

/// Adds nodes and outputs to a graph under one [`Naming`] policy (see the module docs).
pub struct Builder<'g> {
    graph: &'g mut Graph,
    naming: Naming,
}

impl<'g> Builder<'g> {
    /// A builder adding to `graph`, naming by `naming`.
    pub fn new(graph: &'g mut Graph, naming: Naming) -> Builder<'g> {
        Builder { graph, naming }
    }

    /// The graph built so far.
    pub fn graph(&self) -> &Graph {
        self.graph
    }

    /// The shape of `id`'s value, a node the builder added or was given by its own graph (an
    /// invariant of the library's builders, which read shapes of nodes they hold).
    pub(crate) fn shape(&self, id: NodeId) -> Shape {
        self.graph[id].ty.shape.clone()
    }

    /// The name the policy gives to something asked to be called `name`.
    fn name(&self, name: &str) -> String {
        let Naming::Suffixed { separator, first } = self.naming else {
            return name.to_string();
        };
        let taken = |candidate: &str| {
            self.graph.find(candidate).is_some()
                || self.graph.outputs().iter().any(|o| o.name == candidate)
        };
        let numbered = (first..).map(|k| format!("{name}{separator}{k}"));
        std::iter::once(name.to_string())
            .chain(numbered)
            .find(|candidate| !taken(candidate))
            .expect("invariant: some number is free")
    }

    /// Adds a node computing `op` of `operands` (in position order) under a name given by the
    /// policy, and infers its type. Fails like [`Graph::add`], naming the node.
    pub fn node(&mut self, name: &str, op: Op, operands: &[NodeId]) -> Result<NodeId> {
        let name = self.name(name);
        self.graph.add(name, op, operands)
    }

    /// The type a node computing `op` of `operands` would have, or the type error
    /// [`Builder::node`] would give, naming `name`. Adds nothing and checks no name (for a
    /// call that keeps its operand, such as an eval-mode dropout).
    pub fn check(&self, name: &str, op: &Op, operands: &[NodeId]) -> Result<TensorType> {
        self.graph.infer(name, op, operands)
    }

    /// Makes `node` a graph output under a name given by the policy.
    pub fn output(&mut self, name: &str, node: NodeId) -> Result<()> {
        let name = self.name(name);
        self.graph.add_output(name, node)
    }

    /// An input of type `ty`.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Result<NodeId> {
        self.node(name, Op::Input(ty), &[])
    }

    /// A parameter of type `ty`.
    pub fn parameter(&mut self, name: &str, ty: TensorType) -> Result<NodeId> {
        self.node(name, Op::Parameter(ty), &[])
    }

    /// A constant holding `value`.
    pub fn constant(&mut self, name: &str, value: Tensor) -> Result<NodeId> {
        self.node(name, Op::Constant(value), &[])
    }

    /// `op(x)` element-wise.
    pub fn unary(&mut self, name: &str, op: UnaryOp, x: NodeId) -> Result<NodeId> {
        self.node(name, Op::Unary(op), &[x])
    }

    /// `-x`.
    pub fn neg(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.unary(name, UnaryOp::Neg, x)
    }

    /// `sqrt(x)`.
    pub fn sqrt(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.unary(name, UnaryOp::Sqrt, x)
    }

    /// `op(a, b)` element-wise, broadcasting.
    pub fn binary(&mut self, name: &str, op: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.node(name, Op::Binary(op), &[a, b])
    }

    /// `a + b`.
    pub fn add(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(name, BinaryOp::Add, a, b)
    }

    /// `a - b`.
    pub fn sub(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(name, BinaryOp::Sub, a, b)
    }

    /// `a * b`.
    pub fn mul(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(name, BinaryOp::Mul, a, b)
    }

    /// `a / b`.
    pub fn div(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(name, BinaryOp::Div, a, b)
    }

    /// `maximum(a, b)`.
    pub fn maximum(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(name, BinaryOp::Max, a, b)
    }

    /// The matrix product `a @ b` (batched, broadcasting batch dimensions).
    pub fn matmul(&mut self, name: &str, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.node(name, Op::MATMUL, &[a, b])
    }

    /// The matrix product with either operand's last two dimensions swapped first
    /// (`transposed = (a, b)`), read in place.
    pub fn matmul_transposed(
        &mut self,
        name: &str,
        (a, b): (NodeId, NodeId),
        (transpose_a, transpose_b): (bool, bool),
    ) -> Result<NodeId> {
        let op = Op::MatMul {
            transpose_a,
            transpose_b,
        };
        self.node(name, op, &[a, b])
    }

    /// `x` with its dimensions permuted: result dimension `i` is `x`'s dimension `perm[i]`.
    pub fn transpose(&mut self, name: &str, x: NodeId, perm: Vec<usize>) -> Result<NodeId> {
        self.node(name, Op::Transpose { perm }, &[x])
    }

    /// `x` viewed in `shape` (the same element count).
    pub fn reshape(&mut self, name: &str, x: NodeId, shape: &Shape) -> Result<NodeId> {
        let shape = shape.dims().iter().map(|&d| d as i64).collect();
        self.node(name, Op::Reshape { shape }, &[x])
    }

    /// `x` broadcast to `shape`.
    pub fn expand(&mut self, name: &str, x: NodeId, shape: &Shape) -> Result<NodeId> {
        let shape = shape.dims().to_vec();
        self.node(name, Op::Expand { shape }, &[x])
    }

    /// `x` summed over `axes` (every axis if empty), keeping them as 1 if `keepdim`.
    pub fn sum(&mut self, name: &str, x: NodeId, axes: Vec<i64>, keepdim: bool) -> Result<NodeId> {
        self.reduce(name, ReduceOp::Sum, x, axes, keepdim)
    }

    /// The mean of `x` over `axes` (every axis if empty), keeping them as 1 if `keepdim`.
    pub fn mean(&mut self, name: &str, x: NodeId, axes: Vec<i64>, keepdim: bool) -> Result<NodeId> {
        self.reduce(name, ReduceOp::Mean, x, axes, keepdim)
    }

    fn reduce(
        &mut self,
        name: &str,
        op: ReduceOp,
        x: NodeId,
        axes: Vec<i64>,
        keepdim: bool,
    ) -> Result<NodeId> {
        self.node(name, Op::Reduce { op, axes, keepdim }, &[x])
    }

    /// Removes `id`, which nothing uses, again (for a group of nodes added all or none).
    pub(super) fn remove(&mut self, id: NodeId) {
        self.graph.remove(id);
    }
}
