//! Keep bits of many mask groups at once, compiled by rustc for the host's vector width: the
//! fast way to evaluate RNG contract v1 ([`super::mask`]), which the JIT's dropout loops call
//! while they work.
//!
//! A group's 128 keep bits are four words, bit `v` of word `w` keeping lane `4v + w` (how a
//! Philox block lays out one plane). They are decided plane by plane from the most
//! significant bit of `U`, with the early exit of the contract's docs: at plane `k` an open
//! lane (its bits so far equal `Q`'s) whose bit is 0 where `Q`'s is 1 is kept, one whose bit
//! differs otherwise is dropped, and a group is done when no lane is open or after `Q`'s
//! last 1 bit (the lanes still open then have `U >= Q`).
//!
//! The unit of work is a [`Run`] of 16 groups, decided a step at a time so that generated
//! code can interleave the steps with its own memory traffic. The vector kernels give each
//! Philox lane its own group: 16 groups (AVX-512F) or 8 (AVX2) run plane `k` in lockstep, so
//! the open and keep words are already per group and nothing is transposed, and a step runs
//! three (AVX-512F) or two (AVX2) planes as independent Philox chains so the multipliers never
//! wait on one chain's latency. The lockstep costs work: a vector runs until its last lane is
//! decided (about 12.3 planes at p = 0.1, against 8.3 for a group alone), paid back by 8 or 16
//! blocks per instruction. [`Isa::Portable`] steps one plane of each open group in
//! plain Rust; every kernel gives the same bits.

use super::mask::MaskSource;
use super::philox::{W0, W1, philox4x32_10, seed_key};
use crate::isa::Isa;

#[cfg(target_arch = "x86_64")]
mod x86;

/// One group's keep bits: bit `v` of word `w` keeps mask lane `4v + w`.
pub type KeepWords = [u32; 4];

/// Groups per [`Run`]: one AVX-512 vector of groups, two AVX2 vectors (8 KiB of f32 elements).
pub const RUN_GROUPS: usize = 16;

/// Bytes of keep bits per run.
pub const RUN_BYTES: usize = RUN_GROUPS * std::mem::size_of::<KeepWords>();

/// The keep bits of groups `first, first + 1, ...`, one per element of `out`, for keep
/// threshold `q` (`0 ..= 2^32`, [`super::mask::keep_threshold`]), computed with `isa`: bit for
/// bit [`super::mask::group_uniforms`] compared with `q`. Runs of [`RUN_GROUPS`], each started
/// and finished at once.
///
/// # Panics
/// If this host cannot run `isa`, or a group reaches 2^59 (the contract's limit).
pub fn keep_bits(isa: Isa, source: MaskSource, q: u64, first: u64, out: &mut [KeepWords]) {
    for (i, chunk) in out.chunks_mut(RUN_GROUPS).enumerate() {
        let g = first + (i * RUN_GROUPS) as u64;
        Run::new(isa, source, q, g, chunk.len()).finish(chunk);
    }
}
/// A run of up to [`RUN_GROUPS`] mask groups whose keep bits are decided a step at a time:
/// [`Run::new`] sets it up, each [`Run::step`] decides a few more planes of every group,
/// [`Run::finish`] takes the rest and writes the bits. The JIT's loops keep one in a stack
/// buffer and step it between groups of the run before, so the Philox work of one run is
/// spread over the memory traffic of the other instead of stalling it in one burst.
///
/// The state is plain data (`repr(C)`, every bit pattern valid): lane `i` of each array is
/// group `first + i`, its open and keep words by word index.
#[repr(C, align(64))]
#[derive(Clone, Debug, Default)]
pub struct Run {
    // The vectors first, each a whole number of cache lines (unaligned or line-splitting
    // vector stores cost a fifth of a step).
    low: [u32; RUN_GROUPS],
    high: [u32; RUN_GROUPS],
    open: [[u32; RUN_GROUPS]; 4],
    keep: [[u32; RUN_GROUPS]; 4],
    /// The key of each of Philox's ten rounds.
    round_keys: [[u32; 2]; 10],
    seed: u64,
    stream: u32,
    step: u32,
    /// `Q`, 0 when the run is constant (see `constant`).
    q: u32,
    /// The planes `Q` needs (0: the run is constant).
    planes: u32,
    /// The next plane to decide.
    next: u32,
    /// Groups in the run.
    count: u32,
    /// The [`Isa`] (its discriminant).
    isa: u32,
    /// Every group's keep words when no plane is needed (`Q = 0`: 0, `Q = 2^32`: all ones).
    constant: u32,
    /// 0 once no lane of any group is open (kept by the steps).
    open_lanes: u32,
}

impl Run {
    /// A run of groups `first .. first + count`: [`Run::start`] on a fresh state.
    pub fn new(isa: Isa, source: MaskSource, q: u64, first: u64, count: usize) -> Run {
        let mut run = Run::default();
        run.start(isa, source, q, first, count);
        run
    }

    /// Starts the run of groups `first .. first + count` (`count` at most [`RUN_GROUPS`]) of
    /// the mask of `source` with threshold `q`, decided with `isa`, in place of whatever run
    /// this was. Cheap: no Philox yet.
    ///
    /// # Panics
    /// If this host cannot run `isa`, `count` exceeds a run, or a group reaches 2^59
    /// (the contract's limit).
    pub fn start(&mut self, isa: Isa, source: MaskSource, q: u64, first: u64, count: usize) {
        assert!(
            isa.is_available(),
            "invariant: the host runs {}",
            isa.name()
        );
        assert!(
            count <= RUN_GROUPS,
            "invariant: a run holds {count} <= {RUN_GROUPS} groups"
        );
        assert!(
            (first.checked_add(count as u64)).is_some_and(|last| last <= 1 << 59),
            "invariant: mask groups {first}.. (+{count}) are below 2^59"
        );
        (self.seed, self.stream, self.step) = (source.seed, source.stream, source.step);
        let key = seed_key(source.seed);
        for (r, round_key) in (0u32..).zip(&mut self.round_keys) {
            *round_key = [
                key[0].wrapping_add(W0.wrapping_mul(r)),
                key[1].wrapping_add(W1.wrapping_mul(r)),
            ];
        }
        (self.isa, self.count, self.next) = (isa as u32, count as u32, 0);
        match Threshold::new(q) {
            Some(threshold) => (self.q, self.planes) = (threshold.q, threshold.planes),
            None => {
                (self.q, self.planes) = (0, 0);
                self.constant = if q == 0 { 0 } else { u32::MAX };
            }
        }
        for (i, (low, high)) in self.low.iter_mut().zip(&mut self.high).enumerate() {
            let g = first + i as u64;
            (*low, *high) = (g as u32, (g >> 32) as u32);
        }
        // Lanes past the run's end start decided, so they never hold a vector's loop. (Whole
        // arrays, not slice fills: those are eight calls of memset.)
        let open: [u32; RUN_GROUPS] = std::array::from_fn(|i| if i < count { u32::MAX } else { 0 });
        (self.open, self.keep) = ([open; 4], [[0; RUN_GROUPS]; 4]);
        self.open_lanes = u32::from(count > 0);
    }

    /// True once every group is decided.
    pub fn is_done(&self) -> bool {
        self.next >= self.planes || self.open_lanes == 0
    }

    /// Decides the next few planes of every group still open (one Philox vector call per
    /// chain of planes); returns [`Run::is_done`].
    pub fn step(&mut self) -> bool {
        if self.is_done() {
            return true;
        }
        let threshold = Threshold {
            q: self.q,
            planes: self.planes,
        };
        match Isa::ALL[self.isa as usize] {
            Isa::Portable => portable_step(self, threshold),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::avx2(self, threshold),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::avx512(self, threshold),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => {
                panic!("invariant: only x86-64 starts these kernels")
            }
        }
        self.is_done()
    }

    /// Steps until every group is decided, then writes the run's keep bits to `out` (its
    /// first `count` groups; `out` holds at least that many).
    pub fn finish(&mut self, out: &mut [KeepWords]) {
        let count = self.count as usize;
        if self.planes == 0 {
            out[..count].fill([self.constant; 4]);
            return;
        }
        while !self.step() {}
        let [k0, k1, k2, k3] = &self.keep;
        for (i, words) in out[..count].iter_mut().enumerate() {
            *words = [k0[i], k1[i], k2[i], k3[i]];
        }
    }

    /// The source of the run's masks.
    fn source(&self) -> MaskSource {
        MaskSource {
            seed: self.seed,
            stream: self.stream,
            step: self.step,
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

/// One plane of every group still open.
fn portable_step(run: &mut Run, threshold: Threshold) {
    let source = run.source();
    let key = seed_key(source.seed);
    let k = run.next;
    let one = threshold.bit(k);
    for i in 0..run.count as usize {
        if (0..4).all(|w| run.open[w][i] == 0) {
            continue;
        }
        let g = u64::from(run.low[i]) | (u64::from(run.high[i]) << 32);
        let bits = philox4x32_10(counter(source, g, k), key);
        for (w, &bits) in bits.iter().enumerate() {
            let (open, keep) = (&mut run.open[w][i], &mut run.keep[w][i]);
            if one {
                *keep |= *open & !bits;
                *open &= bits;
            } else {
                *open &= !bits;
            }
        }
    }
    run.next += 1;
    run.open_lanes = u32::from(run.open.iter().flatten().any(|&w| w != 0));
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
        for isa in Isa::available() {
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
                    keep_bits(isa, SOURCE, q, first, &mut out);
                    for (i, words) in out.iter().enumerate() {
                        let g = first + i as u64;
                        assert_eq!(
                            *words,
                            reference(SOURCE, q, g),
                            "{isa:?}, q = {q:#x}, group {g}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "below 2^59")]
    fn groups_past_the_contract_are_refused() {
        let mut out = [[0u32; 4]; 2];
        keep_bits(Isa::Portable, SOURCE, 1 << 31, (1 << 59) - 1, &mut out);
    }

    #[test]
    fn runs_stepped_between_other_work_give_the_same_bits() {
        // Two runs interleaved step by step, as the JIT's loops drive them.
        for isa in Isa::available() {
            let q = keep_threshold(0.1);
            let mut a = Run::new(isa, SOURCE, q, 32, 16);
            let mut b = Run::new(isa, SOURCE, q, 48, 5);
            for _ in 0..3 {
                a.step();
                b.step();
            }
            let (mut out_a, mut out_b) = ([[0u32; 4]; 16], [[9u32; 4]; 16]);
            a.finish(&mut out_a);
            b.finish(&mut out_b);
            for (i, words) in out_a.iter().enumerate() {
                assert_eq!(*words, reference(SOURCE, q, 32 + i as u64), "{isa:?}");
            }
            for (i, words) in out_b.iter().enumerate() {
                let expected = if i < 5 {
                    reference(SOURCE, q, 48 + i as u64)
                } else {
                    [9; 4]
                };
                assert_eq!(
                    *words, expected,
                    "{isa:?}: only the run's groups are written"
                );
            }
        }
    }
}
