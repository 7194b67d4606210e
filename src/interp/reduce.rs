//! Reductions over axes: `sum`, `mean` and `amax`.
//!
//! Each output element folds its reduced elements in row-major order of the reduced
//! coordinates: `sum` as `acc = 0.0; acc = acc + x`, `mean` as that sum divided by the count
//! (`0 / 0 = NaN` for an empty reduction), `amax` as `acc = -inf; acc = maximum(acc, x)`
//! ([`crate::math::maximum`], so NaN propagates).

use crate::graph::{ReduceOp, Shape};
use crate::math::{self, Element};

use super::layout::StridedOffsets;
use super::value::Array;

/// Reduces `x` over `axes` (sorted, distinct, as `infer::reduced_axes` returns them) into the
/// node's inferred shape `out` (with or without kept dimensions: the order is the same).
pub(crate) fn reduce<T: Element>(
    op: ReduceOp,
    x: &Array<T>,
    axes: &[usize],
    out: &Shape,
) -> Array<T> {
    let strides = x.shape.strides();
    let (mut kept_dims, mut kept_strides) = (Vec::new(), Vec::new());
    let (mut reduced_dims, mut reduced_strides) = (Vec::new(), Vec::new());
    for (d, (&dim, &stride)) in x.shape.dims().iter().zip(&strides).enumerate() {
        if axes.contains(&d) {
            reduced_dims.push(dim);
            reduced_strides.push(stride);
        } else {
            kept_dims.push(dim);
            kept_strides.push(stride);
        }
    }
    let count: usize = reduced_dims.iter().product();
    let data = StridedOffsets::new(&kept_dims, &kept_strides)
        .map(|base| {
            let elements =
                StridedOffsets::new(&reduced_dims, &reduced_strides).map(|i| x.data[base + i]);
            fold(op, elements, count)
        })
        .collect();
    Array::filled(out.clone(), data)
}

fn fold<T: Element>(op: ReduceOp, elements: impl Iterator<Item = T>, count: usize) -> T {
    match op {
        ReduceOp::Sum => sum(elements),
        ReduceOp::Mean => sum(elements) / T::from_count(count),
        ReduceOp::Max => max(elements),
    }
}

/// `acc = 0.0; acc = acc + x` in iteration order.
pub(crate) fn sum<T: Element>(elements: impl Iterator<Item = T>) -> T {
    elements.fold(T::ZERO, |acc, x| acc + x)
}

/// `acc = -inf; acc = maximum(acc, x)` in iteration order: NaN-propagating.
pub(crate) fn max<T: Element>(elements: impl Iterator<Item = T>) -> T {
    elements.fold(T::NEG_INFINITY, math::maximum)
}
