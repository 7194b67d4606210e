//! The module API: `torch.nn` for Rust. Layers ([`Linear`], the dropout family,
//! [`Sequential`], [`ReLU`], [`SELU`], [`GELU`]) and user models implement [`Module`]; values are
//! [`Var`]s.
//!
//! # Two ways to run, one semantics
//! A model's `forward` is written once against [`Var`], which is either a concrete tensor or a
//! handle to a node of a graph being traced (like a JAX tracer):
//! - **Eager**: `module.forward(&x)?` on a concrete value computes now. Each call builds a
//!   one-node graph and compiles it once per (op, shape, mode) through a process-wide
//!   [`crate::CompileCache`]; later calls only run ([`eager_compilations`] counts them).
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
//! # Masks as outputs
//! [`DropoutLayer::dropout_with_mask`] (and [`functional::dropout_with_mask`]) return
//! `(output, mask)` like `torch.native_dropout`: the mask is `bool`, `true` where an element
//! was kept, and all true in eval mode (where the dropout itself disappears). It comes in the
//! *mask shape*: the input's for `Dropout` and `AlphaDropout` (as in PyTorch), one value per
//! channel for the channel-wise kinds (`(N, C, 1, 1)` for `Dropout2d`), which PyTorch's modules
//! do not expose at all. Eager calls draw it at their step on stream 0, traced calls add a
//! `dropout_mask` node on the dropout's stream, named `<dropout>.mask`.
//!
//! # Parameters
//! [`Linear`] keeps its parameters in its own [`crate::ParameterStore`] (eager calls run on it
//! directly); [`Traced`] gathers them once into one store that its train and eval
//! compilations share.
//!
//! # Training
//! [`Traced::train_step`] is PyTorch's loop body (`zero_grad`, forward, loss, `backward`,
//! `optimizer.step()`) as one compiled graph: the traced forward, a [`crate::train::Loss`],
//! every parameter's gradient ([`crate::autodiff::gradients`]) and a [`crate::optim`]
//! update. It claims one generator step (the backward recomputes the forward's masks at it)
//! and updates parameters and optimizer state in [`Traced`]'s store, which eval-mode
//! `forward` reads next, without a copy:
//! ```
//! # fn main() -> dropjit::Result<()> {
//! use dropjit::nn;
//! use dropjit::{Generator, optim, train::Loss};
//! let mut generator = Generator::new(0);
//! let mut model = nn::Traced::new(nn::Sequential::new(vec![
//!     Box::new(nn::Linear::new(8, 16, &mut generator)?),
//!     Box::new(nn::ReLU),
//!     Box::new(nn::Dropout::new(0.5)?),
//!     Box::new(nn::Linear::new(16, 2, &mut generator)?),
//! ]));
//! let mut opt = optim::Sgd::new(&model, 0.1)?.momentum(0.9)?;
//! let (x, targets) = (generator.normal([4, 8], 0.0, 1.0)?, generator.randint([4], 0, 2)?);
//! model.train();
//! let loss: f32 = model.train_step(&x, &targets, Loss::CrossEntropy, &mut opt)?;
//! model.eval();
//! let logits = model.forward(&x)?; // runs on the updated parameters
//! # let _ = (loss, logits);
//! # Ok(()) }
//! ```
//!
//! # The seed's examples
//! `examples/seed_examples.rs` runs these and prints the figures. Basic dropout in a fully
//! connected network:
//! ```
//! # fn main() -> dropjit::Result<()> {
//! use dropjit::nn::{self, Module};
//! let mut dropout = nn::Dropout::new(0.5)?;
//! let x = dropjit::randn([32, 256])?; // Batch of 256-dim vectors
//! // During training
//! dropout.train();
//! let train_out = dropout.forward(&x)?; // ~50% elements zeroed
//! // During inference
//! dropout.eval();
//! let test_out = dropout.forward(&x)?; // No dropout, returns x
//! assert!((train_out.tensor()?.zero_share() - 0.5).abs() < 0.05);
//! assert_eq!(test_out.tensor()?, x.tensor()?);
//! # Ok(()) }
//! ```
//!
//! Dropout in a deep network to prevent overfitting, run eagerly and traced:
//! ```
//! # fn main() -> dropjit::Result<()> {
//! use dropjit::nn::{self, Module, Var, child, relu};
//! use dropjit::Generator;
//!
//! struct SimpleNet {
//!     fc1: nn::Linear,
//!     dropout1: nn::Dropout,
//!     fc2: nn::Linear,
//!     dropout2: nn::Dropout,
//!     fc3: nn::Linear,
//! }
//!
//! impl SimpleNet {
//!     fn new(generator: &mut Generator) -> dropjit::Result<SimpleNet> {
//!         Ok(SimpleNet {
//!             fc1: nn::Linear::new(784, 256, generator)?,
//!             dropout1: nn::Dropout::new(0.5)?,
//!             fc2: nn::Linear::new(256, 128, generator)?,
//!             dropout2: nn::Dropout::new(0.5)?,
//!             fc3: nn::Linear::new(128, 10, generator)?,
//!         })
//!     }
//! }
//!
//! impl Module for SimpleNet {
//!     fn forward(&self, x: &Var) -> dropjit::Result<Var> {
//!         let x = relu(&self.fc1.forward(x)?)?;
//!         let x = self.dropout1.forward(&x)?; // Prevent co-adaptation in first layer
//!         let x = relu(&self.fc2.forward(&x)?)?;
//!         let x = self.dropout2.forward(&x)?; // Prevent co-adaptation in second layer
//!         self.fc3.forward(&x)
//!     }
//!
//!     fn children(&self) -> Vec<(String, &dyn Module)> {
//!         vec![
//!             child("fc1", &self.fc1),
//!             child("dropout1", &self.dropout1),
//!             child("fc2", &self.fc2),
//!             child("dropout2", &self.dropout2),
//!             child("fc3", &self.fc3),
//!         ]
//!     }
//! }
//!
//! let model = SimpleNet::new(&mut Generator::new(0))?;
//! let x = dropjit::randn([32, 784])?;
//! let eager = model.forward(&x)?;                 // one compiled kernel per call
//! let model = nn::Traced::new(model);             // one graph, every dropout in it
//! let traced = model.forward(x.tensor()?)?;
//! assert_eq!(&eager.shape(), traced.shape());
//! assert!(model.to_string().starts_with("SimpleNet(\n  (fc1): Linear(in_features=784"));
//! # Ok(()) }
//! ```
//!
//! Dropout with lower probability for simpler models, and the ensemble interpretation (each
//! call a different mask, a different sub-network):
//! ```
//! # fn main() -> dropjit::Result<()> {
//! use dropjit::nn::{self, Module};
//! let light_dropout = nn::Dropout::new(0.2)?; // Only 20% dropout
//! let heavy_dropout = nn::Dropout::new(0.7)?; // Aggressive 70% dropout
//! assert_eq!(heavy_dropout.to_string(), "Dropout(p=0.7, inplace=false)");
//!
//! let mut dropout = nn::Dropout::new(0.5)?;
//! let x = dropjit::randn([1, 100])?;
//! // Each forward pass with different mask ~ different sub-network
//! dropout.train();
//! let out1 = dropout.forward(&x)?; // Different random mask
//! let out2 = dropout.forward(&x)?; // Different random mask
//! let out3 = dropout.forward(&x)?; // Different random mask
//! // Training averages over these different configurations
//! assert!(out1.tensor()? != out2.tensor()? && out2.tensor()? != out3.tensor()?);
//! # let _ = light_dropout;
//! # Ok(()) }
//! ```

mod batch_norm;
mod conv;
mod dropout;
mod eager;
mod embedding;
pub mod functional;
mod layer_norm;
mod linear;
mod mask;
mod mc;
mod module;
mod pool;
mod sequential;
mod trace;
mod traced;
mod var;

pub use batch_norm::BatchNormNd;
pub use conv::ConvNd;
pub use dropout::{
    AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, DropoutLayer, FeatureAlphaDropout,
    Variant, variant,
};
pub use eager::{
    DEFAULT_SEED, default_generator, eager_compilations, manual_seed, randn, with_generator,
};
pub use embedding::Embedding;
pub use functional::{
    GELU, ReLU, SELU, add, causal_mask, constant, div, gelu, matmul, mul, relu, reshape, selu,
    softmax, sub, transpose, where_,
};
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use mc::{Classification, McPrediction};
pub use module::{Module, ModuleDisplay, child, fmt_module};
pub use pool::{AdaptiveAvgPool, Flatten, PoolNd};
pub use sequential::Sequential;
pub use trace::{trace, trace_mc};
pub use traced::Traced;
pub use var::Var;
