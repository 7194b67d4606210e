//! Shared code of the guard-page test binaries (tests/guard_pages_end.rs and
//! tests/guard_pages_start.rs): the allocator that puts heap buffers against an inaccessible
//! page, the differential runs on guarded buffers, and the self-test proving that an access
//! past a guarded buffer kills the process.

pub mod alloc;
pub mod differential;
pub mod selftest;
