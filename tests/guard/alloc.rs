//! A global allocator that puts every heap buffer against an inaccessible (`PROT_NONE`) page,
//! so an access one byte past the guarded side of a buffer faults (SIGSEGV kills the test
//! binary, which fails the run). Zero-size requests and alignments above a page go to the
//! system allocator.
//!
//! Guarded blocks come from one large reservation of address space, mapped `PROT_NONE` at
//! first use and never unmapped: a new block makes its data pages readable and writable and
//! leaves its guard page as it is. A freed block of a few pages goes onto a free list for its
//! page count and is handed out again as it is (two system calls and a page fault per
//! allocation made the compiler several times slower); a larger one gives its memory back
//! and becomes inaccessible again, but stays mapped, since a hole could be filled by the
//! system allocator's own `mmap`. So `dealloc` tells guarded blocks from the system
//! allocator's by address alone.
//!
//! A guard sits past a buffer's capacity, not its length: tests check that the vectors they
//! guard have no spare capacity.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Address space reserved for guarded blocks: 4 TiB, of the 128 TiB a 64-bit Linux process
/// has. Blocks of more than [`RECYCLED_PAGES`] data pages are not reused, so this bounds the
/// bytes (in whole pages plus one guard page each) that a test binary may allocate in them
/// over its whole life; past it, allocations go to the system allocator
/// ([`unguarded_count`]).
const RESERVATION: usize = 1 << 42;

/// Freed blocks of up to this many data pages are recycled.
const RECYCLED_PAGES: usize = 8;

/// Which end of each guarded buffer touches the guard page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code, reason = "each test binary constructs one side")]
pub enum Side {
    /// The buffer ends where the guard page begins: the first byte past the end faults.
    End,
    /// The buffer begins where the guard page ends: the byte before the start faults.
    Start,
}

/// The allocator: `#[global_allocator] static A: GuardPages = GuardPages::new(Side::End);`.
pub struct GuardPages {
    side: Side,
}

impl GuardPages {
    /// An allocator guarding the given side of every guarded buffer.
    pub const fn new(side: Side) -> GuardPages {
        GuardPages { side }
    }
}

/// True if `ptr` points into a guarded block (a live one, if the caller owns a live buffer).
pub fn is_guarded(ptr: *const u8) -> bool {
    let base = BASE.load(Ordering::Acquire);
    base != 0 && (base..base + RESERVATION).contains(&(ptr as usize))
}

/// How many allocations that should have been guarded were not, because the guard ran out
/// of address space or of mappings; they went to the system allocator instead.
pub fn unguarded_count() -> usize {
    UNGUARDED.load(Ordering::Relaxed)
}

static UNGUARDED: AtomicUsize = AtomicUsize::new(0);

/// The start of the reservation, 0 until the first guarded allocation.
static BASE: AtomicUsize = AtomicUsize::new(0);
/// The bytes of the reservation handed out so far (blocks are taken from the front).
static USED: AtomicUsize = AtomicUsize::new(0);
/// Freed blocks with `i + 1` data pages at index `i`: where the top block's data pages
/// start, 0 if none. Each stack is linked through the first word of its blocks' data pages,
/// which stay writable.
static FREE: Mutex<[usize; RECYCLED_PAGES]> = Mutex::new([0; RECYCLED_PAGES]);

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).expect("invariant: the page size is positive")
}

/// The reservation's start, mapping it on first use; `None` if the mapping fails.
fn reservation() -> Option<usize> {
    let base = BASE.load(Ordering::Acquire);
    if base != 0 {
        return Some(base);
    }
    // SAFETY: a fresh anonymous mapping at an address the kernel picks touches no existing
    // memory. MAP_NORESERVE: inaccessible pages commit no memory.
    let fresh = unsafe {
        libc::mmap(
            ptr::null_mut(),
            RESERVATION,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if fresh == libc::MAP_FAILED {
        return None;
    }
    match BASE.compare_exchange(0, fresh as usize, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(fresh as usize),
        Err(winner) => {
            // Another thread mapped its reservation first; ours was never used.
            // SAFETY: `fresh` is the mapping made above, of this length, and unshared.
            unsafe { libc::munmap(fresh, RESERVATION) };
            Some(winner)
        }
    }
}

/// Where a guarded buffer of `layout` lies in its block: the offset of its data pages from
/// the block's start, their length, and the offset of the buffer from the data pages' start.
/// A block is the data pages plus one guard page, on the guarded side.
struct Placement {
    pages_offset: usize,
    pages_len: usize,
    buffer_offset: usize,
}

impl Placement {
    fn of(layout: Layout, side: Side) -> Placement {
        let page = page_size();
        // The buffer's start must stay aligned, so at the end side it starts
        // `size` rounded up to the alignment before the guard page: up to `align - 1` bytes
        // of slack after its end are not guarded (for `f32` and `i32` data, align 4, the
        // sizes are multiples of 4 and there is none; the run's arena, align 16, holds a
        // multiple of 16 bytes).
        let span = layout.size().next_multiple_of(layout.align());
        let pages_len = span.div_ceil(page) * page;
        match side {
            Side::End => Placement {
                pages_offset: 0,
                pages_len,
                buffer_offset: pages_len - span,
            },
            // Pages start aligned to any alignment up to a page.
            Side::Start => Placement {
                pages_offset: page,
                pages_len,
                buffer_offset: 0,
            },
        }
    }

    /// The whole block: data pages and the guard page.
    fn block_len(&self) -> usize {
        self.pages_len + page_size()
    }
}

impl GuardPages {
    fn alloc_guarded(&self, layout: Layout) -> *mut u8 {
        let Some(base) = reservation() else {
            return ptr::null_mut();
        };
        let placement = Placement::of(layout, self.side);
        if let Some(pages) = pop_free(placement.pages_len) {
            // Its data pages are still readable and writable, its guard page inaccessible.
            return (pages + placement.buffer_offset) as *mut u8;
        }
        let block_len = placement.block_len();
        let offset = USED.fetch_add(block_len, Ordering::Relaxed);
        if offset + block_len > RESERVATION {
            return ptr::null_mut();
        }
        let pages = (base + offset + placement.pages_offset) as *mut libc::c_void;
        // SAFETY: the pages lie inside the reservation, in a block no other allocation got
        // (`USED` hands each range out once); making them accessible touches nothing else.
        let made = unsafe {
            libc::mprotect(
                pages,
                placement.pages_len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if made != 0 {
            return ptr::null_mut();
        }
        pages.cast::<u8>().wrapping_add(placement.buffer_offset)
    }

    /// # Safety
    /// `ptr` came from `alloc_guarded(layout)` and is freed once.
    unsafe fn dealloc_guarded(&self, ptr: *mut u8, layout: Layout) {
        let placement = Placement::of(layout, self.side);
        let pages = ptr
            .wrapping_sub(placement.buffer_offset)
            .cast::<libc::c_void>();
        if push_free(pages as usize, placement.pages_len) {
            return;
        }
        let pages_len = placement.pages_len;
        // SAFETY: by the caller's contract these are the data pages of a live block, owned
        // by the buffer being freed. Their memory goes back to the kernel (they would read
        // as zeros) and they become inaccessible, so a later access faults; the mapping
        // stays, so the addresses stay reserved. If the kernel refuses the second step (out
        // of mappings, which a panic's backtrace can cause), the pages stay accessible:
        // leaked, and never handed out again.
        unsafe {
            libc::madvise(pages, pages_len, libc::MADV_DONTNEED);
            libc::mprotect(pages, pages_len, libc::PROT_NONE);
        }
    }
}

/// The data pages of a freed block with `pages_len` bytes of them, if one is listed.
fn pop_free(pages_len: usize) -> Option<usize> {
    let class = (pages_len / page_size()).checked_sub(1)?;
    let mut free = FREE.lock().unwrap_or_else(PoisonError::into_inner);
    let head = *free.get(class)?;
    if head == 0 {
        return None;
    }
    // SAFETY: a listed block's data pages are readable and owned by the list, whose link
    // `push_free` wrote in their first word (aligned: it is a page boundary).
    free[class] = unsafe { *(head as *const usize) };
    Some(head)
}

/// Lists the data pages (`pages_len` bytes at `pages`) of a freed block for reuse; false if
/// blocks of its size are not recycled.
fn push_free(pages: usize, pages_len: usize) -> bool {
    let Some(class) = (pages_len / page_size()).checked_sub(1) else {
        return false;
    };
    let mut free = FREE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(head) = free.get_mut(class) else {
        return false;
    };
    // SAFETY: the block was just freed, so its writable data pages belong to the allocator;
    // the link goes in their first word, which is aligned (a page boundary).
    unsafe { *(pages as *mut usize) = *head };
    *head = pages;
    true
}

// SAFETY: guarded blocks are disjoint page ranges of the reservation, each accessible from
// allocation to deallocation, and the buffer lies inside its block with the requested
// alignment (`Placement::of`); everything else is `System`'s. `dealloc` routes by address,
// and a `System` block is never inside the reservation, which stays mapped for the life of
// the process.
unsafe impl GlobalAlloc for GuardPages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > 0 && layout.align() <= page_size() {
            let guarded = self.alloc_guarded(layout);
            if !guarded.is_null() {
                return guarded;
            }
            // Out of mappings (each live block takes two of the kernel's 65530 per
            // process): printing a panic's backtrace holds tens of thousands of buffers.
            // Failing would abort instead of reporting the panic; tests check
            // `unguarded_count` where it matters.
            UNGUARDED.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_guarded(ptr) {
            // SAFETY: only `alloc_guarded` returns addresses in the reservation, and the
            // caller frees what it got from `alloc` with the same layout, once.
            unsafe { self.dealloc_guarded(ptr, layout) }
        } else {
            // SAFETY: not in the reservation, so it came from `System.alloc(layout)`.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}
