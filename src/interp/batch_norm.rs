//! Batch normalization and its gradients, the definition ([`crate::graph::batch_norm`]):
//! per-channel sums from `+0.0` over `(N, spatial...)` in row-major order, then each element
//! one per-channel affine map, every operation one rounding (no FMA), in the order written
//! there.

use crate::graph::BatchNorm;
use crate::graph::batch_norm::{Running, Stat, per_channel};
use crate::math::Element;

use super::value::Array;

/// `x: [N, C, ...]` as `N` images of `C` planes of `S` elements.
struct Planes {
    images: usize,
    channels: usize,
    size: usize,
}

impl Planes {
    fn of<T>(x: &Array<T>) -> Planes {
        let dims = x.shape.dims();
        Planes {
            images: dims[0],
            channels: dims[1],
            size: dims[2..].iter().product(),
        }
    }

    /// The offsets of channel `c`'s elements, in row-major order of `(N, spatial...)`.
    fn channel(&self, c: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.images).flat_map(move |i| {
            let start = (i * self.channels + c) * self.size;
            start..start + self.size
        })
    }

    /// The channel of element `offset`.
    fn channel_of(&self, offset: usize) -> usize {
        offset / self.size % self.channels
    }
}

/// A channel's statistics: its mean and its biased variance, and the sum of squares behind
/// the variance (train mode), or the running statistics (eval mode: no sum).
struct Stats<T> {
    mean: Vec<T>,
    var: Vec<T>,
    squares: Vec<T>,
}

/// The batch's statistics of `x` (train: `mean = sum / n`, `var = sum((x - mean)²) / n`), or
/// the running ones.
fn stats<T: Element>(x: &Array<T>, running: Option<(&Array<T>, &Array<T>)>) -> Stats<T> {
    if let Some((mean, var)) = running {
        return Stats {
            mean: mean.data.clone(),
            var: var.data.clone(),
            squares: Vec::new(),
        };
    }
    let planes = Planes::of(x);
    let n = T::from_count(per_channel(&x.shape));
    let mut stats = Stats {
        mean: Vec::new(),
        var: Vec::new(),
        squares: Vec::new(),
    };
    for c in 0..planes.channels {
        let sum = planes.channel(c).fold(T::ZERO, |acc, i| acc + x.data[i]);
        let mean = sum / n;
        let squares = planes.channel(c).fold(T::ZERO, |acc, i| {
            let d = x.data[i] - mean;
            acc + d * d
        });
        stats.mean.push(mean);
        stats.var.push(squares / n);
        stats.squares.push(squares);
    }
    stats
}

/// `1 / sqrt(var + eps)` per channel.
fn invstd<T: Element>(bn: &BatchNorm, var: &[T]) -> Vec<T> {
    let eps = T::from_f32(bn.eps_f32());
    var.iter().map(|&v| T::ONE / (v + eps).sqrt()).collect()
}

/// The statistics the mode asks for: the batch's in train mode (`running` = `None`).
type RunningStats<'a, T> = Option<(&'a Array<T>, &'a Array<T>)>;

/// `batch_norm(x, ...)` with the statistics `running` (eval) or the batch's (train), and the
/// affine `(weight, bias)` if any.
pub(crate) fn batch_norm<T: Element>(
    bn: &BatchNorm,
    x: &Array<T>,
    running: RunningStats<'_, T>,
    affine: Option<(&Array<T>, &Array<T>)>,
) -> Array<T> {
    let planes = Planes::of(x);
    let Stats { mean, var, .. } = stats(x, running);
    let eps = T::from_f32(bn.eps_f32());
    let (scale, shift): (Vec<T>, Vec<T>) = (0..planes.channels)
        .map(|c| {
            let root = (var[c] + eps).sqrt();
            match affine {
                Some((w, b)) => {
                    let scale = w.data[c] / root;
                    (scale, b.data[c] - mean[c] * scale)
                }
                None => {
                    let scale = T::ONE / root;
                    (scale, -(mean[c] * scale))
                }
            }
        })
        .unzip();
    let data = (x.data.iter().enumerate())
        .map(|(i, &v)| {
            let c = planes.channel_of(i);
            v * scale[c] + shift[c]
        })
        .collect();
    Array::filled(x.shape.clone(), data)
}

/// A running statistic after a batch of `x` (train), or `stat` unchanged (eval: `train` false;
/// and an empty batch, as PyTorch leaves the statistics of one).
pub(crate) fn running<T: Element>(
    r: &Running,
    x: &Array<T>,
    stat: &Array<T>,
    train: bool,
) -> Array<T> {
    if !train || per_channel(&x.shape) == 0 {
        return stat.clone();
    }
    let batch = stats(x, None);
    let (m, keep) = r.weights_f32();
    let (m, keep) = (T::from_f32(m), T::from_f32(keep));
    let unbiased = T::from_count(per_channel(&x.shape) - 1);
    let data = (0..stat.data.len())
        .map(|c| {
            let value = match r.stat {
                Stat::Mean => batch.mean[c],
                Stat::Var => batch.squares[c] / unbiased,
            };
            m * value + keep * stat.data[c]
        })
        .collect();
    Array::filled(stat.shape.clone(), data)
}

/// Per channel: `sum(g)` and `sum((x - mean) * g)`, from `+0.0` in row-major order.
fn grad_sums<T: Element>(g: &Array<T>, x: &Array<T>, mean: &[T]) -> (Vec<T>, Vec<T>) {
    let planes = Planes::of(x);
    (0..planes.channels)
        .map(|c| {
            let sum = planes.channel(c).fold(T::ZERO, |acc, i| acc + g.data[i]);
            let dotp =
                (planes.channel(c)).fold(T::ZERO, |acc, i| acc + (x.data[i] - mean[c]) * g.data[i]);
            (sum, dotp)
        })
        .unzip()
}

/// The gradient with respect to `x` of `batch_norm` (weight `weight` if affine) for the
/// incoming gradient `g`.
pub(crate) fn input_grad<T: Element>(
    bn: &BatchNorm,
    g: &Array<T>,
    x: &Array<T>,
    running: RunningStats<'_, T>,
    weight: Option<&Array<T>>,
) -> Array<T> {
    let planes = Planes::of(x);
    let train = running.is_none();
    let Stats { mean, var, .. } = stats(x, running);
    let invstd = invstd(bn, &var);
    let n = T::from_count(per_channel(&x.shape));
    // Train: the per-channel terms of PyTorch's formula, `sum(g) / n` and
    // `dotp * invstd * invstd / n`.
    let (grad_mean, k): (Vec<T>, Vec<T>) = if train {
        let (sum, dotp) = grad_sums(g, x, &mean);
        (0..planes.channels)
            .map(|c| (sum[c] / n, dotp[c] * invstd[c] * invstd[c] / n))
            .unzip()
    } else {
        (Vec::new(), Vec::new())
    };
    let data = (g.data.iter().enumerate())
        .map(|(i, &gv)| {
            let c = planes.channel_of(i);
            let centred = if train {
                gv - grad_mean[c] - (x.data[i] - mean[c]) * k[c]
            } else {
                gv
            };
            let dx = centred * invstd[c];
            match weight {
                Some(w) => dx * w.data[c],
                None => dx,
            }
        })
        .collect();
    Array::filled(x.shape.clone(), data)
}

/// The gradient with respect to the weight: `sum((x - mean) * g) * invstd` per channel.
pub(crate) fn weight_grad<T: Element>(
    bn: &BatchNorm,
    g: &Array<T>,
    x: &Array<T>,
    running: RunningStats<'_, T>,
) -> Array<T> {
    let Stats { mean, var, .. } = stats(x, running);
    let invstd = invstd(bn, &var);
    let (_, dotp) = grad_sums(g, x, &mean);
    let data = dotp.iter().zip(&invstd).map(|(&d, &s)| d * s).collect();
    Array::filled(crate::graph::Shape::new(vec![mean.len()]), data)
}
