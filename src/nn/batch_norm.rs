//! [`BatchNormNd`]: `nn.BatchNorm1d/2d/3d` with PyTorch's defaults, and how its running
//! statistics are written back.
//!
//! The module holds `weight` (ones) and `bias` (zeros) as parameters (if affine) and
//! `running_mean` (zeros), `running_var` (ones) and `num_batches_tracked` (an `i32[]` 0;
//! PyTorch's is int64) as **buffers**: state, not trainable, never given to an optimizer, but
//! saved in checkpoints under PyTorch's names (`bn1.running_mean`, ...).
//!
//! - **Train mode** normalizes with the batch's statistics and updates the running ones
//!   (momentum 0.1, the variance unbiased) and `num_batches_tracked` (+1 per call). Traced,
//!   the call adds a `batch_norm` node and the `batch_norm_running_mean/var` nodes
//!   `bn1.running_mean.update`, ..., whose values the graph outputs as
//!   `bn1.running_mean.next`, ...: every train-mode run of the compiled forward or training
//!   step writes them into the store ([`crate::nn::Traced`]). A second call of the module in
//!   one forward updates the first call's result, as PyTorch's calls do one after another.
//!   Eager, the call updates the module's own buffers.
//! - **Eval mode** (and a Monte Carlo trace, which is eval mode but for dropout) normalizes
//!   with the running statistics and updates nothing. Its node says so
//!   (`running_stats = true`), so a batch norm switched to eval alone (frozen) keeps its
//!   running statistics in a graph that trains its dropouts.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::eager::run_eager;
use super::module::{Module, ModuleDisplay, fmt_module, python_float};
use super::trace::TracedNode;
use super::var::{Repr, Var};
use crate::error::{Error, Result, TypeError};
use crate::graph::batch_norm::{DEFAULT_EPS, DEFAULT_MOMENTUM};
use crate::graph::{BatchNorm, Builder, Graph, Mode, Naming, Op, Running, Stat, TensorType};
use crate::runtime::ParameterStore;
use crate::tensor::Tensor;

/// `nn.BatchNorm1d` (`[N, C]` or `[N, C, L]`), `nn.BatchNorm2d` (`[N, C, H, W]`) or
/// `nn.BatchNorm3d` (`[N, C, D, H, W]`), by the number of spatial dimensions it was made for.
pub struct BatchNormNd {
    /// 1, 2 or 3: the `d` of its name.
    dims: usize,
    num_features: usize,
    eps: f64,
    momentum: f64,
    affine: bool,
    training: AtomicBool,
    /// `weight` and `bias`, if affine.
    params: ParameterStore,
    /// `running_mean`, `running_var` and `num_batches_tracked`, updated by train-mode eager
    /// calls.
    buffers: Mutex<ParameterStore>,
}

/// The buffers' local names.
pub(crate) const RUNNING_MEAN: &str = "running_mean";
pub(crate) const RUNNING_VAR: &str = "running_var";
pub(crate) const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

impl BatchNormNd {
    /// A batch norm over `num_features` channels for inputs with `dims` spatial dimensions
    /// (1 to 3; 1 also takes `[N, C]`), with PyTorch's defaults: eps 1e-5, momentum 0.1,
    /// affine (weight ones, bias zeros), running mean zeros, running variance ones, in train
    /// mode.
    pub fn new(dims: usize, num_features: usize) -> Result<BatchNormNd> {
        if !(1..=3).contains(&dims) {
            return Err(Error::Module {
                module: format!("BatchNorm{dims}d"),
                detail: TypeError::BatchNorm {
                    op: "batch_norm",
                    reason: format!("batch norm is 1d, 2d or 3d, but {dims}d was asked for"),
                },
            });
        }
        let c = TensorType::f32([num_features]);
        let mut params = ParameterStore::new();
        params.insert(
            "weight",
            Tensor::from_f32([num_features], vec![1.0; num_features])?,
        );
        params.insert("bias", Tensor::zeros(&c)?);
        let mut buffers = ParameterStore::new();
        buffers.insert(RUNNING_MEAN, Tensor::zeros(&c)?);
        buffers.insert(
            RUNNING_VAR,
            Tensor::from_f32([num_features], vec![1.0; num_features])?,
        );
        buffers.insert(NUM_BATCHES_TRACKED, Tensor::from_i32(Vec::new(), vec![0])?);
        Ok(BatchNormNd {
            dims,
            num_features,
            eps: DEFAULT_EPS,
            momentum: DEFAULT_MOMENTUM,
            affine: true,
            training: AtomicBool::new(true),
            params,
            buffers: Mutex::new(buffers),
        })
    }

    /// `nn.BatchNorm1d(num_features)`.
    pub fn new1d(num_features: usize) -> Result<BatchNormNd> {
        BatchNormNd::new(1, num_features)
    }

    /// `nn.BatchNorm2d(num_features)`.
    pub fn new2d(num_features: usize) -> Result<BatchNormNd> {
        BatchNormNd::new(2, num_features)
    }

    /// `nn.BatchNorm3d(num_features)`.
    pub fn new3d(num_features: usize) -> Result<BatchNormNd> {
        BatchNormNd::new(3, num_features)
    }

    /// Sets `eps`.
    pub fn eps(mut self, eps: f64) -> BatchNormNd {
        self.eps = eps;
        self
    }

    /// Sets `momentum` (the weight of a batch's statistics in the running ones).
    pub fn momentum(mut self, momentum: f64) -> BatchNormNd {
        self.momentum = momentum;
        self
    }

    /// `affine = False`: no weight and bias.
    pub fn without_affine(mut self) -> BatchNormNd {
        self.affine = false;
        self.params = ParameterStore::new();
        self
    }

    /// The value of buffer `name` (`running_mean`, `running_var`, `num_batches_tracked`):
    /// the module's own, which eager train-mode calls update ([`crate::nn::Traced`] keeps its
    /// copy in its store).
    pub fn buffer(&self, name: &str) -> Option<Tensor> {
        self.lock_buffers().get(name).cloned()
    }

    fn lock_buffers(&self) -> MutexGuard<'_, ParameterStore> {
        // Updates swap whole entries: a panic cannot leave one half-written.
        self.buffers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn op(&self) -> Op {
        // In eval mode, the running statistics in every mode, so a module switched to eval
        // alone (a frozen batch norm) keeps them in a graph that trains.
        Op::BatchNorm(BatchNorm {
            eps: self.eps,
            affine: self.affine,
            running_stats: !self.is_training(),
        })
    }

    fn running(&self, stat: Stat) -> Op {
        Op::BatchNormRunning(Running {
            stat,
            momentum: self.momentum,
        })
    }

    /// The parameters' and running statistics' local names and types, in operand order after
    /// the input.
    fn operand_types(&self) -> Vec<(&'static str, TensorType)> {
        let c = TensorType::f32([self.num_features]);
        let mut names = vec![RUNNING_MEAN, RUNNING_VAR];
        if self.affine {
            names.extend(["weight", "bias"]);
        }
        names.into_iter().map(|n| (n, c.clone())).collect()
    }

    /// PyTorch's `_check_input_dim`: `[N, C]` or `[N, C, L]` for 1d, `[N, C, H, W]` for 2d,
    /// `[N, C, D, H, W]` for 3d.
    fn check_rank(&self, rank: usize) -> Result<()> {
        let expected = match self.dims {
            1 => "2D or 3D",
            2 => "4D",
            _ => "5D",
        };
        let fits = match self.dims {
            1 => rank == 2 || rank == 3,
            d => rank == d + 2,
        };
        if fits {
            return Ok(());
        }
        Err(Error::Module {
            module: ModuleDisplay::new(self).to_string(),
            detail: TypeError::BatchNorm {
                op: "batch_norm",
                reason: format!("expected {expected} input (got {rank}D input)"),
            },
        })
    }

    /// The error of an input that does not fit, as a module error.
    fn module_error(&self, error: Error) -> Error {
        match error {
            Error::Type { detail, .. } => Error::Module {
                module: ModuleDisplay::new(self).to_string(),
                detail,
            },
            other => other,
        }
    }

    /// One call on a concrete value: a graph of the call (and, in train mode, the running
    /// statistics), compiled once per shape and mode, run on the module's values; in train
    /// mode the module's buffers take the new statistics.
    fn eager(&self, x: &Tensor) -> Result<Tensor> {
        let training = self.is_training();
        let mut graph = Graph::new("eager");
        let mut b = Builder::new(&mut graph, Naming::Exact);
        let mut operands = vec![b.input("x", x.ty())?];
        for (name, ty) in self.operand_types() {
            operands.push(b.parameter(name, ty)?);
        }
        let y = (b.node("y", self.op(), &operands)).map_err(|e| self.module_error(e))?;
        b.output("y", y)?;
        if training {
            for (stat, name, operand) in [
                (Stat::Mean, RUNNING_MEAN, operands[1]),
                (Stat::Var, RUNNING_VAR, operands[2]),
            ] {
                let next = b.node(
                    &format!("{name}.next"),
                    self.running(stat),
                    &[operands[0], operand],
                )?;
                b.output(&format!("{name}.next"), next)?;
            }
        }
        let mode = if training { Mode::Train } else { Mode::Eval };
        let mut buffers = self.lock_buffers();
        let mut store = self.params.clone();
        for (name, value) in buffers.iter() {
            store.insert(name, value.clone());
        }
        let inputs = [("x".to_string(), x.clone())].into();
        let mut outputs = run_eager(&graph, mode, &inputs, &store)
            .map_err(|e| self.module_error(e))?
            .into_iter();
        let (_, y) = outputs
            .next()
            .expect("invariant: the call's graph outputs y");
        for (name, value) in outputs {
            let entry = name
                .strip_suffix(".next")
                .expect("invariant: updates end in .next");
            buffers.insert(entry, value);
        }
        if training {
            count_batches(&mut buffers, NUM_BATCHES_TRACKED, 1);
        }
        Ok(y)
    }

    /// One traced call: `batch_norm` under the module's path, reading `<path>.weight`, ...
    /// and, in a train-mode (not Monte Carlo) trace, the running statistics' updates.
    fn traced(&self, node: &TracedNode) -> Result<Var> {
        let path = node
            .module_path(self)
            .ok_or_else(|| Error::UnregisteredModule {
                module: ModuleDisplay::new(self).to_string(),
            })?;
        let updates = self.is_training() && !node.dropout_always_draws();
        let entries = [RUNNING_MEAN, RUNNING_VAR].map(|n| format!("{path}.{n}"));
        let latest = entries.clone().map(|e| node.updated(&e));
        let (y, next) = node
            .build(|b, x| {
                let mut operands = vec![x];
                for (name, ty) in self.operand_types() {
                    let name = format!("{path}.{name}");
                    let id = match b.graph().find(&name) {
                        Some(id) => id,
                        None => b.parameter(&name, ty)?,
                    };
                    operands.push(id);
                }
                let y = b.node(&path, self.op(), &operands)?;
                let mut next = Vec::new();
                if updates {
                    for (k, stat) in [Stat::Mean, Stat::Var].into_iter().enumerate() {
                        // A later call updates the earlier call's result.
                        let running = latest[k].unwrap_or(operands[1 + k]);
                        let name = format!("{}.update", entries[k]);
                        next.push(b.node(&name, self.running(stat), &[x, running])?);
                    }
                }
                Ok((y, next))
            })
            .map_err(|e| self.module_error(e))?;
        for (entry, id) in entries.iter().zip(next) {
            node.update(entry, id);
        }
        Ok(node.value(y))
    }
}

/// Adds `calls` to the `i32[]` counter `name` of `store` (saturating; PyTorch's counter is
/// int64).
pub(crate) fn count_batches(store: &mut ParameterStore, name: &str, calls: i32) {
    let Some(counter) = store.get_mut(name) else {
        return;
    };
    if let Some(values) = counter.as_i32_mut() {
        for v in values.iter_mut() {
            *v = v.saturating_add(calls);
        }
    }
}

/// The `num_batches_tracked` counters a train-mode run of `graph` advances, with the number
/// of calls each counts: one per `batch_norm_running_mean` node on the chain behind each
/// output `<path>.running_mean.next` (a module called twice updates its first call's
/// result).
pub(crate) fn batches_tracked(graph: &Graph) -> Vec<(String, i32)> {
    let suffix = format!(".{RUNNING_MEAN}.next");
    (graph.outputs().iter())
        .filter_map(|output| {
            let path = output.name.strip_suffix(&suffix)?;
            let mut calls = 0;
            let mut id = output.node;
            while let Op::BatchNormRunning(Running {
                stat: Stat::Mean, ..
            }) = graph[id].op
            {
                calls += 1;
                id = graph.operands_of(id)[1];
            }
            Some((format!("{path}.{NUM_BATCHES_TRACKED}"), calls))
        })
        .filter(|(_, calls)| *calls > 0)
        .collect()
}

impl Module for BatchNormNd {
    fn forward(&self, x: &Var) -> Result<Var> {
        self.check_rank(x.shape().rank())?;
        match &x.repr {
            Repr::Eager(t) => Ok(Var::new(self.eager(t)?)),
            Repr::Traced(node) => self.traced(node),
        }
    }

    fn local_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        ["weight", "bias"]
            .into_iter()
            .filter_map(|name| Some((name, self.params.get(name)?)))
            .collect()
    }

    fn local_buffers(&self) -> Vec<(&'static str, Tensor)> {
        let buffers = self.lock_buffers();
        [RUNNING_MEAN, RUNNING_VAR, NUM_BATCHES_TRACKED]
            .into_iter()
            .map(|n| {
                (
                    n,
                    buffers
                        .get(n)
                        .expect("invariant: every buffer exists")
                        .clone(),
                )
            })
            .collect()
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn name(&self) -> String {
        format!("BatchNorm{}d", self.dims)
    }

    fn extra_repr(&self) -> String {
        let python = |on: bool| if on { "True" } else { "False" };
        format!(
            "{}, eps={}, momentum={}, affine={}, track_running_stats=True",
            self.num_features,
            python_float(self.eps),
            python_float(self.momentum),
            python(self.affine)
        )
    }
}

impl fmt::Display for BatchNormNd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

impl fmt::Debug for BatchNormNd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
