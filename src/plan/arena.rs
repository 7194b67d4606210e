//! Placing buffers in the arena: each request is a size and the range of kernels during which
//! the buffer is live; two requests whose ranges meet get disjoint byte ranges, and a range
//! freed by a dead buffer is handed to a later one.
//!
//! The placement is first fit over the buffers live at the request's first kernel: requests
//! are taken in order of their first kernel (ties in the order given), buffers whose last
//! kernel is earlier are dropped, and the request goes into the lowest gap between the
//! remaining ones that holds it, or after the last one. Deterministic, and linear in the live
//! set per request, which is small.
//!
//! Ranges are inclusive at both ends, so a kernel's operands (live up to and including it) and
//! its results (live from it) never share bytes: generated code may read one and write the
//! other in any order, and `sgemm` gets a result that aliases neither operand.

use crate::types::MAX_BYTES;

/// Arena ranges start at multiples of this many bytes from the arena's start (which is itself
/// 16-byte aligned), so 128-bit vector accesses are aligned.
pub(crate) const ARENA_ALIGN: usize = 16;

/// One buffer to place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// Its size in bytes (0 is allowed and takes no space).
    pub bytes: usize,
    /// The first kernel that writes it.
    pub first: usize,
    /// The last kernel that reads (or writes) it; `>= first`.
    pub last: usize,
}

/// Rounds `bytes` up to the arena alignment: the space a request occupies.
pub(crate) fn aligned(bytes: usize) -> usize {
    bytes.div_ceil(ARENA_ALIGN) * ARENA_ALIGN
}

/// The byte offset of every request (in the order given) and the arena size they need, or
/// `None` if that size would exceed [`MAX_BYTES`] (no allocation could hold the arena).
pub(crate) fn place(requests: &[Request]) -> Option<(Vec<usize>, usize)> {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    // Stable, so ties keep the order given.
    order.sort_by_key(|&i| requests[i].first);
    let mut offsets = vec![0; requests.len()];
    // Placed requests still live, as (offset, end, last kernel), sorted by offset.
    let mut live: Vec<(usize, usize, usize)> = Vec::new();
    let mut arena = 0;
    for i in order {
        let request = requests[i];
        let size = aligned(request.bytes);
        live.retain(|&(_, _, last)| last >= request.first);
        let mut offset = 0;
        for &(start, end, _) in &live {
            if start >= offset + size {
                break;
            }
            offset = offset.max(end);
        }
        let end = offset.checked_add(size).filter(|&end| end <= MAX_BYTES)?;
        offsets[i] = offset;
        arena = arena.max(end);
        let at = live.partition_point(|&(start, _, _)| start <= offset);
        live.insert(at, (offset, end, request.last));
    }
    Some((offsets, arena))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bytes: usize, first: usize, last: usize) -> Request {
        Request { bytes, first, last }
    }

    /// No two requests that are live at one kernel overlap, and every one fits the arena.
    fn assert_disjoint(requests: &[Request], offsets: &[usize], arena: usize) {
        for (i, a) in requests.iter().enumerate() {
            assert_eq!(offsets[i] % ARENA_ALIGN, 0);
            assert!(offsets[i] + aligned(a.bytes) <= arena);
            for (j, b) in requests.iter().enumerate().skip(i + 1) {
                let meet = a.first <= b.last && b.first <= a.last;
                let apart = offsets[i] + aligned(a.bytes) <= offsets[j]
                    || offsets[j] + aligned(b.bytes) <= offsets[i];
                let empty = a.bytes == 0 || b.bytes == 0;
                assert!(!meet || apart || empty, "{i} {a:?} and {j} {b:?} overlap");
            }
        }
    }

    #[test]
    fn a_chain_alternates_between_two_ranges() {
        let requests = [request(100, 0, 1), request(100, 1, 2), request(100, 2, 3)];
        let (offsets, arena) = place(&requests).unwrap();
        assert_eq!(offsets, [0, 112, 0]);
        assert_eq!(arena, 224);
    }

    #[test]
    fn a_freed_gap_takes_a_smaller_later_buffer() {
        let requests = [
            request(64, 0, 0),
            request(32, 0, 2),
            request(16, 1, 1),
            request(80, 2, 2),
        ];
        let (offsets, arena) = place(&requests).unwrap();
        // 16 fits the freed [0, 64); 80 does not fit [16, 64) and goes after 32's range.
        assert_eq!(offsets, [0, 64, 0, 96]);
        assert_eq!(arena, 176);
    }

    #[test]
    fn random_requests_never_overlap_while_live() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for _ in 0..200 {
            let requests: Vec<Request> = (0..next(12) + 1)
                .map(|_| {
                    let first = next(8);
                    request(next(300), first, first + next(4))
                })
                .collect();
            let (offsets, arena) = place(&requests).unwrap();
            assert_disjoint(&requests, &offsets, arena);
        }
    }
}
