//! Batch normalization (`torch.nn.functional.batch_norm`): its attributes, its shape rule and
//! its definition, which depends on the [`crate::graph::Mode`].
//!
//! An input `x: [N, C, ...]` (rank 2 to 5 in PyTorch's modules; any rank >= 2 here) is
//! normalized per channel `c` over the `n = N · prod(spatial)` elements of that channel. Its
//! statistics `(mean, var)` are
//! - in [`Mode::Train`](crate::graph::Mode::Train), the batch's: with `xs` the channel's
//!   elements in row-major order of `(N, spatial...)`,
//!   `mean = (0 + xs[0] + xs[1] + ...) / n`, then
//!   `var = (0 + (xs[0] - mean)² + ...) / n` (biased; each square is `d * d`); `n = 1` is an
//!   error, as in PyTorch ("Expected more than 1 value per channel when training");
//! - in [`Mode::Eval`](crate::graph::Mode::Eval) and [`Mode::Mc`](crate::graph::Mode::Mc),
//!   and in every mode with `running_stats = true` (PyTorch's `F.batch_norm(...,
//!   training=False)`: a module in eval mode inside a graph that trains, as a frozen batch
//!   norm is), the running statistics `(running_mean[c], running_var[c])`.
//!
//! Then every element is one per-channel affine map, as PyTorch's CPU kernel computes it:
//!
//! ```text
//! scale = weight[c] / sqrt(var + eps)      (affine = false: 1 / sqrt(var + eps))
//! shift = bias[c] - mean * scale           (affine = false: -(mean * scale))
//! y     = x * scale + shift
//! ```
//!
//! each operation one f32 rounding (no FMA), `eps` rounded to f32. The running statistics a
//! train-mode step produces are separate nodes ([`Running`]): `m = momentum` (in f32),
//! `running_mean' = m * mean + (1 - m) * running_mean` and
//! `running_var' = m * (s / (n - 1)) + (1 - m) * running_var`, where `s` is the sum of squares
//! above (PyTorch's unbiased variance); in eval and Monte Carlo mode they are the running
//! statistics unchanged.
//!
//! The gradients (PyTorch's `batch_norm_backward`), with `invstd = 1 / sqrt(var + eps)`,
//! `sum_g = 0 + g[0] + ...` and `dotp = 0 + (xs[0] - mean) * g[0] + ...` per channel:
//! - batch statistics: `dx = (g - sum_g / n - (x - mean) * (dotp * invstd * invstd / n)) *
//!   invstd * w`;
//! - running statistics: `dx = g * invstd * w` (`* w` left out without affine);
//! - `dweight = dotp * invstd` (eval: with the running mean), `dbias = sum_g` (a `sum`).
//!
//! The interpreter computes exactly these operations; the compiler's
//! `passes::specialize_batch_norm` rewrites each batch-norm node into the same operations as
//! ordinary nodes (`sum` over `[0, 2, ...]`, `reshape` to `[C, 1, ...]`, element-wise
//! `sub mul div add sqrt neg`), so compiled code computes the same bits.

use crate::error::TypeError;
use crate::types::Shape;

/// PyTorch's default `eps`.
pub const DEFAULT_EPS: f64 = 1e-5;

/// PyTorch's default `momentum`.
pub const DEFAULT_MOMENTUM: f64 = 0.1;

/// The attributes of a batch normalization (and of its gradients).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Added to the variance before its square root (PyTorch: `1e-5`).
    pub eps: f64,
    /// Operands `weight [C]` and `bias [C]` follow the running statistics
    /// (`affine = True`); without them the map is `(x - mean) / sqrt(var + eps)`.
    pub affine: bool,
    /// Normalize with the running statistics in every mode, train mode included (the text
    /// form's `running_stats = true`; PyTorch's `training=False`).
    pub running_stats: bool,
}

impl BatchNorm {
    /// PyTorch's defaults: `eps = 1e-5`, affine.
    pub fn new() -> BatchNorm {
        BatchNorm {
            eps: DEFAULT_EPS,
            affine: true,
            running_stats: false,
        }
    }

    /// True if the node normalizes with the batch's statistics when the graph runs in `mode`:
    /// in train mode, unless pinned to the running statistics.
    pub fn uses_batch_stats(&self, mode: crate::graph::Mode) -> bool {
        mode == crate::graph::Mode::Train && !self.running_stats
    }

    /// `eps` rounded to f32, as the definition adds it.
    pub fn eps_f32(&self) -> f32 {
        self.eps as f32
    }
}

impl Default for BatchNorm {
    fn default() -> BatchNorm {
        BatchNorm::new()
    }
}

/// Which running statistic a [`Running`] node updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    /// `running_mean`.
    Mean,
    /// `running_var` (updated with the unbiased variance).
    Var,
}

/// A running statistic after one train-mode batch (`batch_norm_running_mean`,
/// `batch_norm_running_var`): operands `x` and the running statistic `[C]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    /// The statistic.
    pub stat: Stat,
    /// The weight of the batch's statistic (PyTorch: `0.1`).
    pub momentum: f64,
}

impl Running {
    /// The op's name in the textual IR.
    pub fn name(&self) -> &'static str {
        match self.stat {
            Stat::Mean => "batch_norm_running_mean",
            Stat::Var => "batch_norm_running_var",
        }
    }

    /// `momentum` and `1 - momentum` (computed in f64), each rounded to f32.
    pub fn weights_f32(&self) -> (f32, f32) {
        (self.momentum as f32, (1.0 - self.momentum) as f32)
    }
}

/// The channel count of an input `x` of rank >= 2: `x.dims()[1]`.
pub fn channels(op: &'static str, x: &Shape) -> Result<usize, TypeError> {
    if x.rank() < 2 {
        return Err(TypeError::BatchNorm {
            op,
            reason: format!("the input has to be [N, C, ...] (rank 2 or more), but is {x}"),
        });
    }
    Ok(x.dims()[1])
}

/// Checks that `value` (named `what`) is `[C]`.
pub fn check_channels(
    op: &'static str,
    what: &str,
    value: &Shape,
    c: usize,
) -> Result<(), TypeError> {
    if value.dims() != [c] {
        return Err(TypeError::BatchNorm {
            op,
            reason: format!("{what} has to be [{c}], one per channel, but is {value}"),
        });
    }
    Ok(())
}

/// The number of elements per channel of `x: [N, C, ...]`: `N · prod(spatial)`.
pub fn per_channel(x: &Shape) -> usize {
    let dims = x.dims();
    dims[0] * dims[2..].iter().product::<usize>()
}
