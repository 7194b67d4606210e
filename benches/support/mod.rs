//! Code the benchmarks share with their tests.

pub mod bitplane;

/// The machine figures come from, as one line (`dropjit::machine::describe`). Every bench
/// prints it first.
pub fn machine() -> String {
    dropjit::machine::describe()
}
