//! RNG contract v1, "bit-plane Philox": which mask elements a dropout keeps.
//!
//! ```text
//! key     (k0, k1) = (seed as u32, (seed >> 32) as u32)                   seed: u64
//! T       (p * 4294967296.0).round_ties_even() as u64     (p: f64, so p*2^32 is exact); Q = 2^32 - T
//! group   mask element j (see "mask shape") is lane e = j % 128 of group g = j / 128 (g < 2^59)
//! plane   P(g, k) = philox4x32_10(counter = (g as u32, ((g >> 32) as u32) | (k << 27), stream, step), key)
//!         for k = 0..32; four u32 words
//! bit     b(e, k) = (P(g, k)[e % 4] >> (e / 4)) & 1
//! U       U(j) = sum over k of b(e, k) << (31 - k)            (plane 0 is the most significant bit)
//! keep    U(j) < Q                 -> p = 0 keeps all, p = 1 keeps none, P(keep) = Q / 2^32 exactly
//! step    u32; advances by one per train-mode execution of a compiled graph (eval does not);
//!         an execution at step 2^32 is an error (reseed), never a silent wrap
//! stream  u32 < 2^31, one per dropout node of the forward graph, kept by every pass; a node that
//!         recomputes a mask (backward, a duplicated fused copy) carries the stream of the node it
//!         copies, and the verifier checks that; streams >= 2^31 are reserved for host-side randomness
//! ```
//!
//! "Mask shape" is the dropout input's shape with every broadcast dimension set to 1, and `j` is
//! a mask element's row-major index in it (see [`crate::graph::dropout`]).
//!
//! Why the bits of a plane are laid out this way: a 4-element vector then reads one bit position
//! of all four words, so its mask is two shifts. Why planes: `U < Q` is decided by the first plane
//! where `U`'s bit differs from `Q`'s, so fast kernels may stop once every lane of a group is
//! decided (p = 0.5 needs exactly one plane). This module is the definition and has no early stop:
//! it computes all 32 planes, 0.25 Philox blocks per element.

use super::philox::{philox4x32_10, seed_key};
use crate::graph::{Dropout, MaskSamples, Shape};

/// The version of the contract above; compiled graphs record it.
pub const CONTRACT_VERSION: u32 = 1;

/// Mask elements per group: 32 planes of 4 words of 32 bits, one bit per element per plane.
pub const GROUP_SIZE: usize = 128;

/// Number of bit planes (bits of `U`).
pub const PLANES: u32 = 32;

/// Where a dropout node's masks come from: the generator's seed, the node's stream and the
/// execution's step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaskSource {
    /// The generator's 64-bit seed (the Philox key).
    pub seed: u64,
    /// The dropout node's stream (below 2^31).
    pub stream: u32,
    /// The execution's step.
    pub step: u32,
}

/// Whole groups of one sample's mask: every sample of a dropout with `sample_steps` starts a
/// group of its own (its masks are those of a run at its own step).
pub fn groups_per_sample(samples: MaskSamples) -> usize {
    samples.per_sample.div_ceil(GROUP_SIZE)
}

/// The groups a draw of the whole mask of `d` applied to an input of shape `input` fills:
/// every sample's whole groups, none for an empty input (nobody reads its mask). Compiled
/// code draws keep bytes sample after sample, each sample's starting a group.
pub fn drawn_groups(d: &Dropout, input: &Shape) -> usize {
    let samples = d
        .mask_samples(input)
        .expect("invariant: the node's type was inferred, so its attributes fit its input");
    if input.numel() == 0 {
        0
    } else {
        samples.samples * groups_per_sample(samples)
    }
}

/// `Q = 2^32 - round_ties_even(p * 2^32)`: element `j` is kept iff `U(j) < Q`.
/// `p` must lie in `[0, 1]` (validated where the node is built).
pub fn keep_threshold(p: f64) -> u64 {
    assert!((0.0..=1.0).contains(&p), "invariant: p = {p} was validated");
    let t = (p * 4294967296.0).round_ties_even() as u64;
    (1u64 << 32) - t
}

/// True iff a mask element with uniform `u` is kept under threshold `q`.
pub fn is_kept(u: u32, q: u64) -> bool {
    u64::from(u) < q
}

/// The Philox block of plane `k` of group `g`.
pub fn plane(source: MaskSource, group: u64, k: u32) -> [u32; 4] {
    assert!(
        group < 1 << 59,
        "invariant: mask group {group} is below 2^59"
    );
    assert!(k < PLANES, "invariant: plane {k} is below 32");
    let counter = [
        group as u32,
        ((group >> 32) as u32) | (k << 27),
        source.stream,
        source.step,
    ];
    philox4x32_10(counter, seed_key(source.seed))
}

/// `U` for all 128 lanes of group `g`, computed literally from the 32 planes.
pub fn group_uniforms(source: MaskSource, group: u64) -> [u32; GROUP_SIZE] {
    let mut u = [0u32; GROUP_SIZE];
    for k in 0..PLANES {
        let words = plane(source, group, k);
        for (e, lane) in u.iter_mut().enumerate() {
            let bit = (words[e % 4] >> (e / 4)) & 1;
            *lane |= bit << (31 - k);
        }
    }
    u
}

/// `U(j)` of one mask element (computes its whole group; use [`fill_uniforms`] for many).
pub fn uniform(source: MaskSource, j: u64) -> u32 {
    group_uniforms(source, j / GROUP_SIZE as u64)[(j % GROUP_SIZE as u64) as usize]
}

/// `U(j)` for mask elements `0..out.len()`, group by group.
pub fn fill_uniforms(source: MaskSource, out: &mut [u32]) {
    for (g, chunk) in out.chunks_mut(GROUP_SIZE).enumerate() {
        let u = group_uniforms(source, g as u64);
        chunk.copy_from_slice(&u[..chunk.len()]);
    }
}

/// The keep mask of `len` elements for probability `p`.
pub fn keep_mask(source: MaskSource, p: f64, len: usize) -> Vec<bool> {
    let q = keep_threshold(p);
    let mut u = vec![0u32; len];
    fill_uniforms(source, &mut u);
    u.into_iter().map(|u| is_kept(u, q)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: MaskSource = MaskSource {
        seed: 0x0123_4567_89ab_cdef,
        stream: 3,
        step: 17,
    };

    /// U(j) assembled by hand, bit by bit, from the contract's formulas.
    fn uniform_by_hand(source: MaskSource, j: u64) -> u32 {
        let (g, e) = (j / 128, (j % 128) as u32);
        let mut u = 0u32;
        for k in 0..32u32 {
            let counter = [
                g as u32,
                ((g >> 32) as u32) | (k << 27),
                source.stream,
                source.step,
            ];
            let key = [source.seed as u32, (source.seed >> 32) as u32];
            let word = philox4x32_10(counter, key)[(e % 4) as usize];
            u += ((word >> (e / 4)) & 1) << (31 - k);
        }
        u
    }

    #[test]
    fn uniforms_match_a_computation_by_hand() {
        for j in [0, 1, 4, 127, 128, 129, 1000, (1 << 32) * 128 + 5] {
            assert_eq!(uniform(SOURCE, j), uniform_by_hand(SOURCE, j), "j = {j}");
        }
        let mut many = vec![0; 300];
        fill_uniforms(SOURCE, &mut many);
        for (j, &u) in many.iter().enumerate() {
            assert_eq!(u, uniform_by_hand(SOURCE, j as u64));
        }
    }

    #[test]
    fn thresholds_are_exact() {
        assert_eq!(keep_threshold(0.0), 1 << 32);
        assert_eq!(keep_threshold(1.0), 0);
        assert_eq!(keep_threshold(0.5), 1 << 31);
        // 0.1 * 2^32 = 429496729.6 rounds to 429496730.
        assert_eq!(keep_threshold(0.1), (1 << 32) - 429_496_730);
        // 2^-33 * 2^32 = 0.5 rounds to the even 0: keeps everything.
        assert_eq!(keep_threshold(2f64.powi(-33)), 1 << 32);
        // (1 - 2^-24) * 2^32 = 2^32 - 256 exactly.
        assert_eq!(keep_threshold(1.0 - 2f64.powi(-24)), 256);
    }

    #[test]
    fn keep_boundary_is_strict() {
        for p in [0.1, 0.9, 2f64.powi(-33), 1.0 - 2f64.powi(-24)] {
            let q = keep_threshold(p);
            if q >= 1 && q - 1 <= u64::from(u32::MAX) {
                assert!(is_kept((q - 1) as u32, q), "p = {p}: U = Q - 1 is kept");
            }
            if q <= u64::from(u32::MAX) {
                assert!(!is_kept(q as u32, q), "p = {p}: U = Q is dropped");
            }
        }
        assert!(is_kept(u32::MAX, keep_threshold(0.0)));
        assert!(!is_kept(0, keep_threshold(1.0)));
    }

    #[test]
    fn keep_share_is_near_one_minus_p() {
        let n = 128 * 2000;
        for p in [0.1, 0.5, 0.9] {
            let kept = keep_mask(SOURCE, p, n).iter().filter(|&&k| k).count() as f64;
            let expected = (1.0 - p) * n as f64;
            let sigma = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (kept - expected).abs() < 6.0 * sigma,
                "p = {p}: kept {kept} of {n}"
            );
        }
    }

    #[test]
    fn streams_and_steps_give_different_masks() {
        let base = keep_mask(SOURCE, 0.5, 512);
        let other_step = keep_mask(MaskSource { step: 18, ..SOURCE }, 0.5, 512);
        let other_stream = keep_mask(
            MaskSource {
                stream: 4,
                ..SOURCE
            },
            0.5,
            512,
        );
        assert_ne!(base, other_step);
        assert_ne!(base, other_stream);
    }
}
