//! Pooling modules (`nn.MaxPool1d/2d/3d`, `nn.AvgPool1d/2d/3d`, `nn.AdaptiveAvgPool1d/2d/3d`)
//! and `nn.Flatten`: no parameters, the same in every mode.

use std::fmt;

use super::functional::{apply, reshape};
use super::module::{Module, fmt_module};
use super::var::Var;
use crate::error::Result;
use crate::graph::{Op, Pool, PoolKind};

/// A max or average pool over 1 to 3 spatial dimensions (by the kernel's length); PyTorch's
/// defaults (stride = kernel, no padding, `count_include_pad`) until set otherwise.
#[derive(Clone, Debug)]
pub struct PoolNd {
    pool: Pool,
}

impl PoolNd {
    /// `nn.MaxPool{n}d(kernel)`.
    pub fn max(kernel: &[usize]) -> PoolNd {
        PoolNd {
            pool: Pool::new(PoolKind::Max, kernel),
        }
    }

    /// `nn.AvgPool{n}d(kernel)`.
    pub fn avg(kernel: &[usize]) -> PoolNd {
        PoolNd {
            pool: Pool::new(PoolKind::Avg, kernel),
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: &[usize]) -> PoolNd {
        self.pool.stride = stride.to_vec();
        self
    }

    /// Sets the padding (at most half the kernel; `-inf` for max, counted or not for avg).
    pub fn padding(mut self, padding: &[usize]) -> PoolNd {
        self.pool.padding = padding.to_vec();
        self
    }

    /// Sets the dilation (max pooling only).
    pub fn dilation(mut self, dilation: &[usize]) -> PoolNd {
        self.pool.dilation = dilation.to_vec();
        self
    }

    /// Rounds the output length up.
    pub fn ceil_mode(mut self, on: bool) -> PoolNd {
        self.pool.ceil_mode = on;
        self
    }

    /// Average pooling: whether the padding counts in the divisor.
    pub fn count_include_pad(mut self, on: bool) -> PoolNd {
        self.pool.count_include_pad = on;
        self
    }
}

impl Module for PoolNd {
    fn forward(&self, x: &Var) -> Result<Var> {
        apply(x, Op::Pool(self.pool.clone()), self)
    }

    fn name(&self) -> String {
        let kind = match self.pool.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AvgPool",
        };
        format!("{kind}{}d", self.pool.spatial())
    }

    fn extra_repr(&self) -> String {
        let p = &self.pool;
        let mut repr = format!(
            "kernel_size={:?}, stride={:?}, padding={:?}",
            p.kernel, p.stride, p.padding
        );
        if p.kind == PoolKind::Max {
            repr += &format!(", dilation={:?}", p.dilation);
        }
        repr += &format!(", ceil_mode={}", p.ceil_mode);
        if p.kind == PoolKind::Avg {
            repr += &format!(", count_include_pad={}", p.count_include_pad);
        }
        repr
    }
}

impl fmt::Display for PoolNd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

/// `nn.AdaptiveAvgPool{n}d(output_size)`.
#[derive(Clone, Debug)]
pub struct AdaptiveAvgPool {
    output: Vec<usize>,
}

impl AdaptiveAvgPool {
    /// Pools every channel to `output` (1 to 3 spatial dimensions).
    pub fn new(output: &[usize]) -> AdaptiveAvgPool {
        AdaptiveAvgPool {
            output: output.to_vec(),
        }
    }
}

impl Module for AdaptiveAvgPool {
    fn forward(&self, x: &Var) -> Result<Var> {
        let op = Op::AdaptiveAvgPool {
            output: self.output.clone(),
        };
        apply(x, op, self)
    }

    fn name(&self) -> String {
        format!("AdaptiveAvgPool{}d", self.output.len())
    }

    fn extra_repr(&self) -> String {
        format!("output_size={:?}", self.output)
    }
}

impl fmt::Display for AdaptiveAvgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

/// `nn.Flatten()`: `[N, ...] -> [N, prod(...)]` (start_dim 1, end_dim -1), a view.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Var) -> Result<Var> {
        let dims = x.shape().dims().to_vec();
        match dims.first() {
            Some(&n) => reshape(x, &[n as i64, -1]),
            None => reshape(x, &[1]),
        }
    }

    fn extra_repr(&self) -> String {
        "start_dim=1, end_dim=-1".to_string()
    }
}

impl fmt::Display for Flatten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
