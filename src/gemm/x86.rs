//! The microkernels of [`super`] for x86-64, written once (the `microkernel!` macro) for AVX2
//! with FMA (6 x 16 tiles, twelve accumulators in sixteen registers) and AVX-512F (8 x 32,
//! sixteen accumulators in thirty-two). Each accumulator lane is one element's chain of fused
//! multiply-adds, in the order of [`super`]'s definition.
//!
//! The only `unsafe` here: the raw addresses the driver hands over (valid by its contract),
//! and entering a `#[target_feature]` function on a host the driver checked.

use super::{Microkernel, Tile};

/// The kernel over a module's vector type `V` of `LANES` f32 lanes, `NV` vectors per tile
/// row and `MR` rows, with its operations (`zero`, `load`, `store`, `splat`, `fma`) compiled
/// for `$feature`.
macro_rules! microkernel {
    ($kernel:ident, $feature:literal) => {
        /// The tile's chains: see [`Microkernel::tile`].
        ///
        /// # Safety
        /// As [`Microkernel::tile`]'s.
        #[target_feature(enable = $feature)]
        unsafe fn tile(t: &Tile) {
            let Tile {
                kc,
                a,
                a_rows,
                a_step,
                b,
                c,
                rsc,
                first,
            } = *t;
            let rows: [isize; MR] = std::array::from_fn(|i| a_rows[i]);
            let mut acc = [[zero(); NV]; MR];
            if !first {
                for (i, acc) in acc.iter_mut().enumerate() {
                    for (v, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: the tile's elements are valid (the caller's contract).
                        *acc = unsafe { load(c.offset(i as isize * rsc).add(v * LANES)) };
                    }
                }
            }
            let (mut a, mut b) = (a, b);
            for _ in 0..kc {
                let mut bv = [zero(); NV];
                for (v, bv) in bv.iter_mut().enumerate() {
                    // SAFETY: the panel holds `kc` steps of `NR` values.
                    *bv = unsafe { load(b.add(v * LANES)) };
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: row `i`'s value at this step is valid (the caller's contract).
                    let ai = splat(unsafe { *a.offset(rows[i]) });
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = fma(ai, bv, *acc);
                    }
                }
                a = a.wrapping_offset(a_step);
                b = b.wrapping_add(NV * LANES);
            }
            for (i, acc) in acc.iter().enumerate() {
                for (v, &acc) in acc.iter().enumerate() {
                    // SAFETY: the tile's elements are writable (the caller's contract).
                    unsafe { store(c.offset(i as isize * rsc).add(v * LANES), acc) };
                }
            }
        }

        /// See [`Microkernel::fma_chains`].
        #[target_feature(enable = $feature)]
        fn fma_chains(steps: u64) -> f32 {
            let mut acc = [zero(); crate::gemm::peak::CHAINS];
            let (a, b) = (splat(0.999_999), splat(1e-7));
            for _ in 0..steps {
                for acc in acc.iter_mut() {
                    *acc = fma(*acc, a, b);
                }
            }
            let mut out = [0.0f32; LANES];
            let sum = acc.iter().fold(zero(), |s, &a| fma(a, splat(1.0), s));
            // SAFETY: `out` holds one vector.
            unsafe { store(out.as_mut_ptr(), sum) };
            out.iter().sum()
        }

        impl Microkernel for $kernel {
            const LANES: usize = LANES;
            const MR: usize = MR;
            const NR: usize = NV * LANES;
            const KC: usize = KC;

            unsafe fn tile(t: &Tile) {
                // SAFETY: the caller's contract, and the driver runs this kernel only on a
                // host that has its instruction set (`Isa::is_available`).
                unsafe { tile(t) }
            }

            unsafe fn fma_chains(steps: u64) -> f32 {
                // SAFETY: the driver calls this only on a host with the instruction set.
                unsafe { fma_chains(steps) }
            }

            unsafe fn pack_columns(
                dst: &mut [f32],
                src: *const f32,
                cs: isize,
                kc: usize,
                nr: usize,
            ) {
                // SAFETY: the caller's contract; AVX2 is part of both kernels' sets.
                unsafe { pack_columns::<{ NV * LANES }>(dst, src, cs, kc, nr) }
            }

            unsafe fn pack_rows(dst: &mut [f32], src: *const f32, rs: isize, kc: usize) {
                // SAFETY: the caller's contract; AVX2 is part of both kernels' sets.
                unsafe { pack_rows::<{ NV * LANES }>(dst, src, rs, kc) }
            }
        }
    };
}

/// [`Microkernel::pack_columns`] for `NR`-column panels: blocks of 8 columns by 8 steps go
/// through an 8 x 8 transpose in registers, the rest one value at a time.
///
/// # Safety
/// As [`Microkernel::pack_columns`]'s, on a host with AVX2.
#[target_feature(enable = "avx2")]
unsafe fn pack_columns<const NR: usize>(
    dst: &mut [f32],
    src: *const f32,
    cs: isize,
    kc: usize,
    nr: usize,
) {
    use std::arch::x86_64::*;
    assert!(dst.len() >= kc * NR, "invariant: the panel holds kc steps");
    let (full_columns, full_steps) = (nr / 8 * 8, kc / 8 * 8);
    for j0 in (0..full_columns).step_by(8) {
        for p0 in (0..full_steps).step_by(8) {
            // SAFETY: steps `p0 .. p0 + 8` of columns `j0 .. j0 + 8 <= nr` are readable.
            let rows: [__m256; 8] = std::array::from_fn(|j| unsafe {
                _mm256_loadu_ps(src.wrapping_offset((j0 + j) as isize * cs).add(p0))
            });
            let t: [__m256; 8] = std::array::from_fn(|i| {
                let (x, y) = (rows[i / 2 * 2], rows[i / 2 * 2 + 1]);
                if i % 2 == 0 {
                    _mm256_unpacklo_ps(x, y)
                } else {
                    _mm256_unpackhi_ps(x, y)
                }
            });
            let u: [__m256; 8] = std::array::from_fn(|i| {
                let (x, y) = (t[i / 4 * 4 + i % 2], t[i / 4 * 4 + i % 2 + 2]);
                if i / 2 % 2 == 0 {
                    _mm256_shuffle_ps::<0x44>(x, y)
                } else {
                    _mm256_shuffle_ps::<0xEE>(x, y)
                }
            });
            for p in 0..8 {
                // Step `p` is lane `p % 4` of the 128-bit half `p / 4`, from the first four
                // columns (`u[..4]`) and the last four (`u[4..]`).
                let order = [0, 2, 1, 3];
                let (low, high) = (u[order[p % 4]], u[4 + order[p % 4]]);
                let out = if p < 4 {
                    _mm256_permute2f128_ps::<0x20>(low, high)
                } else {
                    _mm256_permute2f128_ps::<0x31>(low, high)
                };
                let at = &mut dst[(p0 + p) * NR + j0..(p0 + p) * NR + j0 + 8];
                // SAFETY: `at` holds eight values.
                unsafe { _mm256_storeu_ps(at.as_mut_ptr(), out) };
            }
        }
    }
    // SAFETY: the caller's contract.
    unsafe {
        super::pack_columns_scalar(dst, NR, src, cs, (full_steps, kc), (0, nr));
        super::pack_columns_scalar(dst, NR, src, cs, (0, full_steps), (full_columns, nr));
    }
}

/// [`Microkernel::pack_rows`] for `NR`-column panels in 32-byte moves.
///
/// # Safety
/// As [`Microkernel::pack_rows`]'s, on a host with AVX2.
#[target_feature(enable = "avx2")]
unsafe fn pack_rows<const NR: usize>(dst: &mut [f32], src: *const f32, rs: isize, kc: usize) {
    use std::arch::x86_64::*;
    assert!(dst.len() >= kc * NR, "invariant: the panel holds kc steps");
    for p in 0..kc {
        let from = src.wrapping_offset(p as isize * rs);
        for v in (0..NR).step_by(8) {
            // SAFETY: step `p`'s `NR` values are readable (the caller's contract), and the
            // panel holds them (asserted).
            unsafe {
                let values = _mm256_loadu_ps(from.add(v));
                _mm256_storeu_ps(dst.as_mut_ptr().add(p * NR + v), values);
            }
        }
    }
}

pub(super) use avx2::Avx2;
pub(super) use avx512::Avx512;

/// AVX2 + FMA: eight lanes, 6 x 16 tiles.
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    /// The AVX2 + FMA microkernel.
    pub struct Avx2;

    type V = __m256;
    const LANES: usize = 8;
    const NV: usize = 2;
    const MR: usize = 6;
    const KC: usize = 256;

    #[target_feature(enable = "avx2,fma")]
    fn zero() -> V {
        _mm256_setzero_ps()
    }

    #[target_feature(enable = "avx2,fma")]
    fn splat(x: f32) -> V {
        _mm256_set1_ps(x)
    }

    #[target_feature(enable = "avx2,fma")]
    fn fma(a: V, b: V, c: V) -> V {
        _mm256_fmadd_ps(a, b, c)
    }

    /// # Safety
    /// `at` is valid for eight f32 reads.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(at: *const f32) -> V {
        // SAFETY: the caller's contract (unaligned loads allowed).
        unsafe { _mm256_loadu_ps(at) }
    }

    /// # Safety
    /// `at` is valid for eight f32 writes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(at: *mut f32, v: V) {
        // SAFETY: the caller's contract (unaligned stores allowed).
        unsafe { _mm256_storeu_ps(at, v) }
    }

    microkernel!(Avx2, "avx2,fma");
}

/// AVX-512F: sixteen lanes, 8 x 32 tiles.
mod avx512 {
    use std::arch::x86_64::*;

    use super::*;

    /// The AVX-512F microkernel.
    pub struct Avx512;

    type V = __m512;
    const LANES: usize = 16;
    const NV: usize = 2;
    const MR: usize = 8;
    const KC: usize = 256;

    #[target_feature(enable = "avx512f,fma")]
    fn zero() -> V {
        _mm512_setzero_ps()
    }

    #[target_feature(enable = "avx512f,fma")]
    fn splat(x: f32) -> V {
        _mm512_set1_ps(x)
    }

    #[target_feature(enable = "avx512f,fma")]
    fn fma(a: V, b: V, c: V) -> V {
        _mm512_fmadd_ps(a, b, c)
    }

    /// # Safety
    /// `at` is valid for sixteen f32 reads.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn load(at: *const f32) -> V {
        // SAFETY: the caller's contract (unaligned loads allowed).
        unsafe { _mm512_loadu_ps(at) }
    }

    /// # Safety
    /// `at` is valid for sixteen f32 writes.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn store(at: *mut f32, v: V) {
        // SAFETY: the caller's contract (unaligned stores allowed).
        unsafe { _mm512_storeu_ps(at, v) }
    }

    microkernel!(Avx512, "avx512f,fma");
}
