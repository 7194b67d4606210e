//! The microkernels of [`super`] for x86-64, written once (the `microkernel!` macro) for AVX2
//! with FMA (6 x 16 tiles, twelve accumulators in sixteen registers) and AVX-512F (8 x 32,
//! sixteen accumulators in thirty-two). Each accumulator lane is one element's chain of fused
//! multiply-adds, in the order of [`super`]'s definition.
//!
//! The only `unsafe` here: the raw addresses the driver hands over (valid by its contract),
//! and entering a `#[target_feature]` function on a host the driver checked.

use super::Microkernel;

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
        #[allow(clippy::too_many_arguments)]
        unsafe fn tile(
            kc: usize,
            a: *const f32,
            a_rows: &[isize],
            a_step: isize,
            b: *const f32,
            c: *mut f32,
            rsc: isize,
            first: bool,
        ) {
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

        impl Microkernel for $kernel {
            const MR: usize = MR;
            const NR: usize = NV * LANES;
            const KC: usize = KC;

            unsafe fn tile(
                kc: usize,
                a: *const f32,
                a_rows: &[isize],
                a_step: isize,
                b: *const f32,
                c: *mut f32,
                rsc: isize,
                first: bool,
            ) {
                // SAFETY: the caller's contract, and the driver runs this kernel only on a
                // host that has its instruction set (`Isa::is_available`).
                unsafe { tile(kc, a, a_rows, a_step, b, c, rsc, first) }
            }
        }
    };
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
    const KC: usize = 128;

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
