//! The dropout family: one node kind for all six of PyTorch's modules, and the numbers that
//! define them (mask shape, scale, the alpha variants' affine map).
//!
//! In train mode, with mask element `keep` drawn by the RNG contract ([`crate::rng`]):
//! - `Dropout`, `Dropout1d/2d/3d`: `y = keep ? x * scale : +0.0`, `scale = (1 / (1 - p)) as f32`
//!   computed in f64, one f32 multiply, no FMA.
//! - `AlphaDropout`, `FeatureAlphaDropout`: `y = keep ? (x * a) + b : c`, two f32 roundings, no FMA,
//!   with `a`, `b`, `c` from [`Dropout::alpha_coefficients`].
//! - `p = 1`: every element is `+0.0`, even for NaN or infinite input and for the alpha
//!   variants. (PyTorch eager computes `x * 0` and so lets NaN through; we do not.)
//! - `p = 0` and eval mode: the identity, bit for bit.
//!
//! The mask has the input's shape with every broadcast dimension set to 1, and every element of
//! the input reads the mask element at its own coordinates with broadcast coordinates set to 0.

use std::fmt;

use crate::error::TypeError;
use crate::types::Shape;

/// The six members of the family. They differ in which dimensions share one draw and in what a
/// dropped element becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropoutKind {
    /// `nn.Dropout`: one draw per element, any rank.
    Dropout,
    /// `nn.Dropout1d`: one draw per channel of `(C, L)` or `(N, C, L)`.
    Dropout1d,
    /// `nn.Dropout2d`: one draw per channel of `(C, H, W)` or `(N, C, H, W)`. (PyTorch reads a
    /// 3-D input as `(N, C, L)` with a warning; we take its documented future meaning.)
    Dropout2d,
    /// `nn.Dropout3d`: one draw per channel of `(C, D, H, W)` or `(N, C, D, H, W)`.
    Dropout3d,
    /// `nn.AlphaDropout`: one draw per element; dropped elements take SELU's saturation value and
    /// an affine map keeps mean 0 and variance 1.
    AlphaDropout,
    /// `nn.FeatureAlphaDropout`: alpha dropout with one draw per `(n, c)` of a rank >= 2 input.
    FeatureAlphaDropout,
}

/// SELU's negative saturation value `-scale * alpha`, as PyTorch's alpha dropout uses it.
pub const ALPHA_PRIME: f64 = -1.7580993408473766;

impl DropoutKind {
    /// Every kind, for tests and the parser.
    pub const ALL: [DropoutKind; 6] = [
        DropoutKind::Dropout,
        DropoutKind::Dropout1d,
        DropoutKind::Dropout2d,
        DropoutKind::Dropout3d,
        DropoutKind::AlphaDropout,
        DropoutKind::FeatureAlphaDropout,
    ];

    /// The op's name in the textual IR.
    pub fn name(self) -> &'static str {
        match self {
            DropoutKind::Dropout => "dropout",
            DropoutKind::Dropout1d => "dropout1d",
            DropoutKind::Dropout2d => "dropout2d",
            DropoutKind::Dropout3d => "dropout3d",
            DropoutKind::AlphaDropout => "alpha_dropout",
            DropoutKind::FeatureAlphaDropout => "feature_alpha_dropout",
        }
    }

    /// The name of the kind's mask op in the textual IR (`dropout2d_mask`).
    pub fn mask_name(self) -> &'static str {
        match self {
            DropoutKind::Dropout => "dropout_mask",
            DropoutKind::Dropout1d => "dropout1d_mask",
            DropoutKind::Dropout2d => "dropout2d_mask",
            DropoutKind::Dropout3d => "dropout3d_mask",
            DropoutKind::AlphaDropout => "alpha_dropout_mask",
            DropoutKind::FeatureAlphaDropout => "feature_alpha_dropout_mask",
        }
    }

    /// The name of the kind's gradient op in the textual IR (`dropout2d_grad`).
    pub fn grad_name(self) -> &'static str {
        match self {
            DropoutKind::Dropout => "dropout_grad",
            DropoutKind::Dropout1d => "dropout1d_grad",
            DropoutKind::Dropout2d => "dropout2d_grad",
            DropoutKind::Dropout3d => "dropout3d_grad",
            DropoutKind::AlphaDropout => "alpha_dropout_grad",
            DropoutKind::FeatureAlphaDropout => "feature_alpha_dropout_grad",
        }
    }

    /// True for the variants whose dropped elements become `c` rather than zero.
    pub fn is_alpha(self) -> bool {
        match self {
            DropoutKind::AlphaDropout | DropoutKind::FeatureAlphaDropout => true,
            DropoutKind::Dropout
            | DropoutKind::Dropout1d
            | DropoutKind::Dropout2d
            | DropoutKind::Dropout3d => false,
        }
    }

    /// True for the variants that draw one value per element (and so accept `broadcast_dims`).
    pub fn is_elementwise(self) -> bool {
        match self {
            DropoutKind::Dropout | DropoutKind::AlphaDropout => true,
            DropoutKind::Dropout1d
            | DropoutKind::Dropout2d
            | DropoutKind::Dropout3d
            | DropoutKind::FeatureAlphaDropout => false,
        }
    }

    /// The ranks a kind accepts: `(unbatched, batched)` for `Dropout1d/2d/3d`.
    fn channel_ranks(self) -> Option<(usize, usize)> {
        match self {
            DropoutKind::Dropout1d => Some((2, 3)),
            DropoutKind::Dropout2d => Some((3, 4)),
            DropoutKind::Dropout3d => Some((4, 5)),
            DropoutKind::Dropout | DropoutKind::AlphaDropout | DropoutKind::FeatureAlphaDropout => {
                None
            }
        }
    }

    /// The dimensions that share one draw for an input of this rank, or the error naming the
    /// rank received and the variant that fits.
    pub fn implied_broadcast_dims(self, rank: usize) -> Result<Vec<usize>, TypeError> {
        if let Some((unbatched, batched)) = self.channel_ranks() {
            if rank != unbatched && rank != batched {
                return Err(self.rank_error(rank));
            }
            let channel = if rank == batched { 1 } else { 0 };
            return Ok((channel + 1..rank).collect());
        }
        match self {
            DropoutKind::FeatureAlphaDropout if rank < 2 => Err(self.rank_error(rank)),
            DropoutKind::FeatureAlphaDropout => Ok((2..rank).collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// The error for an input of `rank`, naming the inputs the kind takes and the kind that
    /// fits.
    fn rank_error(self, rank: usize) -> TypeError {
        let accepts = match self {
            DropoutKind::Dropout1d => "a 2-D (C, L) or 3-D (N, C, L) input",
            DropoutKind::Dropout2d => "a 3-D (C, H, W) or 4-D (N, C, H, W) input",
            DropoutKind::Dropout3d => "a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input",
            DropoutKind::FeatureAlphaDropout => "an input of rank 2 or more, (N, C, ...)",
            DropoutKind::Dropout | DropoutKind::AlphaDropout => "an input of any rank",
        };
        let advice = match DropoutKind::channel_kind_for_rank(rank) {
            Some(other) => format!("use {other}"),
            None if self.is_alpha() => "use alpha_dropout for element-wise masks".to_string(),
            None => "use dropout for element-wise masks".to_string(),
        };
        TypeError::DropoutRank {
            kind: self.name(),
            accepts,
            rank,
            advice,
        }
    }

    /// The channel-wise kind whose unbatched or batched rank is `rank` (the lower kind first).
    fn channel_kind_for_rank(rank: usize) -> Option<DropoutKind> {
        [
            DropoutKind::Dropout1d,
            DropoutKind::Dropout2d,
            DropoutKind::Dropout3d,
        ]
        .into_iter()
        .find(|kind| {
            kind.channel_ranks()
                .is_some_and(|(u, b)| rank == u || rank == b)
        })
    }
}

impl fmt::Display for DropoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The attributes of a dropout node.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropout {
    /// Which member of the family.
    pub kind: DropoutKind,
    /// The probability of dropping a mask element, in `[0, 1]` (a Python float, so f64).
    pub p: f64,
    /// Write the result over the input's buffer (the memory planner checks it is safe).
    pub inplace: bool,
    /// Extra dimensions that share one draw (element-wise kinds only): `[0]` on `(T, N, H)` is
    /// locked dropout over time, `[1, 2, ..]` on `(N, ...)` drops whole samples (DropPath).
    pub broadcast_dims: Vec<usize>,
    /// The RNG stream of this node: below 2^31, one per dropout of the forward graph.
    pub stream: u32,
    /// Dimension 0 counts Monte Carlo samples, each drawn at a step of its own: slice `x[s]`
    /// is dropped exactly as this dropout without `sample_steps` drops an input of the
    /// slice's shape at step `step + s` (the kind and `broadcast_dims` describe the slice). So
    /// a run of N samples equals N runs at consecutive steps, and claims N steps
    /// ([`crate::graph::steps_per_run`]). [`crate::passes::batch_samples()`] sets it.
    pub sample_steps: bool,
}

/// The first stream reserved for host-side randomness; graph streams are below it.
pub const FIRST_HOST_STREAM: u32 = 1 << 31;

impl Dropout {
    /// A dropout of `kind` with probability `p` on `stream`, not in place, no extra broadcast.
    pub fn new(kind: DropoutKind, p: f64, stream: u32) -> Dropout {
        Dropout {
            kind,
            p,
            inplace: false,
            broadcast_dims: Vec::new(),
            stream,
            sample_steps: false,
        }
    }

    /// Checks `p` (NaN included), the stream and `broadcast_dims` against an input rank (a
    /// sample's rank, one less, with `sample_steps`).
    pub fn validate(&self, rank: usize) -> Result<(), TypeError> {
        check_probability(self.p)?;
        let rank = if self.sample_steps {
            rank.checked_sub(1).ok_or(TypeError::SampleStepsScalar {
                kind: self.kind.name(),
            })?
        } else {
            rank
        };
        if self.stream >= FIRST_HOST_STREAM {
            return Err(TypeError::ReservedStream {
                stream: self.stream,
            });
        }
        if !self.broadcast_dims.is_empty() && !self.kind.is_elementwise() {
            return Err(TypeError::BroadcastDims {
                dims: self.broadcast_dims.clone(),
                rank,
                reason: "only element-wise dropout takes broadcast_dims; channel-wise kinds imply them",
            });
        }
        if self.broadcast_dims.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TypeError::BroadcastDims {
                dims: self.broadcast_dims.clone(),
                rank,
                reason: "dimensions have to be strictly increasing",
            });
        }
        if self.broadcast_dims.iter().any(|&d| d >= rank) {
            return Err(TypeError::BroadcastDims {
                dims: self.broadcast_dims.clone(),
                rank,
                reason: "a dimension is out of range",
            });
        }
        self.kind.implied_broadcast_dims(rank).map(|_| ())
    }

    /// The dimensions of the input that share one draw: the kind's implied ones or
    /// `broadcast_dims` (those of a sample, one further, with `sample_steps`).
    pub fn effective_broadcast_dims(&self, rank: usize) -> Result<Vec<usize>, TypeError> {
        self.validate(rank)?;
        let sample_rank = rank - usize::from(self.sample_steps);
        let mut dims = self.kind.implied_broadcast_dims(sample_rank)?;
        dims.extend_from_slice(&self.broadcast_dims);
        if self.sample_steps {
            dims.iter_mut().for_each(|d| *d += 1);
        }
        Ok(dims)
    }

    /// The input's samples (dimension 0 with `sample_steps`, else one) and each sample's mask
    /// elements: mask element `s * per_sample + j` is element `j` of sample `s`'s mask, drawn
    /// at step `step + s`.
    pub fn mask_samples(&self, input: &Shape) -> Result<MaskSamples, TypeError> {
        let mask = self.mask_shape(input)?;
        Ok(if self.sample_steps {
            MaskSamples {
                samples: mask.dims()[0],
                per_sample: mask.dims()[1..].iter().product(),
            }
        } else {
            MaskSamples {
                samples: 1,
                per_sample: mask.numel(),
            }
        })
    }

    /// The mask's shape: the input's with every broadcast dimension set to 1.
    pub fn mask_shape(&self, input: &Shape) -> Result<Shape, TypeError> {
        let mut dims = input.dims().to_vec();
        for d in self.effective_broadcast_dims(input.rank())? {
            dims[d] = 1;
        }
        Ok(Shape(dims))
    }

    /// How many keep bits a dropout or dropout gradient applied to an input of shape `input`
    /// reads: the mask's elements, or none for an empty input, whose mask nobody reads (so a
    /// run draws and stores none, however large the mask shape).
    pub fn read_mask_len(&self, input: &Shape) -> Result<usize, TypeError> {
        let mask = self.mask_shape(input)?;
        Ok(if input.numel() == 0 { 0 } else { mask.numel() })
    }

    /// True if the mask is random: `0 < p < 1`. With `p = 0` every element is kept and with
    /// `p = 1` every one dropped, so nothing is drawn.
    pub fn is_random(&self) -> bool {
        self.p > 0.0 && self.p < 1.0
    }

    /// The keep-scale of the zeroing kinds: `(1 / (1 - p)) as f32`, computed in f64.
    pub fn scale(&self) -> f32 {
        (1.0f64 / (1.0 - self.p)) as f32
    }

    /// The factor a kept element's gradient is multiplied by: [`Dropout::scale`] for the
    /// zeroing kinds, `a` of [`Dropout::alpha_coefficients`] for the alpha kinds.
    pub fn grad_scale(&self) -> f32 {
        if self.kind.is_alpha() {
            self.alpha_coefficients().0
        } else {
            self.scale()
        }
    }

    /// [`Dropout::grad_scale`] before rounding: `1 / (1 - p)` or `a`, in f64.
    pub fn grad_scale_f64(&self) -> f64 {
        if self.kind.is_alpha() {
            self.alpha_coefficients_f64().0
        } else {
            1.0 / (1.0 - self.p)
        }
    }

    /// `(a, b, c)` of the alpha kinds, computed in f64 and rounded once each to f32:
    /// `a = ((1-p)(1 + p α'²))^(-1/2)`, `b = -a α' p`, `c = a α' + b`. Kept elements become
    /// `x * a + b` (two roundings), dropped ones `c`.
    ///
    /// The f64 evaluation is fixed so every implementation gets the same bits: left to right
    /// as written in [`Dropout::alpha_coefficients_f64`], with `1 / sqrt` (correctly rounded
    /// everywhere) rather than `powf(-0.5)` (a libm call that may differ between platforms).
    pub fn alpha_coefficients(&self) -> (f32, f32, f32) {
        let (a, b, c) = self.alpha_coefficients_f64();
        (a as f32, b as f32, c as f32)
    }

    /// The same coefficients before rounding, for f64 interpretation.
    pub fn alpha_coefficients_f64(&self) -> (f64, f64, f64) {
        let p = self.p;
        let a = 1.0 / ((1.0 - p) * (1.0 + p * ALPHA_PRIME * ALPHA_PRIME)).sqrt();
        let b = -a * ALPHA_PRIME * p;
        let c = a * ALPHA_PRIME + b;
        (a, b, c)
    }
}

/// How a mask divides into samples drawn at steps of their own ([`Dropout::mask_samples`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskSamples {
    /// Samples, at steps `step .. step + samples`.
    pub samples: usize,
    /// Mask elements of one sample.
    pub per_sample: usize,
}

/// `p` has to lie in `[0, 1]`; NaN is rejected too.
pub fn check_probability(p: f64) -> Result<(), TypeError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(TypeError::Probability { p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kinds_broadcast_after_the_channel() {
        let d2 = Dropout::new(DropoutKind::Dropout2d, 0.5, 0);
        assert_eq!(
            d2.mask_shape(&Shape::new([8, 3, 5, 5])).unwrap(),
            Shape::new([8, 3, 1, 1])
        );
        assert_eq!(
            d2.mask_shape(&Shape::new([3, 5, 5])).unwrap(),
            Shape::new([3, 1, 1])
        );
        let fa = Dropout::new(DropoutKind::FeatureAlphaDropout, 0.5, 0);
        assert_eq!(
            fa.mask_shape(&Shape::new([8, 3, 5])).unwrap(),
            Shape::new([8, 3, 1])
        );
        assert_eq!(
            fa.mask_shape(&Shape::new([8, 3])).unwrap(),
            Shape::new([8, 3])
        );
        let mut locked = Dropout::new(DropoutKind::Dropout, 0.5, 0);
        locked.broadcast_dims = vec![0];
        assert_eq!(
            locked.mask_shape(&Shape::new([7, 4, 6])).unwrap(),
            Shape::new([1, 4, 6])
        );
    }

    #[test]
    fn wrong_ranks_name_the_variant_that_fits() {
        let d2 = Dropout::new(DropoutKind::Dropout2d, 0.5, 0);
        let err = d2.mask_shape(&Shape::new([2, 3, 4, 5, 6])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dropout2d expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, but got a 5-D input; use dropout3d"
        );
        let d1 = Dropout::new(DropoutKind::Dropout1d, 0.5, 0);
        let err = d1.mask_shape(&Shape::new([6])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dropout1d expects a 2-D (C, L) or 3-D (N, C, L) input, but got a 1-D input; use dropout for element-wise masks"
        );
    }

    #[test]
    fn probability_is_checked_nan_included() {
        for p in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            let err = check_probability(p).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("dropout probability has to be between 0 and 1, but got")
            );
        }
        assert_eq!(
            check_probability(1.5).unwrap_err().to_string(),
            "dropout probability has to be between 0 and 1, but got 1.5"
        );
        check_probability(0.0).unwrap();
        check_probability(1.0).unwrap();
    }

    #[test]
    fn alpha_coefficients_keep_selu_statistics() {
        let d = Dropout::new(DropoutKind::AlphaDropout, 0.0, 0);
        assert_eq!(d.alpha_coefficients(), (1.0, 0.0, ALPHA_PRIME as f32));
        // Computed by hand from the formulas at p = 0.5: c = -b exactly because p = 1 - p.
        let d = Dropout::new(DropoutKind::AlphaDropout, 0.5, 0);
        let (a, b, c) = d.alpha_coefficients_f64();
        assert!((a - 0.886_404_894_665_932).abs() < 1e-12, "{a}");
        assert!((b - 0.779_193_930_518_031_7).abs() < 1e-12, "{b}");
        assert!((c + b).abs() < 1e-15, "{c}");
    }
}
