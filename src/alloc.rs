//! Fallible allocation: memory the system will not give is [`Error::OutOfMemory`], never an
//! abort. Every buffer whose size comes from a caller's shapes (tensors, the arena, the
//! interpreter's values) is allocated here.

use std::alloc::{Layout, alloc_zeroed};

use crate::error::{Error, Result};

/// Types whose all-zero bit pattern is a valid value (their zero, or `false`).
///
/// # Safety
/// An implementor must be valid for every field set to zero bits and have no drop glue.
pub(crate) unsafe trait Zeroable: Copy {}

// SAFETY: zero bits are 0, +0.0 or `false` for these; none has drop glue.
unsafe impl Zeroable for u8 {}
unsafe impl Zeroable for u32 {}
unsafe impl Zeroable for usize {}
unsafe impl Zeroable for i32 {}
unsafe impl Zeroable for f32 {}
unsafe impl Zeroable for f64 {}
unsafe impl Zeroable for bool {}

/// `len` zeros, as `vec![0; len]` makes them (the system's zeroed pages, not a pass that
/// writes them), or an error naming `what` if the memory cannot be had.
pub(crate) fn zeroed<T: Zeroable>(len: usize, what: impl FnOnce() -> String) -> Result<Vec<T>> {
    if len == 0 || size_of::<T>() == 0 {
        return Ok(vec![T::zeroed(); len]);
    }
    let ptr = match Layout::array::<T>(len) {
        // SAFETY: the layout has a nonzero size (len > 0 and T is not zero-sized).
        Ok(layout) => unsafe { alloc_zeroed(layout) }.cast::<T>(),
        Err(_) => std::ptr::null_mut(),
    };
    if ptr.is_null() {
        return Err(Error::OutOfMemory {
            bytes: len.checked_mul(size_of::<T>()),
            what: what(),
        });
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of `[T; len]`, which is
    // what a `Vec<T>` of capacity `len` owns; zero bits are `len` valid values of `T`.
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// `len` copies of `value`, or an error naming `what` if the memory cannot be had.
pub(crate) fn filled<T: Clone>(
    len: usize,
    value: T,
    what: impl FnOnce() -> String,
) -> Result<Vec<T>> {
    let mut data = with_capacity(len, what)?;
    data.resize(len, value);
    Ok(data)
}

/// A copy of `values`, or an error naming `what` if the memory cannot be had.
pub(crate) fn copied<T: Copy>(values: &[T], what: impl FnOnce() -> String) -> Result<Vec<T>> {
    let mut data = with_capacity(values.len(), what)?;
    data.extend_from_slice(values);
    Ok(data)
}

/// An empty vector with room for `len` elements, or an error naming `what` if the memory
/// cannot be had.
pub(crate) fn with_capacity<T>(len: usize, what: impl FnOnce() -> String) -> Result<Vec<T>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory {
            bytes: len.checked_mul(size_of::<T>()),
            what: what(),
        })?;
    Ok(data)
}

/// Checks that `bytes` could be allocated now, without keeping them: for code that allocates
/// through infallible collections (the interpreter's kernels), asked once before it starts,
/// so that memory the system refuses outright is an error rather than an abort.
pub(crate) fn probe(bytes: Option<usize>, what: impl FnOnce() -> String) -> Result<()> {
    let mut probe: Vec<u8> = Vec::new();
    let granted = bytes.is_some_and(|len| probe.try_reserve_exact(len).is_ok());
    if granted {
        Ok(())
    } else {
        Err(Error::OutOfMemory {
            bytes,
            what: what(),
        })
    }
}

trait Zero {
    fn zeroed() -> Self;
}

impl<T: Zeroable> Zero for T {
    fn zeroed() -> T {
        // SAFETY: `Zeroable` promises that zero bits are a valid `T`.
        unsafe { std::mem::zeroed() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_gives_zeros() {
        let v: Vec<f32> = zeroed(1000, || "test".into()).unwrap();
        assert_eq!(v.len(), 1000);
        assert!(v.iter().all(|&x| x.to_bits() == 0));
        let e: Vec<bool> = zeroed(0, || "test".into()).unwrap();
        assert!(e.is_empty());
    }

    #[test]
    fn memory_nobody_has_is_an_error() {
        let message = zeroed::<f32>(usize::MAX / 8, || "a test buffer".into())
            .unwrap_err()
            .to_string();
        assert!(message.contains("a test buffer"), "{message}");
        let e = filled(usize::MAX / 2, 1u32, || "ones".into()).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
        assert!(probe(Some(usize::MAX), || "probe".into()).is_err());
        assert!(probe(None, || "probe".into()).is_err());
        assert!(probe(Some(1 << 20), || "probe".into()).is_ok());
    }
}
