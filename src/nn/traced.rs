//! [`Traced`]: a model run as one compiled graph per input shape and mode, and trained by
//! one compiled graph per step (forward, loss, backward and update).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::batch_norm::{batches_tracked, count_batches};
use super::eager::with_default_generator;
use super::mc::McPrediction;
use super::module::{Module, fmt_module};
use super::trace::{trace, trace_mc};
use crate::checkpoint;
use crate::compile::{CompileCache, Compiler};
use crate::error::{Error, Result};
use crate::graph::Mode;
use crate::graph::{Graph, TensorType};
use crate::optim::{self, Optimizer, Parameters};
use crate::passes;
use crate::rng::Generator;
use crate::runtime::{CompiledGraph, ParameterStore};
use crate::tensor::Tensor;
use crate::train::{CompiledStep, Loss, StepGraph, step_graph};

/// A model whose `forward` is traced into one graph (every dropout in it, fused by the
/// compiler) and compiled through a [`CompileCache`]: once per input shape and mode.
///
/// The model's parameters are collected into one [`ParameterStore`] when the `Traced` is
/// made (the one copy); every compilation, train or eval, runs on that store. A train-mode
/// run claims one generator step and every dropout call site draws its own stream at that
/// step (see [`crate::nn::trace()`]).
///
/// # Buffers
/// A batch norm's running statistics and `num_batches_tracked` are buffers
/// ([`Module::named_buffers`]): collected with the parameters, bound to every run beside
/// them, but no parameter (no optimizer updates them, [`Traced::named_parameters`] does not
/// list them; [`Traced::named_buffers`] does). Every train-mode run, forward or training step,
/// writes their new values back (the graph's outputs after `y`); eval and Monte Carlo runs
/// never do. Checkpoints save and load them.
///
/// # Training
/// [`Traced::train_step`] runs forward, loss, backward and the optimizer's update as one
/// compiled graph ([`crate::train::step_graph`]) and updates the parameters and the optimizer
/// state in the same store, by swapping in buffers the step wrote ([`CompiledStep`]): the
/// model's eval `forward` then reads the new values, nothing is copied. The step graph is
/// compiled once per (input and target types, loss, optimizer structure and parameters,
/// train/eval flag), through the same cache: another batch size (a partial last batch) is
/// one more compilation, after which both sizes run without compiling.
///
/// ```
/// # fn main() -> dropjit::Result<()> {
/// use dropjit::nn::{self, Module};
/// use dropjit::optim::{self, Optimizer};
/// use dropjit::train::Loss;
/// use dropjit::{Generator, Tensor};
/// let mut generator = Generator::new(0);
/// let net = nn::Sequential::new(vec![
///     Box::new(nn::Linear::new(4, 8, &mut generator)?),
///     Box::new(nn::ReLU),
///     Box::new(nn::Dropout::new(0.2)?),
///     Box::new(nn::Linear::new(8, 3, &mut generator)?),
/// ]);
/// let mut model = nn::Traced::new(net);
/// let mut opt = optim::Sgd::new(&model, 0.1)?.momentum(0.9)?;
/// let x = generator.normal([16, 4], 0.0, 1.0)?;
/// let targets = generator.randint([16], 0, 3)?;
/// model.train();
/// let first = model.train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt, &mut generator)?;
/// for _ in 0..20 {
///     model.train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt, &mut generator)?;
/// }
/// let last = model.train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt, &mut generator)?;
/// assert!(last < first);
/// assert_eq!(opt.steps(), 22);
/// model.eval();
/// let logits = model.forward(&x)?; // the updated parameters, no copy
/// assert_eq!(logits.shape().dims(), [16, 3]);
/// # Ok(()) }
/// ```
pub struct Traced<M> {
    model: M,
    params: ParameterStore,
    /// The model's parameters in `named_parameters` order (the store may also hold
    /// optimizer state).
    param_names: Vec<String>,
    /// The model's buffers (batch norm's running statistics and counters) by store name,
    /// which train-mode runs update through `&self`; a run binds them with the parameters.
    buffers: Mutex<ParameterStore>,
    cache: CompileCache,
    /// The forward compilations by input type and how dropouts trace, so a call finds its
    /// graph without tracing the model and printing the graph for the cache's key (few
    /// entries).
    forwards: Mutex<Vec<(TensorType, Dropouts, Forward)>>,
    /// The compiled training steps so far (few: one per batch size and configuration), with
    /// the `num_batches_tracked` counters each run advances.
    steps: Vec<(StepKey, CompiledStep, Tracked)>,
}

/// `num_batches_tracked` counters by store name, with the batch-norm calls each counts.
type Tracked = Vec<(String, i32)>;

/// A compiled forward and the `num_batches_tracked` counters each of its runs advances (with
/// the calls each counts), read from the traced graph before the passes rewrite its batch
/// norms.
#[derive(Clone)]
struct Forward {
    compiled: Arc<CompiledGraph>,
    tracked: Tracked,
}

/// How a forward traces its dropout calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dropouts {
    /// As their modules' modes say (the model in train mode, or in eval mode).
    AsModules { training: bool },
    /// Every one draws, every other module in its own mode: Monte Carlo dropout.
    AllDraw,
    /// `AllDraw` for this many samples in one graph ([`crate::passes::batch_samples()`]).
    Samples(usize),
}

/// What fixes a training step's graph besides the model.
#[derive(Clone, Debug, PartialEq)]
struct StepKey {
    input: TensorType,
    targets: TensorType,
    loss: Loss,
    optimizer: String,
    parameters: Vec<String>,
    training: bool,
}

impl<M: Module> Traced<M> {
    /// Wraps `model`, compiling with the default [`Compiler`] options.
    pub fn new(model: M) -> Traced<M> {
        Traced::with_compiler(model, Compiler::new())
    }

    /// Wraps `model`, compiling with `compiler`'s options (its mode is chosen per run).
    pub fn with_compiler(model: M, compiler: Compiler) -> Traced<M> {
        let named = model.named_parameters();
        let param_names = named.iter().map(|(name, _)| name.clone()).collect();
        let params = (named.into_iter())
            .map(|(name, t)| (name, t.clone()))
            .collect();
        let buffers = Mutex::new(model.named_buffers().into_iter().collect());
        Traced {
            model,
            params,
            param_names,
            buffers,
            cache: CompileCache::new(compiler),
            forwards: Mutex::default(),
            steps: Vec::new(),
        }
    }

    /// The graph `forward` traces to for an input of type `input`, in the current mode:
    /// train-mode dropout modules add nodes, eval-mode ones are the identity.
    pub fn graph(&self, input: &TensorType) -> Result<Graph> {
        trace(&self.model, input)
    }

    /// The compiled graph for an input of type `input` in the current mode, compiled on first
    /// request. A graph with a dropout node compiles in train mode, one without in eval mode
    /// (so eval runs never touch the generator).
    ///
    /// The traced graph depends only on the input type and the mode (the model is reachable
    /// only through `&self`, and [`Traced::train`]/[`Traced::eval`] set every module's
    /// mode), so later requests for the same pair return the compilation without tracing.
    ///
    /// A train-mode batch norm makes the graph compile in train mode too (batch statistics;
    /// each run then claims a generator step, as a dropout's would), and its running
    /// statistics are outputs after `y` ([`crate::nn::BatchNormNd`]).
    pub fn compile(&self, input: &TensorType) -> Result<Arc<CompiledGraph>> {
        let training = self.is_training();
        let forward = self.compile_forward(input, Dropouts::AsModules { training })?;
        Ok(forward.compiled)
    }

    /// The forward traced with `dropouts`, compiled on first request.
    fn compile_forward(&self, input: &TensorType, dropouts: Dropouts) -> Result<Forward> {
        let found = (self.lock_forwards().iter())
            .find_map(|(ty, d, forward)| (*d == dropouts && ty == input).then(|| forward.clone()));
        if let Some(forward) = found {
            return Ok(forward);
        }
        let (graph, drawing) = match dropouts {
            Dropouts::AsModules { .. } => (self.graph(input)?, Mode::Train),
            Dropouts::AllDraw => (trace_mc(&self.model, input)?, Mode::Mc),
            Dropouts::Samples(n) => {
                // Batch norm first specialized for Monte Carlo mode (the affine map of the
                // running statistics), which the samples pass through.
                let mut graph = trace_mc(&self.model, input)?;
                passes::specialize_batch_norm(&mut graph, Mode::Mc)?;
                let batched = passes::batch_samples(&graph, n)?;
                (batched.graph, Mode::Mc)
            }
        };
        // A graph without dropout draws nothing: eval mode, so its runs claim no step; one
        // that updates running statistics normalizes with the batch's, in train mode.
        let has_dropout = graph.node_ids().any(|id| graph[id].op.is_dropout());
        let updates = graph.outputs().len() > 1;
        let mode = if has_dropout || updates {
            drawing
        } else {
            Mode::Eval
        };
        let forward = Forward {
            compiled: self.cache.get(&graph, mode)?,
            tracked: batches_tracked(&graph),
        };
        let entry = (input.clone(), dropouts, forward.clone());
        self.lock_forwards().push(entry);
        Ok(forward)
    }

    fn lock_forwards(&self) -> std::sync::MutexGuard<'_, Vec<(TensorType, Dropouts, Forward)>> {
        // Pushes are single operations: a panic elsewhere cannot leave the list half-updated.
        self.forwards.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_buffers(&self) -> std::sync::MutexGuard<'_, ParameterStore> {
        // A run swaps whole entries in after it succeeded: a panic cannot leave one
        // half-written.
        self.buffers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the model on `x`, drawing from the thread's default generator.
    ///
    /// In train mode, a batch norm's running statistics and `num_batches_tracked` in the
    /// store take their new values (the model's modules keep theirs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let training = self.is_training();
        let forward = self.compile_forward(&x.ty(), Dropouts::AsModules { training })?;
        with_default_generator(|g| self.run(&forward, x, g))
    }

    /// Runs the model on `x`, drawing from `generator`; see [`Traced::forward`].
    pub fn forward_with(&self, x: &Tensor, generator: &mut Generator) -> Result<Tensor> {
        let training = self.is_training();
        let forward = self.compile_forward(&x.ty(), Dropouts::AsModules { training })?;
        self.run(&forward, x, generator)
    }

    /// Runs a compiled forward on the parameters and buffers and returns `y`; its further
    /// outputs `<entry>.next` (running statistics) replace their buffers, and the counters
    /// the forward tracks advance.
    fn run(&self, forward: &Forward, x: &Tensor, generator: &mut Generator) -> Result<Tensor> {
        // A run binds owned inputs, so the borrowed input is copied.
        let inputs = BTreeMap::from([("x".to_string(), x.clone())]);
        // The buffers' values now, shared, not copied; the lock is not held while the graph
        // runs, so forwards on several threads run at once (train-mode ones then write back
        // in turn, the last one's statistics winning).
        let merged = {
            let buffers = self.lock_buffers();
            (!buffers.is_empty()).then(|| {
                let mut store = self.params.clone();
                for (name, value) in buffers.iter() {
                    store.insert(name, value.clone());
                }
                store
            })
        };
        let store = merged.as_ref().unwrap_or(&self.params);
        let mut outputs = forward.compiled.run(generator, &inputs, store)?.into_iter();
        let (_, y) = outputs
            .next()
            .expect("invariant: a traced graph's first output is y");
        if outputs.len() > 0 || !forward.tracked.is_empty() {
            let mut buffers = self.lock_buffers();
            for (name, value) in outputs {
                let entry = name
                    .strip_suffix(".next")
                    .expect("invariant: a traced graph's further outputs are updates");
                buffers.insert(entry, value);
            }
            for (counter, calls) in &forward.tracked {
                count_batches(&mut buffers, counter, *calls);
            }
        }
        Ok(y)
    }

    /// Monte Carlo dropout: `samples` forward passes of `x` with every dropout drawing and
    /// every other module in its own mode ([`crate::nn::trace_mc`]; the model's train/eval
    /// flags are not touched), their outputs and summaries ([`McPrediction`]).
    ///
    /// One compiled call computes every sample ([`crate::passes::batch_samples()`]): the part of
    /// the model before its first dropout runs once, the rest on all samples at once. The call
    /// claims `samples` steps of `generator`; sample `s` of a call at step `t` draws at step
    /// `t + s`, so it equals [`Traced::mc_forward`] at that step, bit for bit with
    /// [`crate::Gemm::Reference`] (within rounding with the blocked GEMM, whose blocking
    /// depends on the rows, with the same masks).
    ///
    /// Errors: [`Error::McSamples`] for 0 samples, and [`Error::StepsExhausted`] if the steps
    /// would pass 2^32 (nothing claimed), besides the forward's own.
    pub fn mc_predict(
        &self,
        x: &Tensor,
        samples: usize,
        generator: &mut Generator,
    ) -> Result<McPrediction> {
        if samples == 0 {
            return Err(Error::McSamples { samples });
        }
        // The steps are checked before compiling a graph of that many samples; the run
        // claims them from here, or fails claiming none.
        let first = u32::try_from(generator.step())
            .ok()
            .filter(|&t| u64::from(t) + samples as u64 <= 1 << 32)
            .ok_or(Error::StepsExhausted {
                seed: generator.seed(),
            })?;
        let forward = self.compile_forward(&x.ty(), Dropouts::Samples(samples))?;
        let stacked = self.run(&forward, x, generator)?;
        // A graph that draws nothing (no dropout, or p = 0 everywhere) claims fewer steps:
        // the call still moves the generator by one step per sample, as it says.
        let claimed = generator.step() - u64::from(first);
        if let Ok(rest) = u32::try_from(samples as u64 - claimed)
            && rest > 0
        {
            generator.claim_steps(rest)?;
        }
        Ok(McPrediction::of_samples(stacked, first))
    }

    /// One Monte Carlo forward of `x`: every dropout draws, every other module in its own
    /// mode ([`crate::nn::trace_mc`]); claims one step of `generator`. Sample `s` of
    /// [`Traced::mc_predict`] at step `t` is this at step `t + s`.
    pub fn mc_forward(&self, x: &Tensor, generator: &mut Generator) -> Result<Tensor> {
        let forward = self.compile_forward(&x.ty(), Dropouts::AllDraw)?;
        self.run(&forward, x, generator)
    }

    /// Switches the model to train mode.
    pub fn train(&mut self) {
        self.model.train();
    }

    /// Switches the model to eval mode.
    pub fn eval(&mut self) {
        self.model.eval();
    }

    /// True if the model is in train mode.
    pub fn is_training(&self) -> bool {
        self.model.is_training()
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The parameter store every compilation runs on: the model's parameters (current
    /// values, updated by training) and, once an optimizer has stepped, its state
    /// (`fc1.weight.momentum_buffer`).
    pub fn parameters(&self) -> &ParameterStore {
        &self.params
    }

    /// The model's parameters with their current values, in `named_parameters` order.
    pub fn named_parameters(&self) -> Vec<(&str, &Tensor)> {
        (self.param_names.iter())
            .map(|name| {
                let value = (self.params.get(name))
                    .expect("invariant: the store holds every parameter of the model");
                (name.as_str(), value)
            })
            .collect()
    }

    /// The current value of parameter (or optimizer state entry) `name`.
    pub fn parameter(&self, name: &str) -> Option<&Tensor> {
        self.params.get(name)
    }

    /// The model's buffers (`bn1.running_mean`, `bn1.running_var`,
    /// `bn1.num_batches_tracked`) with their current values, in name order: state that
    /// train-mode runs update, which no optimizer sees and checkpoints save.
    pub fn named_buffers(&self) -> Vec<(String, Tensor)> {
        (self.lock_buffers().iter())
            .map(|(name, t)| (name.to_string(), t.clone()))
            .collect()
    }

    /// The current value of buffer `name`.
    pub fn buffer(&self, name: &str) -> Option<Tensor> {
        self.lock_buffers().get(name).cloned()
    }

    /// The number of compiled graphs (one per input shape and mode used so far, and one per
    /// training step configuration).
    pub fn compilations(&self) -> usize {
        self.cache.len()
    }

    /// The model back. Its modules keep the values they were built with; the trained values
    /// are in [`Traced::into_parts`]'s store.
    pub fn into_model(self) -> M {
        self.model
    }

    /// The model and the store holding the trained parameters (and optimizer state and
    /// buffers).
    pub fn into_parts(self) -> (M, ParameterStore) {
        let mut params = self.params;
        let buffers = self
            .buffers
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, value) in buffers.iter() {
            params.insert(name, value.clone());
        }
        (self.model, params)
    }

    /// The training step's graph for a batch of type `input` and targets of type `targets`
    /// in the current mode: the traced forward, `loss`, every gradient and `optimizer`'s
    /// update ([`crate::train::step_graph`]). What [`Traced::train_step`] compiles.
    pub fn train_step_graph(
        &self,
        input: &TensorType,
        targets: &TensorType,
        loss: Loss,
        optimizer: &dyn Optimizer,
    ) -> Result<StepGraph> {
        step_graph(&self.graph(input)?, loss, targets, optimizer)
    }

    /// One training step on batch `x` with `targets`, drawing from the thread's default
    /// generator; see [`Traced::train_step_with`].
    pub fn train_step(
        &mut self,
        x: &Tensor,
        targets: &Tensor,
        loss: Loss,
        optimizer: &mut dyn Optimizer,
    ) -> Result<f32> {
        with_default_generator(|g| self.train_step_with(x, targets, loss, optimizer, g))
    }

    /// One training step: forward (in the current mode: train-mode dropout draws masks),
    /// `loss` against `targets` (`i32` classes `[N]` for cross-entropy, the output's type for
    /// MSE), backward (each dropout's gradient recomputes its mask at the same step) and
    /// `optimizer`'s update of the parameters and its state in the store. Claims one step
    /// of `generator` (in eval mode too) and counts one step of the optimizer; returns the
    /// loss (before the update). Compiles on the first call for these types (see
    /// [`Traced`]). On an error the parameters and the optimizer are unchanged.
    pub fn train_step_with(
        &mut self,
        x: &Tensor,
        targets: &Tensor,
        loss: Loss,
        optimizer: &mut dyn Optimizer,
        generator: &mut Generator,
    ) -> Result<f32> {
        let (structure, training) = (optimizer.step_structure(), self.is_training());
        let found = self.steps.iter().position(|(k, _, _)| {
            (k.input.shape == *x.shape() && k.input.dtype == x.dtype())
                && (k.targets.shape == *targets.shape() && k.targets.dtype == targets.dtype())
                && (k.loss, k.training) == (loss, training)
                && k.optimizer == structure
                && k.parameters == optimizer.parameters()
        });
        let index = match found {
            Some(index) => index,
            None => {
                let key = StepKey {
                    input: x.ty(),
                    targets: targets.ty(),
                    loss,
                    optimizer: structure,
                    parameters: optimizer.parameters().to_vec(),
                    training,
                };
                let built = self.train_step_graph(&key.input, &key.targets, loss, optimizer)?;
                let tracked = batches_tracked(&built.graph);
                let compiled = self.cache.get(&built.graph, Mode::Train)?;
                optim::init_state(optimizer, &mut self.params)?;
                let step = CompiledStep::new(compiled, built.updated)?;
                self.steps.push((key, step, tracked));
                self.steps.len() - 1
            }
        };
        let (_, step, tracked) = &mut self.steps[index];
        let feed = [("x", x), ("targets", targets)];
        // The buffers join the store for the step, which swaps the new running statistics
        // in with the parameters, and leave it after.
        let buffers = self
            .buffers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let names: Vec<String> = buffers.iter().map(|(n, _)| n.to_string()).collect();
        for name in &names {
            let value = buffers
                .remove(name)
                .expect("invariant: listed from the buffers");
            self.params.insert(name.clone(), value);
        }
        let result = step
            .run(generator, &mut self.params, optimizer, &feed)
            .map(|results| results[0].1.as_f32().expect("invariant: the loss is f32")[0]);
        for name in names {
            let value = (self.params.remove(&name)).expect("invariant: a step keeps every entry");
            buffers.insert(name, value);
        }
        if result.is_ok() {
            for (counter, calls) in tracked.iter() {
                count_batches(buffers, counter, *calls);
            }
        }
        result
    }

    /// Saves the parameters, `optimizer`'s state and step count and `generator`'s seed and
    /// step as a safetensors file ([`crate::checkpoint`]).
    pub fn save_checkpoint(
        &self,
        path: impl AsRef<Path>,
        optimizer: &dyn Optimizer,
        generator: &Generator,
    ) -> Result<()> {
        let buffers = self.lock_buffers();
        let mut entries = checkpoint::entries(&self.param_names, optimizer);
        entries.extend(buffers.iter().map(|(name, _)| name.to_string()));
        let mut store = self.params.clone();
        for (name, value) in buffers.iter() {
            store.insert(name, value.clone());
        }
        checkpoint::save(path.as_ref(), &store, &entries, optimizer, generator)
    }

    /// Loads a checkpoint saved by [`Traced::save_checkpoint`] into the parameters and
    /// `optimizer` (state and step count) and returns the generator to continue with: the
    /// run then continues bit for bit as if it had not stopped. A file whose entries do not
    /// fit this model and optimizer is an [`crate::Error::CheckpointMismatch`] naming the
    /// entry; nothing changes on an error.
    pub fn load_checkpoint(
        &mut self,
        path: impl AsRef<Path>,
        optimizer: &mut dyn Optimizer,
    ) -> Result<Generator> {
        let buffers = self
            .buffers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let mut entries = checkpoint::entries(&self.param_names, optimizer);
        let names: Vec<String> = buffers.iter().map(|(n, _)| n.to_string()).collect();
        entries.extend(names.iter().cloned());
        // Loaded into one store, the buffers beside the parameters, then split again.
        let mut store = self.params.clone();
        for (name, value) in buffers.iter() {
            store.insert(name, value.clone());
        }
        let generator = checkpoint::load(path.as_ref(), &mut store, &entries, optimizer)?;
        for name in names {
            let value = store
                .remove(&name)
                .expect("invariant: loading keeps every entry");
            buffers.insert(name, value);
        }
        self.params = store;
        Ok(generator)
    }
}

impl<M: Module> Parameters for Traced<M> {
    fn parameter_names(&self) -> Vec<String> {
        self.param_names.clone()
    }
}

impl<M: Module> fmt::Display for Traced<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(&self.model, f)
    }
}
