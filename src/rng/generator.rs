//! The caller-owned generator: a seed, the step of the next train-mode execution, and the count
//! of host streams handed out for filling tensors.

use super::host::{PhiloxStream, int_range};
use crate::alloc;
use crate::error::{Error, Result};
use crate::graph::dropout::FIRST_HOST_STREAM;
use crate::tensor::{Tensor, elements};
use crate::types::{DType, Shape};

/// A seed and a step counter, passed explicitly to every execution. Train-mode executions
/// draw their masks at the current step and advance it by one; eval-mode ones do not.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Generator {
    seed: u64,
    /// The step of the next train-mode execution; 2^32 means exhausted.
    step: u64,
    /// Host-side streams handed out so far (see [`Generator::host_stream`]).
    host_streams: u64,
}

impl Generator {
    /// A generator at step 0.
    pub fn new(seed: u64) -> Generator {
        Generator {
            seed,
            step: 0,
            host_streams: 0,
        }
    }

    /// The same generator positioned at `step` (for replaying a given execution).
    pub fn with_step(mut self, step: u32) -> Generator {
        self.step = u64::from(step);
        self
    }

    /// The seed (the Philox key).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The step the next train-mode execution will use (2^32 once exhausted).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The number of host streams claimed so far (saved by checkpoints, so a resumed run
    /// draws the same host-side values).
    pub fn host_streams(&self) -> u64 {
        self.host_streams
    }

    /// The same generator with `count` host streams claimed (for resuming from a checkpoint).
    pub fn with_host_streams(mut self, count: u64) -> Generator {
        self.host_streams = count;
        self
    }

    /// Claims the current step for one train-mode execution and advances the counter.
    /// At step 2^32 this is an error: reseed rather than repeat masks.
    pub fn next_step(&mut self) -> Result<u32> {
        let step =
            u32::try_from(self.step).map_err(|_| Error::StepsExhausted { seed: self.seed })?;
        self.step += 1;
        Ok(step)
    }

    /// Claims `count` consecutive steps for as many train-mode executions (the samples of one
    /// Monte Carlo call) and returns the first, all or nothing: past 2^32 it is the error of
    /// [`Generator::next_step`] and nothing is claimed.
    pub fn claim_steps(&mut self, count: u32) -> Result<u32> {
        let first =
            u32::try_from(self.step).map_err(|_| Error::StepsExhausted { seed: self.seed })?;
        let end = self.step + u64::from(count);
        if end > 1 << 32 {
            return Err(Error::StepsExhausted { seed: self.seed });
        }
        self.step = end;
        Ok(first)
    }

    /// Claims the steps of one drawing run of a graph that draws `count` samples
    /// ([`crate::graph::steps_per_run`]), all or nothing, as [`Generator::claim_steps`].
    pub(crate) fn claim_run(&mut self, count: usize) -> Result<u32> {
        let count = u32::try_from(count).map_err(|_| Error::StepsExhausted { seed: self.seed })?;
        self.claim_steps(count)
    }

    /// Claims the next host stream: the `n`-th claim (from 0) is Philox stream
    /// `2^31 + n mod 2^31` at step `n / 2^31`. The step word keeps claims distinct past 2^31
    /// tensors, so no user can run out; the count would wrap only after 2^63 claims.
    pub(crate) fn claim_host_stream(&mut self) -> PhiloxStream {
        let n = self.host_streams;
        self.host_streams = n.wrapping_add(1);
        let index = (n % u64::from(FIRST_HOST_STREAM)) as u32;
        let step = (n >> 31) as u32;
        PhiloxStream::new(self.seed, FIRST_HOST_STREAM + index, step)
    }

    /// A fresh host stream for arbitrary use; each call claims a new one (see
    /// [`crate::rng::host`] for the algorithms that turn it into values).
    pub fn host_stream(&mut self) -> PhiloxStream {
        self.claim_host_stream()
    }

    /// An `f32` tensor uniform in `[low, high)` ([`PhiloxStream::uniform_range`] per element,
    /// row-major), from a fresh host stream: its values do not depend on earlier draws' sizes.
    /// Fails, claiming no stream, if the memory cannot be had.
    pub fn uniform(&mut self, shape: impl Into<Shape>, low: f32, high: f32) -> Result<Tensor> {
        let shape = shape.into();
        let mut data = host_buffer(&shape, DType::F32)?;
        let mut stream = self.claim_host_stream();
        data.extend((0..shape.numel()).map(|_| stream.uniform_range(low, high)));
        Tensor::from_f32(shape, data)
    }

    /// An `f32` tensor of `mean + std * z`, `z` standard normal ([`PhiloxStream::fill_normal`]),
    /// from a fresh host stream.
    /// Fails, claiming no stream, if the memory cannot be had.
    pub fn normal(&mut self, shape: impl Into<Shape>, mean: f32, std: f32) -> Result<Tensor> {
        let shape = shape.into();
        let mut data = host_buffer(&shape, DType::F32)?;
        data.resize(shape.numel(), 0.0);
        self.claim_host_stream().fill_normal(&mut data, mean, std);
        Tensor::from_f32(shape, data)
    }

    /// An `i32` tensor uniform in `low..high` ([`PhiloxStream::randint`] per element), from a
    /// fresh host stream; an empty range is an error (and claims no stream).
    pub fn randint(&mut self, shape: impl Into<Shape>, low: i32, high: i32) -> Result<Tensor> {
        let shape = shape.into();
        let n = int_range(low, high)?;
        let mut data = host_buffer(&shape, DType::I32)?;
        let mut stream = self.claim_host_stream();
        data.extend((0..shape.numel()).map(|_| low.wrapping_add_unsigned(stream.below(n))));
        Tensor::from_i32(shape, data)
    }
}

/// Room for the elements of a host tensor of `shape`, or [`Error::OutOfMemory`].
fn host_buffer<T>(shape: &Shape, dtype: DType) -> Result<Vec<T>> {
    let n = elements(shape, dtype)?;
    alloc::with_capacity(n, || format!("a tensor of type {dtype}{shape}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_advance_and_end_at_2_pow_32() {
        let mut g = Generator::new(7);
        assert_eq!(g.next_step().unwrap(), 0);
        assert_eq!(g.next_step().unwrap(), 1);
        let mut g = Generator::new(7).with_step(u32::MAX);
        assert_eq!(g.next_step().unwrap(), u32::MAX);
        let err = g.next_step().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the generator with seed 7 has used all 2^32 steps; reseed it"
        );
    }

    #[test]
    fn host_streams_count_up_then_move_to_the_next_step() {
        let mut g = Generator::new(1);
        assert_eq!(g.host_stream().stream(), 1 << 31);
        let s = g.host_stream();
        assert_eq!((s.stream(), s.step()), ((1 << 31) + 1, 0));
        g.host_streams = (1 << 31) - 1;
        let s = g.host_stream();
        assert_eq!((s.stream(), s.step()), (u32::MAX, 0));
        let s = g.host_stream();
        assert_eq!((s.stream(), s.step()), (1 << 31, 1));
    }
}
