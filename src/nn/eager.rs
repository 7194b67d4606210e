//! Eager execution: the default generator and the one-node graphs behind eager module calls.
//!
//! - **The default generator** is thread-local, so parallel tests never share one. Each thread
//!   starts at [`DEFAULT_SEED`] (PyTorch's default seed); [`manual_seed`] resets the calling
//!   thread's generator, [`with_generator`] lends it an explicit one for the length of a
//!   closure (eager and traced calls inside use it), and [`randn`] draws from it.
//! - **Eager calls** build a one-node graph (`x -> y`, parameters `weight` and `bias`) for the
//!   call's op, shape and mode, compile it once through a process-wide
//!   [`CompileCache`] and reuse it: the first call of a shape compiles, the later ones only run.
//!   Calls that do not draw masks (linear, relu, eval-mode dropout) compile in eval mode and
//!   leave the generator untouched; a train-mode dropout call claims one generator step.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use super::var::Var;
use crate::compile::{CompileCache, Compiler};
use crate::error::{Error, Result};
use crate::graph::Mode;
use crate::graph::{Builder, Graph, Naming, Op, Shape, TensorType};
use crate::rng::Generator;
use crate::runtime::ParameterStore;
use crate::tensor::Tensor;

/// The seed of every thread's default generator until [`manual_seed`] (PyTorch's default).
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

thread_local! {
    static GENERATOR: RefCell<Generator> = RefCell::new(Generator::new(DEFAULT_SEED));
}

/// Resets the calling thread's default generator to `seed` at step 0
/// (`torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    GENERATOR.with(|g| *g.borrow_mut() = Generator::new(seed));
}

/// A copy of the calling thread's default generator (its seed and the step the next
/// train-mode call will use).
pub fn default_generator() -> Generator {
    GENERATOR.with(|g| g.borrow().clone())
}

/// Runs `f` with `generator` as the thread's default generator, then restores the previous
/// one; `generator` comes back advanced by whatever `f` drew. Nested calls work.
pub fn with_generator<R>(generator: &mut Generator, f: impl FnOnce() -> R) -> R {
    /// Swaps back on drop, so a panic in `f` restores the default too.
    struct SwapBack<'a>(&'a mut Generator);
    impl Drop for SwapBack<'_> {
        fn drop(&mut self) {
            GENERATOR.with(|g| std::mem::swap(&mut *g.borrow_mut(), self.0));
        }
    }
    GENERATOR.with(|g| std::mem::swap(&mut *g.borrow_mut(), generator));
    let _restore = SwapBack(generator);
    f()
}

/// Runs `f` on the calling thread's default generator.
pub(crate) fn with_default_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    GENERATOR.with(|g| f(&mut g.borrow_mut()))
}

/// A standard normal `f32` tensor from the default generator (`torch.randn`), drawn by
/// [`Generator::normal`]; fails if the memory cannot be had.
pub fn randn(shape: impl Into<Shape>) -> Result<Var> {
    Ok(Var::new(with_default_generator(|g| {
        g.normal(shape, 0.0, 1.0)
    })?))
}

/// The process-wide cache of eager one-node graphs.
fn cache() -> &'static CompileCache {
    static CACHE: OnceLock<CompileCache> = OnceLock::new();
    CACHE.get_or_init(|| CompileCache::new(Compiler::new()))
}

/// The number of one-node graphs eager calls have compiled in this process so far (each
/// distinct op, shape and mode once).
pub fn eager_compilations() -> usize {
    cache().len()
}

/// Runs an eager call's own `graph` (compiled once per graph and mode through the eager
/// cache) in `mode` on `inputs` and `params`. A throwaway generator serves a train-mode run:
/// an op that draws nothing (batch norm's statistics) leaves the default generator alone.
pub(crate) fn run_eager(
    graph: &Graph,
    mode: Mode,
    inputs: &BTreeMap<String, Tensor>,
    params: &ParameterStore,
) -> Result<Vec<(String, Tensor)>> {
    let compiled = cache().get(graph, mode)?;
    compiled.run(&mut Generator::new(0), inputs, params)
}

/// One eager call: `op` of the input `x` and the named parameters.
/// The forward of a module with parameters (`weight`, `bias` in its own `store`, with types
/// `parameters`) computing `op`: eagerly, or traced as a node named by the module's path with
/// parameters `<path>.weight`, ... (the same in every mode).
pub(crate) fn parametric_forward(
    module: &dyn super::module::Module,
    op: Op,
    x: &Var,
    store: &ParameterStore,
    parameters: Vec<(&'static str, TensorType)>,
) -> Result<Var> {
    use super::var::Repr;
    match &x.repr {
        Repr::Eager(t) => {
            let label = super::module::ModuleDisplay::new(module).to_string();
            let call = Call {
                op,
                mode: Mode::Eval,
                module: &label,
                parameters,
            };
            // The generator is never touched in eval mode; pass a throwaway one rather than
            // borrowing the thread's default.
            let y = call.run(t, store, Some(&mut Generator::new(0)))?;
            Ok(Var::new(y))
        }
        Repr::Traced(node) => {
            let path = node
                .module_path(module)
                .ok_or_else(|| Error::UnregisteredModule {
                    module: super::module::ModuleDisplay::new(module).to_string(),
                })?;
            let parameters: Vec<(String, TensorType)> = (parameters.into_iter())
                .map(|(name, ty)| (format!("{path}.{name}"), ty))
                .collect();
            node.apply(&path, op, &parameters)
        }
    }
}

pub(crate) struct Call<'a> {
    /// What the call computes.
    pub op: Op,
    /// Train mode only for a dropout that draws a mask.
    pub mode: Mode,
    /// The module as displayed, for errors.
    pub module: &'a dyn fmt::Display,
    /// Parameter names (`weight`, `bias`) and types, in operand order after `x`.
    pub parameters: Vec<(&'static str, TensorType)>,
}

impl Call<'_> {
    /// The one-node graph, output `y`; `with_mask`, the dropout's keep mask too, output
    /// `mask` (only dropout calls have one). An operand that does not fit becomes
    /// [`Error::Module`].
    fn graph(&self, x: &TensorType, with_mask: bool) -> Result<Graph> {
        let mut graph = Graph::new("eager");
        let mut b = Builder::new(&mut graph, Naming::Exact);
        let mut operands = vec![b.input("x", x.clone())?];
        for (name, ty) in &self.parameters {
            operands.push(b.parameter(name, ty.clone())?);
        }
        let added = if with_mask {
            let Op::Dropout(dropout) = &self.op else {
                panic!("invariant: only dropout calls have a mask");
            };
            let both = b.dropout_with_mask("y", dropout.clone(), operands[0]);
            both.map(|(y, mask)| (y, Some(mask)))
        } else {
            b.node("y", self.op.clone(), &operands).map(|y| (y, None))
        };
        let (y, mask) = added.map_err(|e| match e {
            Error::Type { detail, .. } => Error::Module {
                module: self.module.to_string(),
                detail,
            },
            other => other,
        })?;
        b.output("y", y)?;
        if let Some(mask) = mask {
            b.output("mask", mask)?;
        }
        Ok(graph)
    }

    /// Compiles (once per op, shape and mode) and runs the call on a copy of `x` with
    /// `params`, drawing from `generator` or, if `None`, from the thread's default generator.
    pub(crate) fn run(
        &self,
        x: &Tensor,
        params: &ParameterStore,
        generator: Option<&mut Generator>,
    ) -> Result<Tensor> {
        // A run binds owned inputs, so a borrowed value is copied.
        let inputs = BTreeMap::from([("x".to_string(), x.clone())]);
        self.run_bound(&inputs, params, generator)
    }

    /// Like [`Call::run`], replacing `x` by the result without copying it; on an error `x`
    /// keeps its value.
    pub(crate) fn run_in_place(
        &self,
        x: &mut Tensor,
        params: &ParameterStore,
        generator: Option<&mut Generator>,
    ) -> Result<()> {
        let taken = std::mem::replace(x, Tensor::scalar(0.0));
        let mut inputs = BTreeMap::from([("x".to_string(), taken)]);
        let result = self.run_bound(&inputs, params, generator);
        let original = inputs
            .remove("x")
            .expect("invariant: the input is still bound");
        *x = match result {
            Ok(y) => y,
            Err(e) => {
                *x = original;
                return Err(e);
            }
        };
        Ok(())
    }

    /// Runs a dropout call and returns its result and its keep mask: the graph with a
    /// second output `mask`, the dropout's `dropout_mask` (an all-true constant after the
    /// eval-mode passes). `self.op` has to be a dropout.
    pub(crate) fn run_with_mask(
        &self,
        x: &Tensor,
        generator: Option<&mut Generator>,
    ) -> Result<(Tensor, Tensor)> {
        let graph = self.graph(&x.ty(), true)?;
        let inputs = BTreeMap::from([("x".to_string(), x.clone())]);
        let outputs = self.execute(&graph, &inputs, &ParameterStore::new(), generator)?;
        let [(_, y), (_, mask)] = <[_; 2]>::try_from(outputs)
            .unwrap_or_else(|_| panic!("invariant: the graph has outputs y and mask"));
        Ok((y, mask))
    }

    fn run_bound(
        &self,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
        generator: Option<&mut Generator>,
    ) -> Result<Tensor> {
        let x = inputs.get("x").expect("invariant: x is bound");
        let graph = self.graph(&x.ty(), false)?;
        let mut outputs = self.execute(&graph, inputs, params, generator)?;
        let (_, y) = outputs
            .pop()
            .expect("invariant: a one-node graph has one output");
        Ok(y)
    }

    /// Compiles `graph` (once per graph and mode) and runs it.
    fn execute(
        &self,
        graph: &Graph,
        inputs: &BTreeMap<String, Tensor>,
        params: &ParameterStore,
        generator: Option<&mut Generator>,
    ) -> Result<Vec<(String, Tensor)>> {
        let compiled = cache().get(graph, self.mode)?;
        match generator {
            Some(generator) => compiled.run(generator, inputs, params),
            None => with_default_generator(|g| compiled.run(g, inputs, params)),
        }
    }
}
