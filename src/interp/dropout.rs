//! The dropout family in train mode, under RNG contract v1 ([`crate::rng::mask`]).
//!
//! Mask element `j` is the row-major index, in the mask shape (the input's with broadcast
//! dimensions set to 1), of an input element's coordinates with broadcast coordinates set
//! to 0; it is kept iff `U(j) < Q`. Kept and dropped elements follow [`crate::math`]
//! (`dropout_zeroing`, `dropout_alpha`). Eval mode and `p = 0` return the input bit for bit;
//! `p = 1` returns `+0.0` everywhere, even for NaN or infinite input and for the alpha kinds.
//!
//! [`mask`] is the keep mask itself, in the mask shape: the very bits [`dropout`] reads, all
//! true in eval mode and for `p = 0`, all false for `p = 1`.

use crate::graph::{Dropout, Shape};
use crate::math::{self, Element};
use crate::rng::mask::{MaskSource, fill_uniforms, is_kept, keep_threshold};

use super::layout::broadcast_offsets;
use super::value::Array;

/// `d` applied to `x`: with masks from `source` in train mode, the identity when `source` is
/// `None` (eval mode).
pub(crate) fn dropout<T: Element>(
    d: &Dropout,
    x: &Array<T>,
    source: Option<MaskSource>,
) -> Array<T> {
    let Some(source) = source else {
        // dropout(x) -> x in eval mode.
        return x.clone();
    };
    if d.p == 0.0 || x.data.is_empty() {
        // Keeps everything with scale 1, but `x * 1` would quiet a signalling NaN and the alpha
        // map `x * 1 + 0` turns -0.0 into +0.0: return the input bits instead. An empty input
        // reads no keep bit, so none is drawn (its mask shape may still be huge).
        return x.clone();
    }
    if d.p == 1.0 {
        return Array::filled(x.shape.clone(), vec![T::ZERO; x.data.len()]);
    }
    let mask_shape = d
        .mask_shape(&x.shape)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let kept = keep_bits(d, &x.shape, source);
    let keep = broadcast_offsets(&mask_shape, &x.shape).map(|j| kept[j]);
    let data = if d.kind.is_alpha() {
        let coefficients = T::alpha_coefficients(d);
        keep.zip(&x.data)
            .map(|(k, &v)| math::dropout_alpha(k, v, coefficients))
            .collect()
    } else {
        let scale = T::dropout_scale(d);
        keep.zip(&x.data)
            .map(|(k, &v)| math::dropout_zeroing(k, v, scale))
            .collect()
    };
    Array::filled(x.shape.clone(), data)
}

/// The gradient of `d` applied to `g` (of the dropout's input shape): `keep ? g * s : +0.0`
/// with the keep bits [`dropout`] draws for the same source and `s` the kept-gradient factor
/// ([`crate::graph::Dropout::grad_scale`]); the identity in eval mode and for `p = 0`,
/// `+0.0` everywhere for `p = 1`.
pub(crate) fn dropout_grad<T: Element>(
    d: &Dropout,
    g: &Array<T>,
    source: Option<MaskSource>,
) -> Array<T> {
    let Some(source) = source else {
        return g.clone();
    };
    if d.p == 0.0 || g.data.is_empty() {
        return g.clone();
    }
    if d.p == 1.0 {
        return Array::filled(g.shape.clone(), vec![T::ZERO; g.data.len()]);
    }
    let mask_shape = d
        .mask_shape(&g.shape)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let kept = keep_bits(d, &g.shape, source);
    let scale = T::dropout_grad_scale(d);
    let data = broadcast_offsets(&mask_shape, &g.shape)
        .zip(&g.data)
        .map(|(j, &v)| math::dropout_grad(kept[j], v, scale))
        .collect();
    Array::filled(g.shape.clone(), data)
}

/// The keep mask of `d` applied to an input of shape `input`, in the mask shape: drawn from
/// `source` in train mode, all true when `source` is `None` (eval mode) or `p = 0`, all false
/// for `p = 1` (where the contract's threshold gives the same answers without drawing).
pub(crate) fn mask(d: &Dropout, input: &Shape, source: Option<MaskSource>) -> Array<bool> {
    let mask_shape = d
        .mask_shape(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let data = match source {
        Some(source) if d.p > 0.0 && d.p < 1.0 => keep_bits(d, input, source),
        Some(_) => vec![d.p == 0.0; mask_shape.numel()],
        None => vec![true; mask_shape.numel()],
    };
    Array::filled(mask_shape, data)
}

/// `U(j) < Q` for every element `j` of the mask of `d` applied to an input of shape `input`:
/// sample `s`'s elements (all of them without `sample_steps`) drawn at step `step + s`.
fn keep_bits(d: &Dropout, input: &Shape, source: MaskSource) -> Vec<bool> {
    let samples = d
        .mask_samples(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    let mut uniforms = vec![0u32; samples.samples * samples.per_sample];
    for (s, sample) in uniforms.chunks_mut(samples.per_sample.max(1)).enumerate() {
        let step = u32::try_from(s)
            .ok()
            .and_then(|s| source.step.checked_add(s))
            .expect("invariant: the run claimed a step for every sample");
        fill_uniforms(MaskSource { step, ..source }, sample);
    }
    let q = keep_threshold(d.p);
    uniforms.iter().map(|&u| is_kept(u, q)).collect()
}
