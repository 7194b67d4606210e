//! The digits data set, embedded in the crate, and what training needs from it: a seeded
//! stratified split and shuffled mini-batches.
//!
//! "Optical Recognition of Handwritten Digits" (E. Alpaydin, C. Kaynak, 1998; UCI Machine
//! Learning Repository, licence CC BY 4.0), in the form scikit-learn ships it: 1,797 rows of 64
//! pixel intensities in `0..=16` (an 8x8 image, row-major) and a class label in `0..=9`. The
//! gzip file is compiled into the binary with `include_bytes!`, so nothing is downloaded.
//!
//! - [`digits`] decodes and parses it ([`csv`] has the format);
//! - [`Split::stratified`] draws a reproducible train/test split from a [`crate::Generator`];
//! - [`Batches`] walks a split in mini-batches, shuffled per epoch by [`epoch_stream`];
//! - they fail with a [`DataError`], whose messages name the line, field or size at fault.

pub mod csv;
mod error;
mod split;

use std::io::Read;

use crate::tensor::Tensor;

pub use error::{DataError, RowError};
pub use split::{Batches, Split, epoch_stream};

/// Pixels per image (8x8).
pub const FEATURES: usize = 64;
/// Digit classes, `0..=9`.
pub const CLASSES: usize = 10;
/// Rows in the embedded data.
pub const ROWS: usize = 1797;
/// The largest pixel value; features are `pixel / MAX_PIXEL`, in `[0, 1]`.
pub const MAX_PIXEL: u8 = 16;

/// The embedded file, `src/data/digits.csv.gz`.
pub const DIGITS_GZ: &[u8] = include_bytes!("digits.csv.gz");
/// The sha256 its source publishes (`/work/shared/data/README.md`), checked by a test.
pub const DIGITS_SHA256: &str = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22";

/// Labelled samples: features `[len, FEATURES]` row-major in `[0, 1]`, labels in `0..CLASSES`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    features: Vec<f32>,
    labels: Vec<i32>,
}

impl Dataset {
    /// A data set from its parts. `features` holds `labels.len()` rows of [`FEATURES`] values
    /// and every label lies in `0..CLASSES`; anything else is a bug of the caller in this
    /// crate (the parser checks user data), so it panics.
    pub(crate) fn new(features: Vec<f32>, labels: Vec<i32>) -> Dataset {
        assert_eq!(
            features.len(),
            labels.len() * FEATURES,
            "invariant: one row of features per label"
        );
        Dataset { features, labels }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True without samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All features, row-major `[len, FEATURES]`.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// All labels.
    pub fn labels(&self) -> &[i32] {
        &self.labels
    }

    /// Sample `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * FEATURES..(i + 1) * FEATURES]
    }

    /// How many samples each class has.
    pub fn class_counts(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for &label in &self.labels {
            counts[label as usize] += 1;
        }
        counts
    }

    /// The samples at `indices`, in that order (each index below [`Dataset::len`]).
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut features = Vec::with_capacity(indices.len() * FEATURES);
        for &i in indices {
            features.extend_from_slice(self.row(i));
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Dataset::new(features, labels)
    }

    /// The whole set as tensors: features `f32[len, 64]` and labels `i32[len]`.
    pub fn tensors(&self) -> (Tensor, Tensor) {
        let x = Tensor::from_f32([self.len(), FEATURES], self.features.clone())
            .expect("invariant: one row of features per label");
        let y = Tensor::from_i32([self.len()], self.labels.clone())
            .expect("invariant: one label per sample");
        (x, y)
    }
}

/// The embedded digits: 1,797 samples.
pub fn digits() -> Result<Dataset, DataError> {
    csv::parse(&gunzip(DIGITS_GZ)?)
}

/// Decompresses a gzip file held in memory; a corrupt stream (or one that is not UTF-8 text)
/// is [`DataError::Decompress`].
pub fn gunzip(bytes: &[u8]) -> Result<String, DataError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|error| DataError::Decompress {
            message: error.to_string(),
        })?;
    Ok(text)
}
