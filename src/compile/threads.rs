//! Running a compiled graph's phases on one or more threads.
//!
//! Phases run in order, each to completion before the next starts (a later phase reads what
//! an earlier one wrote). With one thread every phase is one call over all its units, on the
//! calling thread, with no pool involved. With more, a phase of several chunks
//! ([`crate::lower::Phase::chunks`]) runs its chunks on a persistent rayon pool, each chunk one
//! call; a phase of one chunk is one call (and a graph whose phases are all one chunk runs on
//! the caller as with one thread). Chunks are fixed by the shapes, and every unit computes
//! the same bits wherever it runs, so the results do not depend on the thread count.
//!
//! Pools are built once per thread count and shared by every compiled graph of the process:
//! a run never spawns a thread (that would cost about 80 µs a call here). A run hands its
//! phases to the pool once (`install`, where rayon parks the caller on a latch until the
//! pool is done); this code takes no lock on the way (only a failing chunk does, to record
//! its error).
//!
//! Errors are deterministic too: a chunk stops at its first failing unit, and the failure of
//! the earliest failing chunk is the one reported, the same as a single thread would report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rayon::ThreadPool;
use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::error::{Error, Result};
use crate::jit::{Jit, Status};
use crate::lower::Phase;

/// The process-wide pools, by thread count.
static POOLS: Mutex<BTreeMap<usize, Arc<ThreadPool>>> = Mutex::new(BTreeMap::new());

/// Where a compiled graph's phases run.
#[derive(Clone)]
pub(crate) enum Threads {
    /// On the calling thread, each phase as one call.
    Caller,
    /// Chunks of split phases on this pool's threads.
    Pool(Arc<ThreadPool>),
}

impl Threads {
    /// One thread: the caller; more: the shared pool of that many threads, built on first
    /// use. [`Error::Threads`] for 0 threads or a pool the system cannot start.
    pub(crate) fn new(threads: usize) -> Result<Threads> {
        let fail = |reason: String| Error::Threads { threads, reason };
        match threads {
            0 => Err(fail("at least one thread is needed".into())),
            1 => Ok(Threads::Caller),
            _ => {
                let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(pool) = pools.get(&threads) {
                    return Ok(Threads::Pool(Arc::clone(pool)));
                }
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("dropjit-{i}"))
                    .build()
                    .map_err(|e| fail(e.to_string()))?;
                let pool = Arc::new(pool);
                pools.insert(threads, Arc::clone(&pool));
                Ok(Threads::Pool(pool))
            }
        }
    }

    /// Where `phases` run: on the caller if none of them splits into several chunks (a pool
    /// would only add a hand-over to another thread), else here.
    pub(crate) fn for_phases(self, phases: &[Phase]) -> Threads {
        if phases.iter().any(|phase| phase.chunks() > 1) {
            self
        } else {
            Threads::Caller
        }
    }

    /// Runs every phase of `jit` over `table` in order; stops at the first failing phase
    /// and returns its status (code 0 if none failed).
    pub(crate) fn run(
        &self,
        jit: &Jit,
        phases: &[Phase],
        table: &[usize],
        seed: u64,
        step: u32,
    ) -> Status {
        assert_eq!(
            jit.phases(),
            phases.len(),
            "invariant: one function per phase"
        );
        let run = Run {
            jit,
            table,
            seed,
            step,
        };
        match self {
            Threads::Caller => run.all(phases, &|i, phase| run.whole(i, phase)),
            Threads::Pool(pool) => {
                pool.install(|| run.all(phases, &|i, phase| run.split(i, phase)))
            }
        }
    }
}

/// One run's arguments, shared by every call.
struct Run<'a> {
    jit: &'a Jit,
    table: &'a [usize],
    seed: u64,
    step: u32,
}

impl Run<'_> {
    /// The phases in order through `one`, up to the first failure.
    fn all(&self, phases: &[Phase], one: &(dyn Fn(usize, &Phase) -> Status + Sync)) -> Status {
        for (i, phase) in phases.iter().enumerate() {
            if phase.units == 0 {
                continue;
            }
            let status = one(i, phase);
            if status.code != 0 {
                return status;
            }
        }
        OK
    }

    /// Phase `i` as one call.
    fn whole(&self, i: usize, phase: &Phase) -> Status {
        self.jit
            .call(i, self.table, self.seed, self.step, (0, phase.units))
    }

    /// Phase `i` as one call per chunk, on the current pool.
    fn split(&self, i: usize, phase: &Phase) -> Status {
        let chunks = phase.chunks();
        if chunks <= 1 {
            return self.whole(i, phase);
        }
        let first_failure: Mutex<Option<(usize, Status)>> = Mutex::new(None);
        (0..chunks).into_par_iter().for_each(|chunk| {
            let begin = chunk * phase.chunk_units;
            let end = (begin + phase.chunk_units).min(phase.units);
            let status = self
                .jit
                .call(i, self.table, self.seed, self.step, (begin, end));
            if status.code != 0 {
                let mut first = first_failure.lock().unwrap_or_else(PoisonError::into_inner);
                if first.is_none_or(|(earliest, _)| chunk < earliest) {
                    *first = Some((chunk, status));
                }
            }
        });
        let first = first_failure.into_inner();
        let first = first.unwrap_or_else(PoisonError::into_inner);
        first.map_or(OK, |(_, status)| status)
    }
}

/// The status of a run without failure.
const OK: Status = Status {
    code: 0,
    details: [0; 2],
};
