//! dropjit: a graph compiler for `torch.nn.Dropout` and its family.
//!
//! The pipeline, one module per stage:
//! 1. Build a [`Graph`] with its API or parse the textual IR ([`text::parse()`]).
//! 2. Types are inferred as nodes are added ([`graph::infer`]); [`graph::verify`] checks the whole.
//! 3. The reference interpreter ([`interp`]) runs a graph in train or eval mode: the living
//!    definition of every op, including every dropout variant's masks under the RNG contract
//!    ([`rng::mask`]).
//! 4. [`passes`] specialise a graph for train or eval mode: `dropout(x) -> x` where dropout is
//!    the identity, layout simplification, dead-code elimination, verified after each pass.
//! 5. [`Compiler`] drives the rest: [`plan`] makes every decision about running the optimized
//!    graph (kernels with element-wise nodes fused into one loop, vector or scalar; buffers in
//!    one arena reused by liveness, in-place dropout; phases of fixed work units), lowering
//!    turns each phase into one Cranelift function, the JIT compiles them, and [`runtime`]'s
//!    [`CompiledGraph`] runs them on the caller's tensors with parameters from a
//!    [`ParameterStore`], on one thread or several (`Compiler::threads`, the same bits for
//!    any count), reproducing the interpreter (masks bit for bit).
//! 6. [`autodiff::gradients`] differentiates a scalar loss as a graph transform: the backward
//!    nodes join the same graph (dropout gradients recompute their forward's mask), so steps
//!    4 and 5 optimize and compile forward and backward as one function.
//! 7. [`nn`] is `torch.nn` on top: modules whose `forward` runs eagerly (one-node graphs,
//!    compiled once per shape) or is traced into one graph ([`nn::Traced`]).
//! 8. [`optim`] adds `torch.optim`'s updates (SGD, Adam, AdamW) to a graph, and [`train`]
//!    builds one training step from a traced forward: loss, gradients and update in one
//!    compiled graph that updates the parameter store in place (`Traced::train_step`);
//!    [`train::metrics`] scores logits against labels on the host; [`checkpoint`] saves and
//!    resumes a run as safetensors.
//!
//! Beside them: [`data`] embeds the digits data set (split and batches from the seed; its
//! failures are a [`data::DataError`] of their own), [`models`] holds the models the demos,
//! examples, benches and tests share (SimpleNet), [`npy`] reads and writes `.npy` files, and
//! [`fs_atomic`] writes every file the library and the command line save whole or not at all.
//! The main job (`cargo run --release`, which trains SimpleNet on the digits with and without
//! dropout from the same weights), its tables, SVG plot and progress bar belong to the
//! command line (`src/main.rs`, `src/cli/`), not to the library.
//!
//! Debug output is a value: [`text::print`] and [`text::dot`] render a graph, the library never
//! prints on its own.

mod alloc;
pub mod autodiff;
pub mod checkpoint;
pub mod compile;
pub mod data;
pub mod error;
pub mod fs_atomic;
pub mod gemm;
pub mod graph;
pub mod init;
pub mod interp;
pub mod isa;
mod jit;
mod lower;
pub mod machine;
pub mod math;
pub mod models;
pub mod nn;
pub mod npy;
pub mod optim;
pub mod passes;
pub mod plan;
pub mod rng;
pub mod runtime;
pub mod tensor;
pub mod text;
pub mod train;
pub mod types;
pub mod window;

pub use compile::{CompileCache, Compiler};
pub use error::{Error, Result, Rule, TypeError};
pub use graph::{DType, Dropout, DropoutKind, Graph, Mode, NodeId, Op, Shape, TensorType};

pub use isa::Isa;
pub use lower::Gemm;
pub use nn::{manual_seed, randn};
pub use rng::Generator;
pub use runtime::{CompiledGraph, ParameterStore};
pub use tensor::{Tensor, TensorData};

/// The README's examples run as doc tests, so the quick start cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
