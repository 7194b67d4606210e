//! Host-side randomness: the values that fill inputs, parameters and test tensors.
//!
//! Everything here draws from Philox4x32-10 in the streams reserved for the host (stream >= 2^31;
//! dropout nodes use the streams below), and every distribution is written down below rather
//! than taken from a library, so the values never change with a dependency's version.
//!
//! ```text
//! words    block b (u64) = philox4x32_10([b as u32, (b >> 32) as u32, stream, step], seed_key(seed)),
//!          b = 0, 1, 2, ...; the stream's words are block 0's four words in order, then block 1's, ...
//! by name  stream = 2^31 | (fnv1a32(UTF-8 bytes of name) & 0x7fff_ffff), step = 0
//! uniform  u = (w >> 8) as f32 * 2^-24                                   one word, u in [0, 1)
//! range    low + (high - low) * u                                        f32 ops, two roundings
//! normal   two words w1, w2:  u1 = ((w1 >> 8) + 1) * 2^-24 in (0, 1],  u2 = (w2 >> 8) * 2^-24,
//!          r = sqrt(-2 ln u1), z0 = r cos(2π u2), z1 = r sin(2π u2), all in f64, each rounded
//!          once to f32; z0 comes first, then z1; mean + std * z in f32 (two roundings)
//! integer  uniform in 0..n (n >= 1): Lemire's multiply-and-reject on u32 words:
//!          m = w * n (u64); if (m as u32) < (2^32 - n) % n draw again; result m >> 32
//! u64      (first word) | (second word) << 32
//! bytes    each word written little-endian, four bytes at a time; the unused bytes of the
//!          last word are dropped
//! ```
//!
//! `ln`, `cos` and `sin` come from the platform's libm through `f64`; their results are rounded
//! to f32 afterwards, so a last-bit difference between two libms changes a normal value only in
//! the rare case where it moves an f64 across an f32 rounding boundary.

use std::convert::Infallible;
use std::num::NonZeroU32;

use super::philox::{philox4x32_10, seed_key};
use crate::error::{Error, Result};
use crate::graph::dropout::FIRST_HOST_STREAM;

/// 2^-24: the weight of the lowest bit kept from a word by the uniform distributions.
const TWO_POW_MINUS_24: f32 = 1.0 / 16_777_216.0;

/// The word sequence of one host stream `(seed, stream, step)`; see the module docs.
///
/// It implements [`rand::TryRng`] (and so [`rand::Rng`]), so `rand::RngExt` methods work on it;
/// those methods' algorithms belong to `rand`, so reproducible code uses the inherent ones.
#[derive(Clone, Debug)]
pub struct PhiloxStream {
    key: [u32; 2],
    stream: u32,
    step: u32,
    /// The next block to compute.
    block: u64,
    /// The current block's words; `words[next..]` are still unused.
    words: [u32; 4],
    next: usize,
}

impl PhiloxStream {
    /// The stream `(seed, stream, step)` from its first word on.
    ///
    /// `stream` has to be at least 2^31: the streams below belong to dropout nodes, and a host
    /// draw there would repeat a mask. Callers derive host streams from
    /// [`crate::graph::dropout::FIRST_HOST_STREAM`], so a smaller one is a bug and panics.
    pub fn new(seed: u64, stream: u32, step: u32) -> PhiloxStream {
        assert!(
            stream >= FIRST_HOST_STREAM,
            "invariant: host stream {stream} is at least 2^31 (lower streams belong to dropout nodes)"
        );
        PhiloxStream {
            key: seed_key(seed),
            stream,
            step,
            block: 0,
            words: [0; 4],
            next: 4,
        }
    }

    /// The stream of a named tensor: `2^31 | (fnv1a32(name) & 0x7fff_ffff)` at step 0, so each
    /// input or parameter gets its own values whatever the order they are filled in.
    pub fn for_name(seed: u64, name: &str) -> PhiloxStream {
        let stream = FIRST_HOST_STREAM | (fnv1a32(name.as_bytes()) & 0x7fff_ffff);
        PhiloxStream::new(seed, stream, 0)
    }

    /// The Philox stream word (at least 2^31).
    pub fn stream(&self) -> u32 {
        self.stream
    }

    /// The Philox step word.
    pub fn step(&self) -> u32 {
        self.step
    }

    /// The next 32-bit word.
    pub fn next_word(&mut self) -> u32 {
        if self.next == 4 {
            let b = self.block;
            let counter = [b as u32, (b >> 32) as u32, self.stream, self.step];
            self.words = philox4x32_10(counter, self.key);
            // 2^64 blocks are 2^66 words: no program gets there, so wrapping cannot repeat.
            self.block = b.wrapping_add(1);
            self.next = 0;
        }
        let word = self.words[self.next];
        self.next += 1;
        word
    }

    /// Uniform in `[0, 1)` from one word: `(w >> 8) as f32 * 2^-24`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_word() >> 8) as f32 * TWO_POW_MINUS_24
    }

    /// `low + (high - low) * u` in f32 with `u` from [`PhiloxStream::uniform`]. The rounding of
    /// the two f32 operations can make the result equal `high` when the range is wide.
    pub fn uniform_range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.uniform()
    }

    /// Two independent standard normal values from two words, by Box-Muller (module docs).
    pub fn normal_pair(&mut self) -> [f32; 2] {
        let w1 = self.next_word();
        let w2 = self.next_word();
        let scale = f64::from(TWO_POW_MINUS_24);
        // u1 is in (0, 1] so the logarithm stays finite; u2 in [0, 1) covers each angle once.
        let u1 = f64::from((w1 >> 8) + 1) * scale;
        let u2 = f64::from(w2 >> 8) * scale;
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        [(r * theta.cos()) as f32, (r * theta.sin()) as f32]
    }

    /// Fills `out` with `mean + std * z` (f32, two roundings), `z` from consecutive
    /// [`PhiloxStream::normal_pair`]s in order; an odd length drops the last pair's `z1`.
    pub fn fill_normal(&mut self, out: &mut [f32], mean: f32, std: f32) {
        for chunk in out.chunks_mut(2) {
            let pair = self.normal_pair();
            for (slot, z) in chunk.iter_mut().zip(pair) {
                *slot = mean + std * z;
            }
        }
    }

    /// Uniform in `0..n` without bias: Lemire's multiply-and-reject on words.
    pub fn below(&mut self, n: NonZeroU32) -> u32 {
        let n = n.get();
        let mut m = u64::from(self.next_word()) * u64::from(n);
        if (m as u32) < n {
            // The low half falls below 2^32 mod n for exactly the surplus products; redraw those.
            let threshold = n.wrapping_neg() % n;
            while (m as u32) < threshold {
                m = u64::from(self.next_word()) * u64::from(n);
            }
        }
        (m >> 32) as u32
    }

    /// Uniform in `low..high` ([`PhiloxStream::below`] of its size, added to `low`); an empty
    /// range is an error.
    pub fn randint(&mut self, low: i32, high: i32) -> Result<i32> {
        let n = int_range(low, high)?;
        Ok(low.wrapping_add_unsigned(self.below(n)))
    }
}

/// The number of values in `low..high`, or the error for an empty range.
pub(crate) fn int_range(low: i32, high: i32) -> Result<NonZeroU32> {
    let size = i64::from(high) - i64::from(low);
    // A non-empty i32 range has at most 2^32 - 1 values, so it fits a u32.
    u32::try_from(size)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or(Error::EmptyRange { low, high })
}

/// FNV-1a, 32 bits: offset basis 0x811c9dc5, prime 0x01000193, xor then multiply per byte.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

impl rand::TryRng for PhiloxStream {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Infallible> {
        Ok(self.next_word())
    }

    /// The first word is the low half.
    fn try_next_u64(&mut self) -> std::result::Result<u64, Infallible> {
        let low = u64::from(self.next_word());
        let high = u64::from(self.next_word());
        Ok(low | high << 32)
    }

    /// Words little-endian, four bytes each; the unused bytes of the last word are dropped.
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Infallible> {
        for chunk in dst.chunks_mut(4) {
            let bytes = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_philox_blocks_in_order() {
        let mut s = PhiloxStream::new(5, FIRST_HOST_STREAM + 3, 9);
        for b in 0..3u32 {
            let block = philox4x32_10([b, 0, FIRST_HOST_STREAM + 3, 9], seed_key(5));
            for word in block {
                assert_eq!(s.next_word(), word);
            }
        }
    }

    #[test]
    fn fnv1a32_known_values() {
        // The published test vectors of FNV-1a 32.
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn int_ranges() {
        assert_eq!(
            int_range(3, 3).unwrap_err().to_string(),
            "randint needs low < high, but got low 3 and high 3"
        );
        assert!(int_range(4, 3).is_err());
        assert_eq!(int_range(-2, 1).unwrap().get(), 3);
        assert_eq!(int_range(i32::MIN, i32::MAX).unwrap().get(), u32::MAX);
    }

    #[test]
    #[should_panic(expected = "invariant: host stream 7 is at least 2^31")]
    fn graph_streams_are_refused() {
        PhiloxStream::new(0, 7, 0);
    }
}
