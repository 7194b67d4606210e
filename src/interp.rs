//! The reference interpreter (filled in by the interpreter work).

/// Whether dropout is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Dropout draws masks; the generator's step advances.
    Train,
    /// Dropout is the identity.
    Eval,
}
