//! The mode a graph runs or compiles in: whether the dropout family draws masks. It belongs to
//! the graph (passes specialise a graph for it, the interpreter and compiled code run in it),
//! so every stage takes it from here.

/// Whether dropout is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Dropout draws masks; the generator's step advances.
    Train,
    /// Dropout is the identity.
    Eval,
}
