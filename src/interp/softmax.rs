//! `softmax`, `log_softmax` and `cross_entropy`, which share one order of operations per row
//! (the JIT must follow it):
//!
//! ```text
//! m   = maximum over the row, from -inf, NaN-propagating
//! e_i = exp(x_i - m)
//! s   = 0.0 + e_0 + e_1 + ...          (index order)
//! softmax      y_i = e_i / s
//! log_softmax  y_i = (x_i - m) - log(s)
//! cross_entropy  loss = -(0.0 + logp[0][t_0] + logp[1][t_1] + ...) / (N as float)
//! cross_entropy_grad  w = g / (N as float);  y_i = ((e_i / s) - (i == t ? 1 : 0)) * w
//! ```
//! A row of all `-inf` has `m = -inf` and gives NaN, as in PyTorch.

use crate::error::{Error, Result};
use crate::math::Element;
use crate::types::normalize_axis;

use super::reduce::{max, sum};
use super::value::Array;

/// The row statistics `(m, s)` of the module docs.
fn row_stats<T: Element>(row: impl Iterator<Item = T> + Clone) -> (T, T) {
    let m = max(row.clone());
    let s = sum(row.map(|x| (x - m).exp()));
    (m, s)
}

/// Applies `f(x_i, m, s)` along `axis` of `x`.
fn along_axis<T: Element>(x: &Array<T>, axis: i64, f: impl Fn(T, T, T) -> T) -> Array<T> {
    let dims = x.shape.dims();
    let axis = normalize_axis(axis, dims.len()).expect("invariant: the axis was inferred");
    // A scalar has one element along its (implicit) axis 0.
    let (outer, len, inner) = match dims.get(axis) {
        Some(&len) => (
            dims[..axis].iter().product::<usize>(),
            len,
            dims[axis + 1..].iter().product::<usize>(),
        ),
        None => (1, 1, 1),
    };
    let mut data = vec![T::ZERO; x.data.len()];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            let row = (0..len).map(|k| x.data[base + k * inner]);
            let (m, s) = row_stats(row);
            for k in 0..len {
                let at = base + k * inner;
                data[at] = f(x.data[at], m, s);
            }
        }
    }
    Array::filled(x.shape.clone(), data)
}

/// `y_i = exp(x_i - m) / s` along `axis`.
pub(crate) fn softmax<T: Element>(x: &Array<T>, axis: i64) -> Array<T> {
    along_axis(x, axis, |x, m, s| (x - m).exp() / s)
}

/// `y_i = (x_i - m) - log(s)` along `axis`.
pub(crate) fn log_softmax<T: Element>(x: &Array<T>, axis: i64) -> Array<T> {
    along_axis(x, axis, log_probability)
}

fn log_probability<T: Element>(x: T, m: T, s: T) -> T {
    (x - m) - s.ln()
}

/// The mean negative log-likelihood of `targets` under `log_softmax(logits)` by row, for
/// logits `[N, C]` with targets `[N]`, or `[C]` with a scalar target (N = 1). A target outside
/// `0..C` is [`Error::TargetOutOfRange`], naming `node`.
pub(crate) fn cross_entropy<T: Element>(
    node: &str,
    logits: &Array<T>,
    targets: &Array<i32>,
) -> Result<T> {
    let classes = *logits
        .shape
        .dims()
        .last()
        .expect("invariant: logits have rank 1 or 2");
    for (index, &target) in targets.data.iter().enumerate() {
        if usize::try_from(target).map_or(true, |t| t >= classes) {
            return Err(Error::TargetOutOfRange {
                node: node.to_string(),
                target,
                index,
                classes,
            });
        }
    }
    let rows = targets.data.len();
    let mut total = T::ZERO;
    for (r, &target) in targets.data.iter().enumerate() {
        let row = &logits.data[r * classes..(r + 1) * classes];
        let (m, s) = row_stats(row.iter().copied());
        total = total + log_probability(row[target as usize], m, s);
    }
    Ok(-total / T::from_count(rows))
}

/// The gradient of `cross_entropy` with respect to its logits, for a loss gradient `g`:
/// `((e_i / s) - (i == t ? 1.0 : 0.0)) * (g / N)` by row (module docs). A target outside
/// `0..C` selects no class.
pub(crate) fn cross_entropy_grad<T: Element>(
    logits: &Array<T>,
    targets: &Array<i32>,
    g: T,
) -> Array<T> {
    let classes = *logits
        .shape
        .dims()
        .last()
        .expect("invariant: logits have rank 1 or 2");
    let rows = targets.data.len();
    let w = g / T::from_count(rows);
    let mut data = Vec::with_capacity(logits.data.len());
    for (r, &target) in targets.data.iter().enumerate() {
        let row = &logits.data[r * classes..(r + 1) * classes];
        let (m, s) = row_stats(row.iter().copied());
        for (i, &x) in row.iter().enumerate() {
            let p = (x - m).exp() / s;
            let onehot = if i as i64 == i64::from(target) {
                T::ONE
            } else {
                T::ZERO
            };
            data.push((p - onehot) * w);
        }
    }
    Array::filled(logits.shape.clone(), data)
}
