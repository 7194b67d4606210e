//! The host's f32 FMA peak: the yardstick every GEMM-bound figure is stated against (as a
//! share of it, measured in the same run, since hosts of one kind differ and shared hosts
//! drift).

use std::time::Instant;

#[cfg(target_arch = "x86_64")]
use super::x86;
use super::{Microkernel, Portable};
use crate::isa::Isa;

/// Independent accumulators of every kernel's peak loop ([`Microkernel::fma_chains`]): more
/// than an FMA's latency times the FMAs a core issues per cycle (4 x 2 on the hosts measured).
pub(super) const CHAINS: usize = 12;

/// Rounds of the peak loop per timed run: about 0.1 s on the hosts measured.
const STEPS: u64 = 10_000_000;

/// The f32 FMA peak in GFLOP/s (a fused multiply-add is two) of `threads` threads each
/// running `isa`'s FMA loop on independent accumulators, the best of `rounds` timed runs.
///
/// # Panics
/// If the host cannot run `isa`, or `threads` or `rounds` is 0.
pub fn fma_peak(isa: Isa, threads: usize, rounds: usize) -> f64 {
    assert!(isa.is_available(), "the host cannot run {}", isa.name());
    assert!(
        threads > 0 && rounds > 0,
        "at least one thread and one round"
    );
    let lanes = match isa {
        Isa::Portable => Portable::LANES,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::Avx2::LANES,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::Avx512::LANES,
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("only x86-64 has them"),
    };
    // The portable loop is a chain of calls where the CPU lacks FMA: fewer rounds.
    let steps = if isa == Isa::Portable {
        STEPS / 10
    } else {
        STEPS
    };
    let run = move || {
        // SAFETY: the host runs `isa` (checked above).
        let sum = unsafe {
            match isa {
                Isa::Portable => Portable::fma_chains(steps),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => x86::Avx2::fma_chains(steps),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => x86::Avx512::fma_chains(steps),
                #[cfg(not(target_arch = "x86_64"))]
                Isa::Avx2 | Isa::Avx512 => unreachable!("only x86-64 has them"),
            }
        };
        std::hint::black_box(sum);
    };
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 1..threads {
                scope.spawn(run);
            }
            run();
        });
        best = best.min(start.elapsed().as_secs_f64());
    }
    let flops = 2.0 * (steps * (CHAINS * lanes) as u64 * threads as u64) as f64;
    flops / best / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_isa_has_a_finite_positive_peak() {
        for isa in Isa::available() {
            let peak = fma_peak(isa, 1, 1);
            assert!(peak.is_finite() && peak > 0.0, "{isa:?}: {peak}");
        }
    }
}
