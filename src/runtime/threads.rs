//! Running a compiled graph's phases on one or more threads.
//!
//! Phases run in order on the calling thread, each to completion before the next starts (a
//! later phase reads what an earlier one wrote). With one thread every phase is one call over
//! all its units, with no pool involved. With `n`, a phase of several chunks
//! ([`crate::plan::Phase::chunks`]) is shared by the caller and up to `n - 1` threads of a
//! persistent rayon pool: each claims the next chunk from an atomic counter and runs it as
//! one call, until none is left. A phase of one chunk is one call on the caller (and a graph
//! whose phases are all one chunk never touches the pool). Units are fixed by the shapes and
//! every unit computes the same bits in any call on any thread, so the results do not depend
//! on the thread count.
//!
//! The caller never waits for a helper that has not started: waking a parked pool thread on
//! an idle CPU took about 100 µs on the (virtual) machine this was measured on, longer than
//! many phases. So the caller claims chunks itself from the start and, once every chunk is
//! claimed, waits only for the chunks helpers are running. The helpers' job owns what it
//! needs (the code, the table of addresses, the counters), so a helper that starts late finds
//! nothing left to claim and ends without touching a buffer. Pools are built once per thread
//! count and shared by every compiled graph of the process: a run never spawns a thread (that
//! would cost about 80 µs a call). No lock is taken on the way (only a failing chunk takes
//! one, to record its error); a split phase allocates its shared state and rayon one box per
//! helper.
//!
//! Errors are deterministic too: a chunk stops at its first failing unit, and the failure of
//! the earliest failing chunk is the one reported, the same as a single thread would report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rayon::ThreadPool;

use crate::error::{Error, Result};
use crate::jit::{Jit, Status};
use crate::plan::{Phase, PhaseCall};

/// The process-wide pools, by the thread count of the compilations using them (a pool holds
/// one thread fewer: the caller is the last).
static POOLS: Mutex<BTreeMap<usize, Arc<ThreadPool>>> = Mutex::new(BTreeMap::new());

/// Where a compiled graph's phases run.
#[derive(Clone)]
pub(crate) enum Threads {
    /// On the calling thread, each phase as one call.
    Caller,
    /// Chunks of split phases shared by the caller and this pool's threads.
    Pool(Arc<ThreadPool>),
}

impl Threads {
    /// One thread: the caller; `n` more: the caller and the shared pool of `n - 1` threads,
    /// built on first use. [`Error::Threads`] for 0 threads or a pool the system cannot start.
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
                    .num_threads(threads - 1)
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

    /// Makes every call of `calls` (a phase of `jit` over a range of its units) over `table`
    /// in order; stops at the first failing call and returns its status (code 0 if none
    /// failed).
    pub(crate) fn run(
        &self,
        jit: &Arc<Jit>,
        (phases, calls): (&[Phase], &[PhaseCall]),
        table: &[usize],
        seed: u64,
        step: u32,
    ) -> Status {
        assert_eq!(
            jit.phases(),
            phases.len(),
            "invariant: one function per phase"
        );
        let active = calls.iter().filter(|c| c.end > c.begin);
        match self {
            Threads::Caller => {
                for call in active {
                    let status = jit.call(call.phase, table, seed, step, (call.begin, call.end));
                    if status.code != 0 {
                        return status;
                    }
                }
            }
            Threads::Pool(pool) => {
                // Helpers own what they use, so the table is shared from the first split on.
                let mut shared: Option<Arc<[usize]>> = None;
                for call in active {
                    let phase = &phases[call.phase];
                    let status = if call.end - call.begin > phase.chunk_units {
                        let table = shared.get_or_insert_with(|| table.into());
                        let args = (Arc::clone(jit), Arc::clone(table), seed, step);
                        Split::new(args, call, phase).run(pool)
                    } else {
                        jit.call(call.phase, table, seed, step, (call.begin, call.end))
                    };
                    if status.code != 0 {
                        return status;
                    }
                }
            }
        }
        OK
    }
}

/// One split phase, shared by the caller and its helpers, who own it together.
struct Split {
    jit: Arc<Jit>,
    table: Arc<[usize]>,
    seed: u64,
    step: u32,
    /// The phase's index, the units of the call (`begin .. end`) and units per chunk.
    phase: usize,
    begin: usize,
    end: usize,
    chunk_units: usize,
    chunks: usize,
    /// The next chunk to claim (past `chunks` once all are claimed).
    next: AtomicUsize,
    /// How many chunks have finished.
    done: AtomicUsize,
    /// The earliest failing chunk and its status.
    first_failure: Mutex<Option<(usize, Status)>>,
}

impl Split {
    fn new(
        (jit, table, seed, step): (Arc<Jit>, Arc<[usize]>, u64, u32),
        call: &PhaseCall,
        phase: &Phase,
    ) -> Arc<Split> {
        Arc::new(Split {
            jit,
            table,
            seed,
            step,
            phase: call.phase,
            begin: call.begin,
            end: call.end,
            chunk_units: phase.chunk_units,
            chunks: (call.end - call.begin).div_ceil(phase.chunk_units),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            first_failure: Mutex::new(None),
        })
    }

    /// Runs the phase with helpers from `pool`; returns when every chunk has finished.
    fn run(self: Arc<Split>, pool: &ThreadPool) -> Status {
        let helpers = pool.current_num_threads().min(self.chunks - 1);
        for _ in 0..helpers {
            let split = Arc::clone(&self);
            pool.spawn(move || split.claim());
        }
        self.claim();
        // Every chunk is claimed; wait for the ones helpers are still running (Acquire: their
        // writes are visible after).
        let mut spins = 0u32;
        while self.done.load(Ordering::Acquire) < self.chunks {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let first = self.first_failure.lock();
        let first = first.unwrap_or_else(PoisonError::into_inner);
        first.map_or(OK, |(_, status)| status)
    }

    /// Runs chunks until none is left to claim. A chunk is only ever run while the caller
    /// waits for it, so its buffers are alive.
    fn claim(&self) {
        loop {
            // Relaxed: the counter only hands out chunk numbers.
            let chunk = self.next.fetch_add(1, Ordering::Relaxed);
            if chunk >= self.chunks {
                return;
            }
            let begin = self.begin + chunk * self.chunk_units;
            let end = (begin + self.chunk_units).min(self.end);
            let status =
                (self.jit).call(self.phase, &self.table, self.seed, self.step, (begin, end));
            if status.code != 0 {
                let mut first = (self.first_failure.lock()).unwrap_or_else(PoisonError::into_inner);
                if first.is_none_or(|(earliest, _)| chunk < earliest) {
                    *first = Some((chunk, status));
                }
            }
            // Release: the chunk's writes happen before the caller sees it done.
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// The status of a run without failure.
const OK: Status = Status {
    code: 0,
    details: [0; 2],
};
