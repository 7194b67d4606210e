//! The lockstep kernels of [`super`] for x86-64: one Philox4x32-10 block per vector lane, one
//! mask group per lane, written once (the `lockstep!` macro) for AVX2 (8 lanes) and AVX-512F (16).
//!
//! The only `unsafe` here: entering a `#[target_feature]` function after checking that the
//! CPU has the feature, and the unaligned vector loads and stores of arrays of exactly one
//! vector's bytes.

use super::{RUN_GROUPS, Run, Threshold};
use crate::rng::philox::{M0, M1};

/// One step of `run` by the AVX2 kernel.
pub(super) fn avx2(run: &mut Run, threshold: Threshold) {
    assert!(std::arch::is_x86_feature_detected!("avx2"));
    // SAFETY: the CPU has AVX2, checked above.
    unsafe { wide8::step(run, threshold) }
}

/// One step of `run` by the AVX-512F kernel.
pub(super) fn avx512(run: &mut Run, threshold: Threshold) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"));
    // SAFETY: the CPU has AVX-512F, checked above.
    unsafe { wide16::step(run, threshold) }
}

/// The kernel, over a module's vector type `V` of `LANES` u32 lanes and its operations
/// (`splat`, `load`, `store`, `and`, `or`, `xor`, `and_not`, `is_zero`, `mul_hi_lo`), all
/// compiled for `$feature`.
macro_rules! lockstep {
    ($feature:literal) => {
        /// Planes `next .. next + CHAINS` of the run's groups (one where fewer planes can
        /// decide: `p = 0.5` needs one), `LANES` groups per vector.
        #[target_feature(enable = $feature)]
        pub(super) fn step(run: &mut Run, threshold: Threshold) {
            if threshold.planes < CHAINS as u32 {
                step_chains::<1>(run, threshold)
            } else {
                step_chains::<CHAINS>(run, threshold)
            }
        }

        /// Lane `i` runs group `first + i`, and planes `k .. k + C` of all of them are `C`
        /// independent Philox calls (so the multipliers are never idle waiting for one chain
        /// of rounds).
        #[target_feature(enable = $feature)]
        fn step_chains<const C: usize>(run: &mut Run, threshold: Threshold) {
            let mut round_keys = [(splat(0), splat(0)); 10];
            for (round_key, &[k0, k1]) in round_keys.iter_mut().zip(&run.round_keys) {
                *round_key = (splat(k0), splat(k1));
            }
            let step = splat(run.step);
            let k = run.next;
            let mut open_lanes = 0;
            for part in 0..RUN_GROUPS / LANES {
                let mut open = [splat(0); 4];
                for w in 0..4 {
                    open[w] = load(lanes(&run.open[w], part));
                }
                if is_zero(or(or(open[0], open[1]), or(open[2], open[3]))) {
                    continue;
                }
                let mut keep = [splat(0); 4];
                for w in 0..4 {
                    keep[w] = load(lanes(&run.keep[w], part));
                }
                let (c0, high) = (load(lanes(&run.low, part)), load(lanes(&run.high, part)));
                let mut c1 = [splat(0); C];
                for (c, c1) in (0u32..).zip(c1.iter_mut()) {
                    *c1 = or(high, splat((k + c) << 27));
                }
                let planes = philox(c0, c1, run.stream, step, &round_keys);
                for (c, bits) in (0u32..).zip(&planes) {
                    if k + c >= threshold.planes {
                        break;
                    }
                    if threshold.bit(k + c) {
                        for w in 0..4 {
                            keep[w] = or(keep[w], and_not(bits[w], open[w]));
                            open[w] = and(open[w], bits[w]);
                        }
                    } else {
                        for w in 0..4 {
                            open[w] = and_not(bits[w], open[w]);
                        }
                    }
                }
                for w in 0..4 {
                    store(lanes_mut(&mut run.open[w], part), open[w]);
                    store(lanes_mut(&mut run.keep[w], part), keep[w]);
                }
                let any = or(or(open[0], open[1]), or(open[2], open[3]));
                open_lanes |= u32::from(!is_zero(any));
            }
            run.next = k + C as u32;
            run.open_lanes = open_lanes;
        }

        /// Vector `part`'s lanes of a run's words.
        fn lanes(words: &[u32; RUN_GROUPS], part: usize) -> &[u32; LANES] {
            let lanes = &words[part * LANES..(part + 1) * LANES];
            lanes
                .try_into()
                .expect("invariant: LANES divides RUN_GROUPS")
        }

        fn lanes_mut(words: &mut [u32; RUN_GROUPS], part: usize) -> &mut [u32; LANES] {
            let lanes = &mut words[part * LANES..(part + 1) * LANES];
            lanes
                .try_into()
                .expect("invariant: LANES divides RUN_GROUPS")
        }

        /// Philox4x32-10 of `C` x `LANES` counters that differ only in word 1 (word `w` of
        /// lane `i` of chain `c` in `c0`, `c1[c]`, and the run's uniform `stream` and
        /// `step`), under the round keys. The first round multiplies only words 0 and 2,
        /// which every chain shares (and word 2 every lane): it is done once, not `2C` times.
        #[target_feature(enable = $feature)]
        fn philox<const C: usize>(
            c0: V,
            c1: [V; C],
            stream: u32,
            step: V,
            round_keys: &[(V, V); 10],
        ) -> [[V; 4]; C] {
            let (m0, m1) = (splat(M0), splat(M1));
            let (k0, k1) = round_keys[0];
            let (hi0, lo0) = mul_hi_lo(c0, m0);
            let product = u64::from(M1) * u64::from(stream);
            let (hi1, lo1) = (splat((product >> 32) as u32), splat(product as u32));
            let word2 = xor(xor(hi0, step), k1);
            let mut state = [[hi1, lo1, word2, lo0]; C];
            for (s, c1) in state.iter_mut().zip(c1) {
                s[0] = xor(xor(hi1, c1), k0);
            }
            for &(k0, k1) in &round_keys[1..] {
                for s in state.iter_mut() {
                    let [c0, c1, c2, c3] = *s;
                    let (hi0, lo0) = mul_hi_lo(c0, m0);
                    let (hi1, lo1) = mul_hi_lo(c2, m1);
                    *s = [xor(xor(hi1, c1), k0), lo1, xor(xor(hi0, c3), k1), lo0];
                }
            }
            state
        }
    };
}

/// AVX2: eight lanes.
mod wide8 {
    use std::arch::x86_64::*;

    use super::*;

    type V = __m256i;
    const LANES: usize = 8;
    /// Planes per step (measured on Zen 4: 2 beats 3 and 4, which overshoot more).
    const CHAINS: usize = 2;

    #[target_feature(enable = "avx2")]
    fn splat(x: u32) -> V {
        _mm256_set1_epi32(x as i32)
    }

    #[target_feature(enable = "avx2")]
    fn load(lanes: &[u32; LANES]) -> V {
        // SAFETY: reads the array's 32 bytes (unaligned loads allowed).
        unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2")]
    fn store(lanes: &mut [u32; LANES], v: V) {
        // SAFETY: writes the array's 32 bytes (unaligned stores allowed).
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx2")]
    fn and(a: V, b: V) -> V {
        _mm256_and_si256(a, b)
    }

    #[target_feature(enable = "avx2")]
    fn or(a: V, b: V) -> V {
        _mm256_or_si256(a, b)
    }

    #[target_feature(enable = "avx2")]
    fn xor(a: V, b: V) -> V {
        _mm256_xor_si256(a, b)
    }

    /// `!a & b`.
    #[target_feature(enable = "avx2")]
    fn and_not(a: V, b: V) -> V {
        _mm256_andnot_si256(a, b)
    }

    #[target_feature(enable = "avx2")]
    fn is_zero(a: V) -> bool {
        _mm256_testz_si256(a, a) == 1
    }

    /// The high and low words of the 64-bit products `a * m`, lane by lane.
    #[target_feature(enable = "avx2")]
    fn mul_hi_lo(a: V, m: V) -> (V, V) {
        let even = _mm256_mul_epu32(a, m);
        let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), m);
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        let lo = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
        (hi, lo)
    }

    lockstep!("avx2");
}

/// AVX-512F: sixteen lanes.
mod wide16 {
    use std::arch::x86_64::*;

    use super::*;

    type V = __m512i;
    const LANES: usize = 16;
    /// Planes per step (measured on Zen 4: 3 beats 2 and 4).
    const CHAINS: usize = 3;

    #[target_feature(enable = "avx512f")]
    fn splat(x: u32) -> V {
        _mm512_set1_epi32(x as i32)
    }

    #[target_feature(enable = "avx512f")]
    fn load(lanes: &[u32; LANES]) -> V {
        // SAFETY: reads the array's 64 bytes (unaligned loads allowed).
        unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f")]
    fn store(lanes: &mut [u32; LANES], v: V) {
        // SAFETY: writes the array's 64 bytes (unaligned stores allowed).
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx512f")]
    fn and(a: V, b: V) -> V {
        _mm512_and_si512(a, b)
    }

    #[target_feature(enable = "avx512f")]
    fn or(a: V, b: V) -> V {
        _mm512_or_si512(a, b)
    }

    #[target_feature(enable = "avx512f")]
    fn xor(a: V, b: V) -> V {
        _mm512_xor_si512(a, b)
    }

    /// `!a & b`.
    #[target_feature(enable = "avx512f")]
    fn and_not(a: V, b: V) -> V {
        _mm512_andnot_si512(a, b)
    }

    #[target_feature(enable = "avx512f")]
    fn is_zero(a: V) -> bool {
        _mm512_test_epi32_mask(a, a) == 0
    }

    /// The high and low words of the 64-bit products `a * m`, lane by lane.
    #[target_feature(enable = "avx512f")]
    fn mul_hi_lo(a: V, m: V) -> (V, V) {
        let even = _mm512_mul_epu32(a, m);
        let odd = _mm512_mul_epu32(_mm512_srli_epi64::<32>(a), m);
        // Lane 2i takes word 2i + 1 of `even` (its product's high word), lane 2i + 1 word
        // 2i + 1 of `odd` (index 16 + 2i + 1).
        let index = _mm512_set_epi32(31, 15, 29, 13, 27, 11, 25, 9, 23, 7, 21, 5, 19, 3, 17, 1);
        let hi = _mm512_permutex2var_epi32(even, index, odd);
        // Lane 2i takes word 2i of `even`, lane 2i + 1 word 2i of `odd` (index 16 + 2i).
        let index = _mm512_set_epi32(30, 14, 28, 12, 26, 10, 24, 8, 22, 6, 20, 4, 18, 2, 16, 0);
        let lo = _mm512_permutex2var_epi32(even, index, odd);
        (hi, lo)
    }

    lockstep!("avx512f");
}
