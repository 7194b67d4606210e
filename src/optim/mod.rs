//! Optimizers as graph transforms: `torch.optim`'s single-tensor (`foreach=False`) updates,
//! built into a training step's graph from existing ops (`add sub mul div sqrt maximum`).
//!
//! An [`Optimizer`] is host-side configuration plus a step count. [`add_updates`] adds, for
//! every (parameter, gradient) pair, the update of the parameter and of its state:
//! - the state (a momentum buffer, `exp_avg`, ...) is a `Parameter` node named after its
//!   parameter, `fc1.weight.momentum_buffer`, whose value lives in the same
//!   [`crate::ParameterStore`] as the parameters (zeros before the first step);
//! - hyperparameters and the step-dependent scalars (bias corrections) are `f32[]` *inputs*
//!   named `optim.lr`, `optim.step_size`, ..., which [`Optimizer::scalars`] computes on the host
//!   in f64 and rounds to f32 once, as PyTorch turns a Python float into a kernel's scalar;
//!   changing the learning rate or taking another step therefore never recompiles;
//! - the new values are graph outputs named `<entry>.next` (`fc1.weight.next`,
//!   `fc1.weight.exp_avg.next`), which the caller swaps into the store.
//!
//! Only what fixes the graph's shape is structural ([`Optimizer::structure`]): whether momentum,
//! weight decay, nesterov or amsgrad are on, as PyTorch's `if weight_decay != 0` branches are.
//!
//! Rounding: every op rounds to f32 in PyTorch's evaluation order. PyTorch's vectorized CPU
//! kernels may fuse `a + alpha * b` into one FMA (one rounding instead of two), so results
//! can differ from ours in the last bit of an element; the fixture tests state their tolerance.

mod adam;
mod sgd;

pub use adam::{Adam, AdamW};
pub use sgd::Sgd;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::graph::{Builder, Graph, Naming, NodeId, TensorType};
use crate::runtime::ParameterStore;
use crate::tensor::Tensor;

/// Where an optimizer's parameter list comes from: a traced model, a store, or plain names.
pub trait Parameters {
    /// Every parameter to optimize, by store name, in a fixed order.
    fn parameter_names(&self) -> Vec<String>;
}

impl Parameters for ParameterStore {
    fn parameter_names(&self) -> Vec<String> {
        self.iter().map(|(name, _)| name.to_string()).collect()
    }
}

impl Parameters for [String] {
    fn parameter_names(&self) -> Vec<String> {
        self.to_vec()
    }
}

impl Parameters for [&str] {
    fn parameter_names(&self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }
}

/// A `torch.optim` optimizer: configuration, the parameters it updates and its step count.
/// The update itself is graph nodes ([`Optimizer::add_update`]), run by a compiled step.
pub trait Optimizer {
    /// The store names of the parameters it updates.
    fn parameters(&self) -> &[String];

    /// What fixes the update graph (not the scalars' values), e.g. `sgd momentum nesterov`:
    /// part of a compiled step's cache key.
    fn structure(&self) -> String;

    /// `SGD(lr=0.1, momentum=0.9, ...)`: the configuration, for messages and checkpoints.
    fn describe(&self) -> String;

    /// The state entries kept per parameter, in order (`momentum_buffer`; `exp_avg`,
    /// `exp_avg_sq`[, `max_exp_avg_sq`]), each of its parameter's type, zeros at first.
    fn state_names(&self) -> Vec<&'static str>;

    /// The scalar inputs of the update that takes the optimizer from `steps` completed steps
    /// to `steps + 1`: `(name without the optim. prefix, value)`, rounded to f32 from f64.
    fn scalars(&self, steps: u64) -> Vec<(&'static str, f32)>;

    /// Adds the update of one parameter with `b` and returns the nodes of the parameter's
    /// new value followed by its state's, in [`Optimizer::state_names`] order. The update's
    /// nodes are named after the parameter: `fc1.weight.delta`.
    fn add_update(&self, b: &mut Builder, update: &UpdateNodes) -> Result<Vec<NodeId>>;

    /// The learning rate and the step count, which [`Optimizer::lr`], [`Optimizer::steps`]
    /// and their setters read.
    fn schedule(&self) -> &Schedule;

    /// The learning rate and the step count, for the setters.
    fn schedule_mut(&mut self) -> &mut Schedule;

    /// The steps taken so far (PyTorch's `state['step']`, one count for every parameter).
    fn steps(&self) -> u64 {
        self.schedule().steps
    }

    /// Sets the step count (after loading a checkpoint).
    fn set_steps(&mut self, steps: u64) {
        self.schedule_mut().steps = steps;
    }

    /// The learning rate.
    fn lr(&self) -> f64 {
        self.schedule().lr
    }

    /// Changes the learning rate (an input of the compiled step: nothing recompiles);
    /// `Invalid learning rate` if negative or NaN.
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        check_lr(lr)?;
        self.schedule_mut().lr = lr;
        Ok(())
    }

    /// The gradient clipping before every update, if any: the `max_norm` of
    /// `torch.nn.utils.clip_grad_norm_` over all of the optimizer's parameters.
    fn max_grad_norm(&self) -> Option<f64> {
        self.schedule().max_grad_norm
    }

    /// Clips the gradients before every update as `clip_grad_norm_(params, max_norm)` does
    /// (2-norm; see [`add_updates`]), or stops clipping (`None`). Turning clipping on or off
    /// changes the step's graph; a new `max_norm` is an input of it (nothing recompiles).
    /// `Invalid max_norm value` if negative or NaN.
    fn set_max_grad_norm(&mut self, max_norm: Option<f64>) -> Result<()> {
        if let Some(max_norm) = max_norm {
            check(max_norm >= 0.0, "max_norm value", max_norm)?;
        }
        self.schedule_mut().max_grad_norm = max_norm;
        Ok(())
    }

    /// [`Optimizer::structure`] and whether the gradients are clipped: the compiled step's
    /// cache key.
    fn step_structure(&self) -> String {
        let clip = if self.max_grad_norm().is_some() {
            " clip_grad_norm"
        } else {
            ""
        };
        format!("{}{clip}", self.structure())
    }

    /// [`Optimizer::scalars`] and, when clipping, `max_grad_norm`: every scalar input of the
    /// step after `steps` completed ones.
    fn step_scalars(&self, steps: u64) -> Vec<(&'static str, f32)> {
        let mut scalars = self.scalars(steps);
        if let Some(max_norm) = self.max_grad_norm() {
            scalars.push((MAX_GRAD_NORM, max_norm as f32));
        }
        scalars
    }
}

/// The scalar input (without the prefix) holding the clipping's `max_norm`.
const MAX_GRAD_NORM: &str = "max_grad_norm";

/// What changes between an optimizer's steps, the same for every optimizer: the learning
/// rate and the step count (PyTorch's `group['lr']` and `state['step']`).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    lr: f64,
    steps: u64,
    /// Clip the gradients to this total 2-norm before the update.
    max_grad_norm: Option<f64>,
}

impl Schedule {
    /// Learning rate `lr` (`Invalid learning rate` if negative or NaN), no step taken.
    pub fn new(lr: f64) -> Result<Schedule> {
        check_lr(lr)?;
        Ok(Schedule {
            lr,
            steps: 0,
            max_grad_norm: None,
        })
    }
}

/// The nodes one parameter's update reads.
#[derive(Clone, Debug)]
pub struct UpdateNodes {
    /// The parameter's store name, which names the update's nodes.
    pub name: String,
    /// The parameter node.
    pub param: NodeId,
    /// Its gradient.
    pub grad: NodeId,
    /// Its state nodes in [`Optimizer::state_names`] order.
    pub state: Vec<NodeId>,
    /// The scalar inputs by name (without the `optim.` prefix).
    pub scalars: BTreeMap<&'static str, NodeId>,
}

impl UpdateNodes {
    /// The scalar input `name`; asking for one the optimizer does not declare is a bug.
    pub fn scalar(&self, name: &str) -> NodeId {
        *(self.scalars.get(name)).unwrap_or_else(|| {
            panic!("invariant: the optimizer declares the scalar {name} in scalars()")
        })
    }
}

/// The prefix of the scalar inputs' names.
pub const SCALAR_PREFIX: &str = "optim.";

/// One updated store entry: the graph output holding its next value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Updated {
    /// The store entry (`fc1.weight`, `fc1.weight.momentum_buffer`).
    pub entry: String,
    /// The graph output with its new value (`fc1.weight.next`).
    pub output: String,
}

/// The store name of parameter `param`'s state `state`: `fc1.weight.momentum_buffer`.
pub fn state_name(param: &str, state: &str) -> String {
    format!("{param}.{state}")
}

/// Adds `optimizer`'s update of every `(parameter node, gradient node)` pair to `graph`: state
/// parameters, scalar inputs (`optim.lr`, ...) and one output per updated entry, in pair order
/// (the parameter, then its state). Returns the entries with their outputs.
pub fn add_updates(
    graph: &mut Graph,
    optimizer: &dyn Optimizer,
    pairs: &[(NodeId, NodeId)],
) -> Result<Vec<Updated>> {
    let mut b = Builder::new(graph, Naming::Exact);
    let mut scalars = BTreeMap::new();
    for (name, _) in optimizer.step_scalars(0) {
        let input = b.input(&format!("{SCALAR_PREFIX}{name}"), TensorType::f32([]))?;
        scalars.insert(name, input);
    }
    let grads: Vec<NodeId> = pairs.iter().map(|&(_, grad)| grad).collect();
    let grads = match scalars.get(MAX_GRAD_NORM) {
        Some(&max_norm) => clip_grad_norm(&mut b, &grads, max_norm)?,
        None => grads,
    };
    let mut updated = Vec::new();
    for (&(param, _), grad) in pairs.iter().zip(grads) {
        let node = b.graph().node(param)?;
        let (name, ty) = (node.name.clone(), node.ty.clone());
        let state_names = optimizer.state_names();
        let mut state = Vec::new();
        for s in &state_names {
            state.push(b.parameter(&state_name(&name, s), ty.clone())?);
        }
        let nodes = UpdateNodes {
            name: name.clone(),
            param,
            grad,
            state,
            scalars: scalars.clone(),
        };
        let new_values = optimizer.add_update(&mut b, &nodes)?;
        let entries =
            std::iter::once(name.clone()).chain(state_names.iter().map(|s| state_name(&name, s)));
        for (entry, node) in entries.zip(new_values) {
            let output = format!("{entry}.next");
            b.output(&output, node)?;
            updated.push(Updated { entry, output });
        }
    }
    Ok(updated)
}

/// `torch.nn.utils.clip_grad_norm_(grads, max_norm)` (2-norm, `error_if_nonfinite=False`)
/// as graph nodes: each gradient's norm `n_i = sqrt(sum(g_i * g_i))`, the total
/// `sqrt(0 + n_0 * n_0 + n_1 * n_1 + ...)` (the norm of the norms, as PyTorch stacks them),
/// `coef = max_norm / (total + 1e-6)` clamped to at most 1 (NaN stays NaN), and every
/// gradient times it. Returns the clipped gradients in order.
fn clip_grad_norm(b: &mut Builder, grads: &[NodeId], max_norm: NodeId) -> Result<Vec<NodeId>> {
    let mut total = b.constant("clip.zero", Tensor::scalar(0.0))?;
    for (i, &g) in grads.iter().enumerate() {
        let name = |what: &str| format!("clip.{i}.{what}");
        let square = b.mul(&name("square"), g, g)?;
        let sum = b.sum(&name("sum"), square, Vec::new(), false)?;
        let norm = b.sqrt(&name("norm"), sum)?;
        let norm_square = b.mul(&name("norm_square"), norm, norm)?;
        total = b.add(&name("total"), total, norm_square)?;
    }
    let total = b.sqrt("clip.total_norm", total)?;
    let tiny = b.constant("clip.eps", Tensor::scalar(1e-6))?;
    let denom = b.add("clip.denom", total, tiny)?;
    let coef = b.div("clip.coef", max_norm, denom)?;
    // min(coef, 1) = -maximum(-coef, -1): exact, and NaN-propagating as torch.clamp.
    let negated = b.unary("clip.neg_coef", crate::graph::UnaryOp::Neg, coef)?;
    let minus_one = b.constant("clip.minus_one", Tensor::scalar(-1.0))?;
    let clamped = b.maximum("clip.neg_clamped", negated, minus_one)?;
    let coef = b.unary("clip.clamped", crate::graph::UnaryOp::Neg, clamped)?;
    (grads.iter().enumerate())
        .map(|(i, &g)| b.mul(&format!("clip.{i}.grad"), g, coef))
        .collect()
}

/// The scalar inputs of the optimizer's next step as tensors, by input name (`optim.lr`).
pub fn scalar_inputs(optimizer: &dyn Optimizer) -> Vec<(String, Tensor)> {
    (optimizer.step_scalars(optimizer.steps()).into_iter())
        .map(|(name, v)| (format!("{SCALAR_PREFIX}{name}"), Tensor::scalar(v)))
        .collect()
}

/// Zeros for every state entry of `optimizer` that `store` lacks, of its parameter's type.
/// Fails with [`Error::MissingValue`] for a parameter the store does not hold.
pub fn init_state(optimizer: &dyn Optimizer, store: &mut ParameterStore) -> Result<()> {
    for param in optimizer.parameters() {
        let ty = store
            .get(param)
            .ok_or_else(|| Error::MissingValue {
                what: "parameter",
                name: param.clone(),
            })?
            .ty();
        for s in optimizer.state_names() {
            let name = state_name(param, s);
            if store.get(&name).is_none() {
                store.insert(name, Tensor::zeros(&ty)?);
            }
        }
    }
    Ok(())
}

/// `Invalid learning rate` for a negative or NaN `lr`.
fn check_lr(lr: f64) -> Result<()> {
    check(lr >= 0.0, "learning rate", lr)
}

/// [`Error::Hyperparameter`] unless `ok`.
pub(crate) fn check(ok: bool, what: &'static str, value: f64) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Hyperparameter { what, value })
    }
}
