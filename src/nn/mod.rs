//! The module API: `torch.nn` for Rust. Layers ([`Linear`], the dropout family,
//! [`Sequential`], [`ReLU`], [`SELU`]) and user models implement [`Module`]; values are
//! [`Var`]s.
//!
//! # Two ways to run, one semantics
//! A model's `forward` is written once against [`Var`], which is either a concrete tensor or a
//! handle to a node of a graph being traced (like a JAX tracer):
//! - **Eager**: `module.forward(&x)?` on a concrete value computes now. Each call builds a
//!   one-node graph and compiles it once per (op, shape, mode) through a process-wide
//!   [`crate::CompileCache`]; later calls only run (see `eager`).
//! - **Traced**: [`Traced::new(model)`](Traced) traces `forward` into one graph per input
//!   shape and mode and compiles it as a unit, so the compiler sees (and fuses) every dropout.
//!   Nodes are named after the module paths `children()` gives (`fc1`, `dropout1`), and each
//!   dropout call site takes its own stream in call order, so a module used twice draws two
//!   masks (see [`trace()`]).
//!
//! # Generators and masks
//! Eager calls draw from the calling thread's default generator ([`manual_seed`],
//! [`default_generator`]; parallel tests never share one), or from an explicit one:
//! [`Dropout::forward_with`] for one call, [`with_generator`] for everything in a closure,
//! [`Traced::forward_with`] for a traced model. The relation between the two ways:
//! - an eager train-mode dropout call claims one step `s` and draws stream 0 at `s`;
//! - a traced run claims one step `s`, and call site `k` (in call order) draws stream `k` at
//!   `s`; eval mode claims nothing in both.
//!
//! So an eager call at step `s` is bit for bit a traced one-dropout model run at step `s`, and
//! the first dropout of a traced model at step `s` matches an eager call of it at step `s`;
//! later call sites differ (stream `k` at one step, where eager calls take one step each).
//! Linear layers and activations draw nothing and agree in both ways (same compiled code).
//!
//! # In place
//! `forward(&x)` never writes into `x`. Writing is visible in the types: dropout's
//! `forward_mut(&mut x)`, and [`Module::forward_owned`] (by value, what [`Sequential`] uses)
//! for modules built with `inplace = true`. Cloning a [`Var`] shares the value, so an
//! in-place call on a shared value is refused ([`crate::Error::UnsafeInplace`]).
//!
//! # Parameters
//! [`Linear`] keeps its parameters in its own [`crate::ParameterStore`] (eager calls run on it
//! directly); [`Traced`] gathers them once into one store that its train and eval
//! compilations share.
// TODO(issue 5): dropout_with_mask (masks as outputs) needs a new IR op in every stage.

mod display;
mod dropout;
mod eager;
pub mod functional;
mod linear;
mod module;
mod sequential;
mod trace;
mod traced;
mod var;

pub use display::ModuleDisplay;
pub use dropout::{
    AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, DropoutLayer, FeatureAlphaDropout,
    Variant, variant,
};
pub use eager::{
    DEFAULT_SEED, default_generator, eager_compilations, manual_seed, randn, with_generator,
};
pub use functional::{ReLU, SELU, relu, selu};
pub use linear::Linear;
pub use module::{Module, child, fmt_module};
pub use sequential::Sequential;
pub use trace::trace;
pub use traced::Traced;
pub use var::Var;
