//! A compiled graph's reusable run memory: the arena (intermediate buffers) and the address
//! table, kept between runs so that a call with preallocated outputs
//! ([`super::CompiledGraph::run_into`]) allocates nothing.
//!
//! Each compiled graph keeps one [`Workspace`] behind a mutex that runs only `try_lock`: a
//! run that finds it free (the usual case: one uncontended atomic swap each way) reuses it,
//! and a run that finds it busy (another thread is running the same graph) makes a fresh one
//! for itself. No run ever waits for another. The arena is made, zeroed, by the first run
//! (compiling allocates none of it, so `dump` never does) through [`crate::alloc`], so an
//! arena the system will not give is an error of that run; generated code writes every
//! intermediate before reading it, so reused bytes are never observed.

use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::alloc;
use crate::error::Result;

/// A 16-byte aligned piece of the arena, so the arena starts 16-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub(crate) struct Chunk([u8; 16]);

// SAFETY: bytes, all zero, are a valid `Chunk`; it has no drop glue.
unsafe impl alloc::Zeroable for Chunk {}

/// The memory of one run: the arena and the table of buffer addresses.
pub(crate) struct Workspace {
    pub arena: Vec<Chunk>,
    pub table: Vec<usize>,
}

impl Workspace {
    /// A workspace for an arena of `bytes` bytes and a table of `slots` addresses, or
    /// [`crate::Error::OutOfMemory`].
    pub(crate) fn new(bytes: usize, slots: usize) -> Result<Workspace> {
        let what = || "the arena of intermediate values".to_string();
        Ok(Workspace {
            arena: alloc::zeroed(bytes.div_ceil(size_of::<Chunk>()), what)?,
            table: alloc::with_capacity(slots, || "the buffer address table".to_string())?,
        })
    }
}

/// The workspace a compiled graph keeps between runs, made by the first run that needs it.
pub(crate) struct Cached {
    slot: Mutex<Option<Workspace>>,
    bytes: usize,
    slots: usize,
}

/// A workspace lent to one run: the cached one, or a fresh one if that was busy.
pub(crate) enum Lent<'a> {
    Cached(MutexGuard<'a, Option<Workspace>>),
    Fresh(Workspace),
}

impl Lent<'_> {
    /// The workspace.
    pub(crate) fn get(&mut self) -> &mut Workspace {
        match self {
            Lent::Cached(guard) => guard.as_mut().expect("invariant: lend fills the cache"),
            Lent::Fresh(workspace) => workspace,
        }
    }
}

impl Cached {
    /// A cache for workspaces with an arena of `bytes` bytes and `slots` table entries;
    /// allocates nothing yet.
    pub(crate) fn new(bytes: usize, slots: usize) -> Cached {
        Cached {
            slot: Mutex::new(None),
            bytes,
            slots,
        }
    }

    /// The cached workspace if no other run holds it (made now if this is the first run),
    /// else a fresh one; never waits. Fails only if the memory cannot be had.
    pub(crate) fn lend(&self) -> Result<Lent<'_>> {
        let mut guard = match self.slot.try_lock() {
            Ok(guard) => guard,
            // A run that panicked left nothing half-done that matters: the arena holds no
            // state between runs and the table is rebuilt by every run.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Ok(Lent::Fresh(Workspace::new(self.bytes, self.slots)?));
            }
        };
        if guard.is_none() {
            *guard = Some(Workspace::new(self.bytes, self.slots)?);
        }
        Ok(Lent::Cached(guard))
    }
}
