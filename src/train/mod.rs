//! The compiled training step: forward, loss, gradients and the optimizer's update in ONE
//! graph, compiled once per (input shapes, loss, optimizer structure) and run on the
//! parameter store, which it updates in place (see [`CompiledStep`] for how).

mod graph;
mod loss;
mod metrics;
mod step;

pub use graph::{StepGraph, step_graph};
pub use loss::Loss;
pub use metrics::{Metrics, argmax, auroc, metrics};
pub use step::CompiledStep;
