//! The caller-owned generator: a seed and the step of the next train-mode execution.

use crate::error::{Error, Result};

/// A seed and a step counter, passed explicitly to every execution. Train-mode executions
/// draw their masks at the current step and advance it by one; eval-mode ones do not.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Generator {
    seed: u64,
    /// The step of the next train-mode execution; 2^32 means exhausted.
    step: u64,
    /// Host-side streams handed out so far (see [`Generator::host_stream`]).
    host_streams: u32,
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

    /// Claims the current step for one train-mode execution and advances the counter.
    /// At step 2^32 this is an error: reseed rather than repeat masks.
    pub fn next_step(&mut self) -> Result<u32> {
        let step =
            u32::try_from(self.step).map_err(|_| Error::StepsExhausted { seed: self.seed })?;
        self.step += 1;
        Ok(step)
    }

    /// The count of host streams handed out, for [`crate::rng::host`].
    pub(crate) fn claim_host_stream(&mut self) -> u32 {
        let n = self.host_streams;
        self.host_streams = n
            .checked_add(1)
            .filter(|&m| m < 1 << 31)
            .expect("invariant: fewer than 2^31 host tensors are drawn from one generator");
        n
    }
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
}
