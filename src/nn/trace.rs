//! Tracing: running a model's `forward` on a [`Var`] that stands for the graph's input, so
//! every module call adds nodes to one [`Graph`] instead of computing.
//!
//! Names and streams are deterministic:
//! - The input node is `x`; the graph's first output is `y`. A train-mode batch norm adds
//!   the new values of its running statistics as outputs `bn1.running_mean.next`,
//!   `bn1.running_var.next` after it ([`crate::nn::Traced`] writes them back).
//! - A module call's node is named after the module's path among the children
//!   ([`crate::nn::Module::children`]): `fc1`, `dropout1`, `0` inside a `Sequential`; a later
//!   call of the same module gets `fc1.call2`, `fc1.call3`, ... ([`Naming::CALLS`]).
//!   Parameters are `fc1.weight` and `fc1.bias`, shared by every call. Functional ops are
//!   named after their operand: `fc1.relu`.
//! - Every dropout call (each call site, so a module used twice draws two masks) takes the
//!   next stream, 0, 1, 2, ... in call order, whether or not its module is in train mode.
//! - A Monte Carlo trace ([`trace_mc`]) makes every dropout call a drawing node, whatever
//!   its module's mode, and leaves every other module in its own mode (MC dropout: dropout
//!   sampling at inference, the rest of the model in eval mode).
//!
//! Modules are recognised by address and type name, collected from `children()` before
//! `forward` runs, so a model never has to pass names around.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::module::Module;
use super::var::{Repr, Var};
use crate::error::{Error, Result};
use crate::graph::{Builder, Graph, Naming, NodeId, Op, TensorType, is_node_name};
use crate::tensor::Tensor;

/// The graph being built and what tracing needs to name its nodes.
pub(crate) struct TraceState {
    graph: Graph,
    /// (module address, type name) -> dotted path among the children.
    paths: HashMap<(usize, &'static str), String>,
    next_stream: u32,
    /// Every dropout call draws (a Monte Carlo trace).
    dropout_always_draws: bool,
    /// The store entries this trace updates (a train-mode batch norm's running statistics),
    /// each with the node of its latest value, in first-update order: the graph's outputs
    /// `<entry>.next` after `y`.
    updates: Vec<(String, NodeId)>,
}

/// One node of a trace: what a traced [`Var`] holds.
pub(crate) struct TracedNode {
    trace: Rc<RefCell<TraceState>>,
    node: NodeId,
}

impl TracedNode {
    /// The node's name.
    pub(crate) fn name(&self) -> String {
        self.trace.borrow().graph[self.node].name.clone()
    }

    /// The node's position in its trace (later nodes have larger ones).
    pub(crate) fn position(&self) -> usize {
        self.node.index()
    }

    /// The node's type.
    pub(crate) fn ty(&self) -> TensorType {
        self.trace.borrow().graph[self.node].ty.clone()
    }

    /// The path of `module` among the traced model's children, if it is listed there.
    pub(crate) fn module_path(&self, module: &dyn Module) -> Option<String> {
        self.trace.borrow().paths.get(&module_key(module)).cloned()
    }

    /// True in a Monte Carlo trace: dropout calls draw even in eval mode.
    pub(crate) fn dropout_always_draws(&self) -> bool {
        self.trace.borrow().dropout_always_draws
    }

    /// The node holding the latest value of store entry `entry` in this trace: the node
    /// of an earlier update, or `None` if the trace has not updated it.
    pub(crate) fn updated(&self, entry: &str) -> Option<NodeId> {
        let state = self.trace.borrow();
        (state.updates.iter()).find_map(|(e, node)| (e == entry).then_some(*node))
    }

    /// Records `node` as the new value of store entry `entry`, which the traced graph outputs
    /// as `<entry>.next`.
    pub(crate) fn update(&self, entry: &str, node: NodeId) {
        let mut state = self.trace.borrow_mut();
        match state.updates.iter_mut().find(|(e, _)| e == entry) {
            Some((_, latest)) => *latest = node,
            None => state.updates.push((entry.to_string(), node)),
        }
    }

    /// Claims the next dropout stream of the trace.
    pub(crate) fn claim_stream(&self) -> u32 {
        let mut state = self.trace.borrow_mut();
        let stream = state.next_stream;
        state.next_stream += 1;
        stream
    }

    /// Runs `add` with a builder over this node's trace (a taken name gets `.call2`,
    /// `.call3`, ...: [`Naming::CALLS`]) and this node, and returns what it returns.
    pub(crate) fn build<T>(
        &self,
        add: impl FnOnce(&mut Builder, NodeId) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.trace.borrow_mut();
        let mut b = Builder::new(&mut state.graph, Naming::CALLS);
        add(&mut b, self.node)
    }

    /// Node `node` of this node's trace as a value.
    pub(crate) fn value(&self, node: NodeId) -> Var {
        Var::traced(TracedNode {
            trace: Rc::clone(&self.trace),
            node,
        })
    }

    /// A constant node `value` of this node's trace (named `name`, or `name.call2`, ... if
    /// taken).
    pub(crate) fn constant(&self, name: &str, value: Tensor) -> Result<Var> {
        let node = self.build(|b, _| b.constant(name, value))?;
        Ok(self.value(node))
    }

    /// Adds `op` applied to `operands` (values of this node's trace: `Ok(node)`, or concrete
    /// tensors, which become constants named after `base`) under a name derived from `base`,
    /// and returns the new value; a value of another trace is [`crate::Error::ForeignNode`].
    pub(crate) fn apply_operands(
        &self,
        base: &str,
        op: Op,
        operands: &[Result<&TracedNode, &Tensor>],
    ) -> Result<Var> {
        let node = self.build(|b, _| {
            let mut ids = Vec::new();
            for (k, operand) in operands.iter().enumerate() {
                ids.push(match operand {
                    Ok(traced) if Rc::ptr_eq(&traced.trace, &self.trace) => traced.node,
                    Ok(traced) => {
                        return Err(crate::error::Error::ForeignNode {
                            id: format!("{:?} (operand {k} of {base})", traced.node),
                            graph: b.graph().name().to_string(),
                        });
                    }
                    Err(tensor) => b.constant(&format!("{base}.operand{k}"), (*tensor).clone())?,
                });
            }
            b.node(base, op, &ids)
        })?;
        Ok(self.value(node))
    }

    /// Adds `op` applied to this node and then to `parameters` (created on first use, shared
    /// afterwards) under a name derived from `base`, and returns the new value.
    pub(crate) fn apply(
        &self,
        base: &str,
        op: Op,
        parameters: &[(String, TensorType)],
    ) -> Result<Var> {
        let node = self.build(|b, x| {
            let mut operands = vec![x];
            for (name, ty) in parameters {
                let id = match b.graph().find(name) {
                    Some(id) => id,
                    None => b.parameter(name, ty.clone())?,
                };
                operands.push(id);
            }
            b.node(base, op, &operands)
        })?;
        Ok(self.value(node))
    }
}

/// The identity of a module during one trace: its address (the data pointer) and its type,
/// since a struct and its first field share an address but not a type.
fn module_key(module: &dyn Module) -> (usize, &'static str) {
    let address = std::ptr::from_ref(module).cast::<()>() as usize;
    (address, module.type_name())
}

fn collect_paths(
    module: &dyn Module,
    prefix: &str,
    paths: &mut HashMap<(usize, &'static str), String>,
) {
    for (name, child) in module.children() {
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        collect_paths(child, &path, paths);
        // The first listing wins: a module listed twice keeps one name.
        paths.entry(module_key(child)).or_insert(path);
    }
}

/// Traces `model` on an input of type `input` into one graph: input node `x`, output `y`,
/// nodes named after module paths, dropout streams in call order (see the module
/// docs). Errors are the graph's, naming the node (the module path) whose input does not fit,
/// e.g. `linear fc2: input has 100 features but weight expects 256`.
pub fn trace(model: &dyn Module, input: &TensorType) -> Result<Graph> {
    trace_with(model, input, false)
}

/// Like [`trace`], with every dropout call drawing whatever its module's mode and every other
/// module in its own: the forward that Monte Carlo dropout samples
/// ([`crate::nn::Traced::mc_predict`]). Streams are numbered as in [`trace`], so a dropout
/// draws the same mask in both traces.
pub fn trace_mc(model: &dyn Module, input: &TensorType) -> Result<Graph> {
    trace_with(model, input, true)
}

fn trace_with(model: &dyn Module, input: &TensorType, mc: bool) -> Result<Graph> {
    let mut paths = HashMap::new();
    collect_paths(model, "", &mut paths);
    let graph_name = model.name();
    let graph_name =
        if is_node_name(&graph_name) && !graph_name.starts_with(|c: char| c.is_ascii_digit()) {
            graph_name
        } else {
            "model".to_string()
        };
    let mut graph = Graph::new(graph_name);
    let input_node = Builder::new(&mut graph, Naming::CALLS).input("x", input.clone())?;
    let trace = Rc::new(RefCell::new(TraceState {
        graph,
        paths,
        next_stream: 0,
        dropout_always_draws: mc,
        updates: Vec::new(),
    }));
    let x = Var::traced(TracedNode {
        trace: Rc::clone(&trace),
        node: input_node,
    });
    let y = model.forward(&x)?;
    let updates = std::mem::take(&mut trace.borrow_mut().updates);
    let mut graph = std::mem::take(&mut trace.borrow_mut().graph);
    let mut b = Builder::new(&mut graph, Naming::CALLS);
    let output = match &y.repr {
        Repr::Traced(node) if Rc::ptr_eq(&node.trace, &trace) => node.node,
        Repr::Traced(_) => {
            return Err(Error::ForeignTrace {
                graph: b.graph().name().to_string(),
            });
        }
        // A model that ignores its input returns a constant.
        Repr::Eager(t) => b.constant("constant", (**t).clone())?,
    };
    b.output("y", output)?;
    for (entry, node) in updates {
        // Under the name of the node's first call (`bn1.running_mean.next`), which the
        // output may share.
        graph.add_output(format!("{entry}.next"), node)?;
    }
    Ok(graph)
}
