//! A compiled graph's reusable run memory: the arena (intermediate buffers) and the address
//! table, kept between runs so that a call with preallocated outputs
//! ([`super::CompiledGraph::run_into`]) allocates nothing.
//!
//! Each compiled graph keeps one [`Workspace`] behind a mutex that runs only `try_lock`: a
//! run that finds it free (the usual case: one uncontended atomic swap each way) reuses it,
//! and a run that finds it busy (another thread is running the same graph) makes a fresh one
//! for itself. No run ever waits for another. The arena is zeroed once, when made; generated
//! code writes every intermediate before reading it, so reused bytes are never observed.

use std::sync::{Mutex, MutexGuard, TryLockError};

/// A 16-byte aligned piece of the arena, so the arena starts 16-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub(crate) struct Chunk([u8; 16]);

/// The memory of one run: the arena and the table of buffer addresses.
pub(crate) struct Workspace {
    pub arena: Vec<Chunk>,
    pub table: Vec<usize>,
}

impl Workspace {
    /// A workspace for an arena of `bytes` bytes and a table of `slots` addresses.
    pub(crate) fn new(bytes: usize, slots: usize) -> Workspace {
        Workspace {
            arena: vec![Chunk([0; 16]); bytes.div_ceil(size_of::<Chunk>())],
            table: Vec::with_capacity(slots),
        }
    }
}

/// The workspace a compiled graph keeps between runs.
pub(crate) struct Cached {
    slot: Mutex<Workspace>,
    bytes: usize,
    slots: usize,
}

/// A workspace lent to one run: the cached one, or a fresh one if that was busy.
pub(crate) enum Lent<'a> {
    Cached(MutexGuard<'a, Workspace>),
    Fresh(Workspace),
}

impl Lent<'_> {
    /// The workspace.
    pub(crate) fn get(&mut self) -> &mut Workspace {
        match self {
            Lent::Cached(guard) => guard,
            Lent::Fresh(workspace) => workspace,
        }
    }
}

impl Cached {
    /// A cached workspace for an arena of `bytes` bytes and `slots` table entries.
    pub(crate) fn new(bytes: usize, slots: usize) -> Cached {
        Cached {
            slot: Mutex::new(Workspace::new(bytes, slots)),
            bytes,
            slots,
        }
    }

    /// The cached workspace if no other run holds it, else a fresh one; never waits.
    pub(crate) fn lend(&self) -> Lent<'_> {
        match self.slot.try_lock() {
            Ok(guard) => Lent::Cached(guard),
            // A run that panicked left nothing half-done that matters: the arena holds no
            // state between runs and the table is rebuilt by every run.
            Err(TryLockError::Poisoned(poisoned)) => Lent::Cached(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => Lent::Fresh(Workspace::new(self.bytes, self.slots)),
        }
    }
}
