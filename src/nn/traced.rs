//! [`Traced`]: a model run as one compiled graph per input shape and mode.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::eager::with_default_generator;
use super::module::{Module, fmt_module};
use super::trace::trace;
use crate::compile::{CompileCache, CompiledGraph, Compiler, ParameterStore};
use crate::error::Result;
use crate::graph::{Graph, TensorType};
use crate::interp::Mode;
use crate::rng::Generator;
use crate::tensor::Tensor;

/// A model whose `forward` is traced into one graph (every dropout in it, fused by the
/// compiler) and compiled through a [`CompileCache`]: once per input shape and mode.
///
/// The model's parameters are collected into one [`ParameterStore`] when the `Traced` is
/// made (the one copy); every compilation, train or eval, runs on that store. A train-mode
/// run claims one generator step and every dropout call site draws its own stream at that
/// step (see [`crate::nn::trace`]).
pub struct Traced<M> {
    model: M,
    params: ParameterStore,
    cache: CompileCache,
}

impl<M: Module> Traced<M> {
    /// Wraps `model`, compiling with the default [`Compiler`] options.
    pub fn new(model: M) -> Traced<M> {
        Traced::with_compiler(model, Compiler::new())
    }

    /// Wraps `model`, compiling with `compiler`'s options (its mode is chosen per run).
    pub fn with_compiler(model: M, compiler: Compiler) -> Traced<M> {
        let params = (model.named_parameters().into_iter())
            .map(|(name, t)| (name, t.clone()))
            .collect();
        Traced {
            model,
            params,
            cache: CompileCache::new(compiler),
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
    pub fn compile(&self, input: &TensorType) -> Result<Arc<CompiledGraph>> {
        let graph = self.graph(input)?;
        let has_dropout = graph.node_ids().any(|id| graph.node(id).op.is_dropout());
        let mode = if has_dropout { Mode::Train } else { Mode::Eval };
        self.cache.get(&graph, mode)
    }

    /// Runs the model on `x`, drawing from the thread's default generator.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let compiled = self.compile(&x.ty())?;
        with_default_generator(|g| self.run(&compiled, x, g))
    }

    /// Runs the model on `x`, drawing from `generator`.
    pub fn forward_with(&self, x: &Tensor, generator: &mut Generator) -> Result<Tensor> {
        let compiled = self.compile(&x.ty())?;
        self.run(&compiled, x, generator)
    }

    fn run(
        &self,
        compiled: &CompiledGraph,
        x: &Tensor,
        generator: &mut Generator,
    ) -> Result<Tensor> {
        // A run binds owned inputs, so the borrowed input is copied.
        let inputs = BTreeMap::from([("x".to_string(), x.clone())]);
        let mut outputs = compiled.run(generator, &inputs, &self.params)?;
        let (_, y) = outputs
            .pop()
            .expect("invariant: a traced graph has one output");
        Ok(y)
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

    /// The parameter store every compilation runs on.
    pub fn parameters(&self) -> &ParameterStore {
        &self.params
    }

    /// The number of compiled graphs (one per input shape and mode used so far).
    pub fn compilations(&self) -> usize {
        self.cache.len()
    }

    /// The model back.
    pub fn into_model(self) -> M {
        self.model
    }
}

impl<M: Module> fmt::Display for Traced<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(&self.model, f)
    }
}
