//! The bit-plane dropout of RNG contract v1 ([`dropjit::rng::mask`]) as plain Rust, fused
//! (mask bits and apply in one pass, no mask buffer): what rustc and LLVM make of the same
//! contract, the reference the JIT's kernel is measured against. `tests/bitplane_reference.rs`
//! checks it against the interpreter bit for bit.
//!
//! Per group of 128 elements the keep bits are one 128-bit value (bit `v` of word `w` is lane
//! `4v + w`), decided plane by plane from the most significant: plane `k` keeps the undecided
//! lanes whose bit is 0 where `Q` has a 1, drops those whose bit is 1 where `Q` has a 0, and the
//! loop stops once no lane is undecided or after `Q`'s last 1 bit (the rest have `U >= Q`).

use dropjit::rng::mask::{GROUP_SIZE, keep_threshold};
use dropjit::rng::philox::{philox4x32_10, seed_key};

/// Where a mask comes from (the contract's seed, stream and step).
#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub seed: u64,
    pub stream: u32,
    pub step: u32,
}

/// The 128 keep bits of group `g` for threshold `q`: bit `v` of word `w` keeps lane `4v + w`.
pub fn keep_bits(source: Source, g: u64, q: u64) -> [u32; 4] {
    if q >= 1 << 32 {
        return [u32::MAX; 4];
    }
    if q == 0 {
        return [0; 4];
    }
    let q = q as u32;
    let key = seed_key(source.seed);
    let planes = 32 - q.trailing_zeros();
    let mut undecided = [u32::MAX; 4];
    let mut keep = [0u32; 4];
    for k in 0..planes {
        let counter = [
            g as u32,
            ((g >> 32) as u32) | (k << 27),
            source.stream,
            source.step,
        ];
        let bits = philox4x32_10(counter, key);
        let q_bit = 0u32.wrapping_sub((q >> (31 - k)) & 1);
        for w in 0..4 {
            // Lanes whose bit is below Q's bit are kept; lanes whose bit equals it stay open.
            keep[w] |= undecided[w] & !bits[w] & q_bit;
            undecided[w] &= !(bits[w] ^ q_bit);
        }
        if undecided == [0; 4] {
            break;
        }
    }
    keep
}

/// `y = keep ? x * scale : +0.0` for the elements of `x` (mask element `j` = element `j`),
/// starting at group `first_group`; `x.len()` is a multiple of 128 except for the last part.
/// Written four lanes at a time (one bit position of the four words) so that LLVM keeps the
/// mask arithmetic as vector ands instead of a branch per element.
pub fn dropout(source: Source, p: f64, first_group: u64, x: &[f32], y: &mut [f32]) {
    let q = keep_threshold(p);
    let scale = (1.0 / (1.0 - p)) as f32;
    for (g, (x, y)) in x
        .chunks(GROUP_SIZE)
        .zip(y.chunks_mut(GROUP_SIZE))
        .enumerate()
    {
        let keep = keep_bits(source, first_group + g as u64, q);
        if x.len() == GROUP_SIZE {
            for (v, (x, y)) in x.chunks_exact(4).zip(y.chunks_exact_mut(4)).enumerate() {
                for w in 0..4 {
                    let mask = ((keep[w] << (31 - v)) as i32 >> 31) as u32;
                    y[w] = f32::from_bits((x[w] * scale).to_bits() & mask);
                }
            }
        } else {
            for (e, (x, y)) in x.iter().zip(y.iter_mut()).enumerate() {
                let mask = 0u32.wrapping_sub((keep[e % 4] >> (e / 4)) & 1);
                *y = f32::from_bits((x * scale).to_bits() & mask);
            }
        }
    }
}
