//! Keep bits of many mask groups at once, compiled by rustc for the host's vector width: the
//! fast way to evaluate RNG contract v1 ([`super::mask`]), which the JIT's dropout loops call
//! once per run of groups.
//!
//! A group's 128 keep bits are four words, bit `v` of word `w` keeping lane `4v + w` (how a
//! Philox block lays out one plane). They are decided plane by plane from the most
//! significant bit of `U`, with the early exit of the contract's docs: at plane `k` an open
//! lane (its bits so far equal `Q`'s) whose bit is 0 where `Q`'s is 1 is kept, one whose bit
//! differs otherwise is dropped, and the loop ends when no lane is open or after `Q`'s last 1
//! bit (the lanes still open then have `U >= Q`).
//!
//! The vector kernels give each Philox lane its own group: 16 groups (AVX-512) or 8 (AVX2)
//! run plane `k` in lockstep, so the open and keep words are already per group and nothing is
//! transposed; the lockstep runs until the last of those groups is decided (about 12 planes
//! at p = 0.1, against 8.3 for a group alone), and in exchange every Philox instruction does
//! 8 or 16 blocks. [`MaskKernel::Portable`] is one group at a time, with the same answers.

use super::mask::MaskSource;
use super::philox::{philox4x32_10, seed_key};

#[cfg(target_arch = "x86_64")]
mod x86;

/// One group's keep bits: bit `v` of word `w` keeps mask lane `4v + w`.
pub type KeepWords = [u32; 4];

/// Groups per call of the JIT's loops: the run of groups whose keep bits the loop asks for at
/// once (a multiple of every kernel's lane count; 4 KiB of elements per run of f32).
pub const RUN_GROUPS: usize = 16;

/// Bytes of keep bits per run.
pub const RUN_BYTES: usize = RUN_GROUPS * std::mem::size_of::<KeepWords>();

/// An instruction set the keep bits can be computed with. Every kernel gives the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaskKernel {
    /// One group at a time in plain Rust: any host.
    Portable,
    /// Eight groups per Philox instruction (x86-64 with AVX2).
    Avx2,
    /// Sixteen groups per Philox instruction (x86-64 with AVX-512F).
    Avx512,
}

impl MaskKernel {
    /// Every kernel, slowest first.
    pub const ALL: [MaskKernel; 3] = [MaskKernel::Portable, MaskKernel::Avx2, MaskKernel::Avx512];

    /// Its name, as options and figures print it.
    pub fn name(self) -> &'static str {
        match self {
            MaskKernel::Portable => "portable",
            MaskKernel::Avx2 => "avx2",
            MaskKernel::Avx512 => "avx512",
        }
    }

    /// The kernel named `name`, if any.
    pub fn from_name(name: &str) -> Option<MaskKernel> {
        MaskKernel::ALL.into_iter().find(|k| k.name() == name)
    }

    /// True if this host's CPU runs it.
    pub fn is_available(self) -> bool {
        match self {
            MaskKernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            MaskKernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            MaskKernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            MaskKernel::Avx2 | MaskKernel::Avx512 => false,
        }
    }

    /// The kernels this host runs, slowest first.
    pub fn available() -> Vec<MaskKernel> {
        (MaskKernel::ALL.into_iter())
            .filter(|k| k.is_available())
            .collect()
    }

    /// The widest kernel this host runs.
    pub fn best() -> MaskKernel {
        *(MaskKernel::available().last()).expect("invariant: the portable kernel runs anywhere")
    }

    /// The keep bits of groups `first, first + 1, ...`, one per element of `out`, for keep
    /// threshold `q` (`0 ..= 2^32`, [`super::mask::keep_threshold`]): bit for bit
    /// [`super::mask::group_uniforms`] compared with `q`.
    ///
    /// # Panics
    /// If this host cannot run the kernel, or a group reaches 2^59 (the contract's limit).
    pub fn keep_bits(self, source: MaskSource, q: u64, first: u64, out: &mut [KeepWords]) {
        let last = first.checked_add(out.len() as u64);
        assert!(
            last.is_some_and(|last| last <= 1 << 59),
            "invariant: mask groups {first}.. (+{}) are below 2^59",
            out.len()
        );
        let Some(threshold) = Threshold::new(q) else {
            let all = if q == 0 { 0 } else { u32::MAX };
            out.fill([all; 4]);
            return;
        };
        match self {
            MaskKernel::Portable => portable(source, threshold, first, out),
            #[cfg(target_arch = "x86_64")]
            MaskKernel::Avx2 => {
                assert!(self.is_available(), "invariant: the host runs AVX2");
                x86::avx2(source, threshold, first, out);
            }
            #[cfg(target_arch = "x86_64")]
            MaskKernel::Avx512 => {
                assert!(self.is_available(), "invariant: the host runs AVX-512F");
                x86::avx512(source, threshold, first, out);
            }
            #[cfg(not(target_arch = "x86_64"))]
            MaskKernel::Avx2 | MaskKernel::Avx512 => {
                panic!("invariant: {} runs on x86-64 only", self.name())
            }
        }
    }
}

/// A threshold that needs planes (`0 < Q < 2^32`) and how many: planes past `Q`'s last 1 bit
/// decide nothing.
#[derive(Clone, Copy, Debug)]
struct Threshold {
    q: u32,
    planes: u32,
}

impl Threshold {
    /// `None` for `Q = 0` (no lane kept) and `Q = 2^32` (every lane kept).
    fn new(q: u64) -> Option<Threshold> {
        let q = u32::try_from(q).ok().filter(|&q| q != 0)?;
        Some(Threshold {
            q,
            planes: 32 - q.trailing_zeros(),
        })
    }

    /// True if `Q`'s bit for plane `k` (bit `31 - k`) is 1.
    fn bit(self, k: u32) -> bool {
        (self.q >> (31 - k)) & 1 == 1
    }
}

/// The counter of plane `k` of group `g` (the contract's layout).
fn counter(source: MaskSource, g: u64, k: u32) -> [u32; 4] {
    [
        g as u32,
        ((g >> 32) as u32) | (k << 27),
        source.stream,
        source.step,
    ]
}

/// One group at a time: planes until no lane is open.
fn portable(source: MaskSource, threshold: Threshold, first: u64, out: &mut [KeepWords]) {
    let key = seed_key(source.seed);
    for (g, keep) in (first..).zip(out.iter_mut()) {
        let mut open = [u32::MAX; 4];
        *keep = [0; 4];
        for k in 0..threshold.planes {
            let bits = philox4x32_10(counter(source, g, k), key);
            let one = threshold.bit(k);
            for w in 0..4 {
                if one {
                    keep[w] |= open[w] & !bits[w];
                    open[w] &= bits[w];
                } else {
                    open[w] &= !bits[w];
                }
            }
            if open == [0; 4] {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::mask::{group_uniforms, keep_threshold};

    /// The definition: all 32 planes, then `U < Q` lane by lane.
    fn reference(source: MaskSource, q: u64, g: u64) -> KeepWords {
        let u = group_uniforms(source, g);
        let mut words = [0u32; 4];
        for (e, &u) in u.iter().enumerate() {
            if u64::from(u) < q {
                words[e % 4] |= 1 << (e / 4);
            }
        }
        words
    }

    const SOURCE: MaskSource = MaskSource {
        seed: 0x0123_4567_89ab_cdef,
        stream: 5,
        step: 9,
    };

    fn thresholds() -> Vec<u64> {
        let mut qs: Vec<u64> = [
            0.0,
            0.1,
            0.2,
            0.25,
            0.5,
            0.75,
            0.9,
            1.0 - 2f64.powi(-24),
            1.0,
        ]
        .into_iter()
        .map(keep_threshold)
        .collect();
        // Q with its last 1 bit deep down (32 planes), and a single low bit.
        qs.extend([(1 << 32) - 1, 1, 0x8000_0001, 0x7fff_ffff]);
        qs
    }

    #[test]
    fn every_available_kernel_matches_the_definition() {
        for kernel in MaskKernel::available() {
            for q in thresholds() {
                // Runs that start anywhere and end mid-vector; one crosses 2^32 groups.
                for (first, len) in [
                    (0u64, 37usize),
                    (3, 16),
                    ((1 << 32) - 5, 11),
                    (77, 1),
                    (5, 200),
                ] {
                    let mut out = vec![[7u32; 4]; len];
                    kernel.keep_bits(SOURCE, q, first, &mut out);
                    for (i, words) in out.iter().enumerate() {
                        let g = first + i as u64;
                        assert_eq!(
                            *words,
                            reference(SOURCE, q, g),
                            "{kernel:?}, q = {q:#x}, group {g}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn names_round_trip_and_the_portable_kernel_is_always_there() {
        for kernel in MaskKernel::ALL {
            assert_eq!(MaskKernel::from_name(kernel.name()), Some(kernel));
        }
        assert_eq!(MaskKernel::from_name("sse"), None);
        assert!(MaskKernel::Portable.is_available());
        assert!(MaskKernel::available().contains(&MaskKernel::best()));
    }

    #[test]
    #[should_panic(expected = "below 2^59")]
    fn groups_past_the_contract_are_refused() {
        let mut out = [[0u32; 4]; 2];
        MaskKernel::Portable.keep_bits(SOURCE, 1 << 31, (1 << 59) - 1, &mut out);
    }
}
