//! Layer normalization and its gradients, the definition ([`crate::graph::layer_norm`]): per
//! row (the last `k` dimensions, contiguous) sums from `+0.0` in row-major order, then each
//! element in the order written there, every operation one rounding (no FMA).

use crate::graph::LayerNorm;
use crate::math::Element;

use super::value::Array;

/// One row's statistics: its mean (corrected once) and `rstd = 1 / sqrt(var + eps)`.
#[derive(Clone, Copy)]
struct Row<T> {
    mean: T,
    rstd: T,
}

/// The statistics of every row of `x`.
fn rows<T: Element>(ln: &LayerNorm, x: &Array<T>) -> Vec<Row<T>> {
    let len = ln.row_len();
    let n = T::from_count(len);
    let eps = T::from_f32(ln.eps_f32());
    (x.data.chunks_exact(len.max(1)))
        .map(|row| {
            let first = row.iter().fold(T::ZERO, |acc, &v| acc + v) / n;
            let mean = first + row.iter().fold(T::ZERO, |acc, &v| acc + (v - first)) / n;
            let squares = row.iter().fold(T::ZERO, |acc, &v| {
                let c = v - mean;
                acc + c * c
            });
            let var = squares / n;
            Row {
                mean,
                rstd: T::ONE / (var + eps).sqrt(),
            }
        })
        .collect()
}

/// `layer_norm(x, weight, bias)`, with the weight and bias the node has.
pub(crate) fn layer_norm<T: Element>(
    ln: &LayerNorm,
    x: &Array<T>,
    weight: Option<&Array<T>>,
    bias: Option<&Array<T>>,
) -> Array<T> {
    let len = ln.row_len();
    let stats = rows(ln, x);
    let data = (x.data.iter().enumerate())
        .map(|(i, &v)| {
            let Row { mean, rstd } = stats[i / len];
            let xhat = (v - mean) * rstd;
            let scaled = match weight {
                Some(w) => xhat * w.data[i % len],
                None => xhat,
            };
            match bias {
                Some(b) => scaled + b.data[i % len],
                None => scaled,
            }
        })
        .collect();
    Array::filled(x.shape.clone(), data)
}

/// The gradient with respect to `x` of `layer_norm` (weight `weight`, if it has one) for the
/// incoming gradient `g`.
pub(crate) fn input_grad<T: Element>(
    ln: &LayerNorm,
    g: &Array<T>,
    x: &Array<T>,
    weight: Option<&Array<T>>,
) -> Array<T> {
    let len = ln.row_len();
    let n = T::from_count(len);
    let stats = rows(ln, x);
    let mut data = Vec::with_capacity(x.data.len());
    for (r, Row { mean, rstd }) in stats.into_iter().enumerate() {
        let span = r * len..(r + 1) * len;
        let (xs, gs) = (&x.data[span.clone()], &g.data[span]);
        let gw = |i: usize| match weight {
            Some(w) => gs[i] * w.data[i],
            None => gs[i],
        };
        let xhat = |i: usize| (xs[i] - mean) * rstd;
        let sum = (0..len).fold(T::ZERO, |acc, i| acc + gw(i));
        let dot = (0..len).fold(T::ZERO, |acc, i| acc + gw(i) * xhat(i));
        let (mean_gw, mean_dot) = (sum / n, dot / n);
        data.extend((0..len).map(|i| (gw(i) - mean_gw - xhat(i) * mean_dot) * rstd));
    }
    Array::filled(x.shape.clone(), data)
}

/// The gradient with respect to the weight: `g * xhat` summed over the rows, from `+0.0` in
/// row order.
pub(crate) fn weight_grad<T: Element>(ln: &LayerNorm, g: &Array<T>, x: &Array<T>) -> Array<T> {
    let len = ln.row_len();
    let stats = rows(ln, x);
    let mut data = vec![T::ZERO; len];
    for (r, Row { mean, rstd }) in stats.into_iter().enumerate() {
        for (i, sum) in data.iter_mut().enumerate() {
            let j = r * len + i;
            *sum = *sum + g.data[j] * ((x.data[j] - mean) * rstd);
        }
    }
    Array::filled(crate::graph::Shape::new(ln.normalized_shape.clone()), data)
}
