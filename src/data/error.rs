//! What can go wrong with data: a malformed file, a corrupt gzip stream, a split or a batch
//! size the data cannot satisfy. The data functions return [`DataError`]; its messages name
//! the line, the field and the values involved.

/// A failure of the [`crate::data`] functions, for a user to read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DataError {
    /// A line of the digits CSV that is not 64 pixels in `0..=16` and a label in `0..=9`.
    #[error("digits data, line {line}: {detail}")]
    Row {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        detail: RowError,
    },
    /// A gzip stream that could not be decompressed to text.
    #[error("cannot decompress the data: {message}")]
    Decompress {
        /// The decoder's complaint.
        message: String,
    },
    /// A training split that leaves no training or no test sample.
    #[error("a training split of {train} samples needs 0 < {train} < {total} (the data's size)")]
    SplitSize {
        /// The training samples asked for.
        train: usize,
        /// The samples there are.
        total: usize,
    },
    /// Mini-batches of no sample.
    #[error("the batch size has to be at least 1")]
    BatchSize,
}

/// What is wrong with one line of the digits CSV; wrapped in [`DataError::Row`] with the line.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RowError {
    /// Not 65 fields.
    #[error("expected {expected} comma-separated fields, but got {got}")]
    FieldCount {
        /// The fields a line has: 64 pixels and the label.
        expected: usize,
        /// The fields this line has.
        got: usize,
    },
    /// A field that does not parse as an integer.
    #[error("field {column} is not an integer: {text:?}")]
    NotAnInteger {
        /// The field's 1-based position.
        column: usize,
        /// Its text.
        text: String,
    },
    /// A pixel above 16 or a label above 9 (or a negative one).
    #[error("field {column} is {value}, outside 0..={max}")]
    OutOfRange {
        /// The field's 1-based position.
        column: usize,
        /// Its value.
        value: i64,
        /// The largest value the field takes.
        max: i64,
    },
}
