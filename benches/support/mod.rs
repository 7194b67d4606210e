//! Code the benchmarks share with their tests.

pub mod bitplane;
