//! A seeded stratified train/test split and mini-batch iteration with a per-epoch shuffle.
//!
//! Both are pure functions of their seeds: [`Split::stratified`] draws one permutation from a
//! host stream of the caller's [`Generator`], and [`epoch_stream`] gives epoch `e`'s shuffle as
//! the Philox stream `(seed, 2^31 | fnv1a32("data.shuffle"), step = e)`, so a resumed run
//! replays the same batches without any state beyond (seed, epoch).

use std::num::NonZeroU32;

use super::{CLASSES, DataError, Dataset, FEATURES};
use crate::graph::dropout::FIRST_HOST_STREAM;
use crate::rng::Generator;
use crate::rng::host::{PhiloxStream, fnv1a32};
use crate::tensor::Tensor;

/// A training split and the test split of the remaining samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The samples to train on.
    pub train: Dataset,
    /// The held-out samples.
    pub test: Dataset,
}

impl Split {
    /// `train_size` samples for training, the rest for testing, with each class's share of the
    /// training split as close to its share of `data` as whole samples allow (largest
    /// remainders, ties to the smaller class label).
    ///
    /// One permutation of `0..len` (Fisher-Yates from the end, [`PhiloxStream::below`]) is
    /// drawn from a fresh host stream of `generator`; each class's quota is filled by its
    /// first samples in permuted order, and both splits keep the permuted order.
    /// [`DataError::SplitSize`] unless `0 < train_size < len`.
    pub fn stratified(
        data: &Dataset,
        train_size: usize,
        generator: &mut Generator,
    ) -> Result<Split, DataError> {
        let total = data.len();
        if train_size == 0 || train_size >= total {
            return Err(DataError::SplitSize {
                train: train_size,
                total,
            });
        }
        let order = permutation(total, &mut generator.host_stream());
        let mut quota = quotas(&data.class_counts(), train_size, total);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for i in order {
            let class = data.labels()[i] as usize;
            if quota[class] > 0 {
                quota[class] -= 1;
                train.push(i);
            } else {
                test.push(i);
            }
        }
        Ok(Split {
            train: data.select(&train),
            test: data.select(&test),
        })
    }
}

/// Per-class training counts: `floor(train * n_c / total)`, then one more for the classes with
/// the largest remainders until they sum to `train`.
fn quotas(counts: &[usize; CLASSES], train: usize, total: usize) -> [usize; CLASSES] {
    let mut quota = counts.map(|n| train * n / total);
    let mut by_remainder: Vec<usize> = (0..CLASSES).collect();
    // Stable sort: equal remainders keep class order.
    by_remainder.sort_by_key(|&c| std::cmp::Reverse(train * counts[c] % total));
    let missing = train - quota.iter().sum::<usize>();
    for &class in by_remainder.iter().take(missing) {
        quota[class] += 1;
    }
    quota
}

/// A uniform permutation of `0..n`: Fisher-Yates from the last position down, each swap
/// partner drawn with [`PhiloxStream::below`].
pub(crate) fn permutation(n: usize, stream: &mut PhiloxStream) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let bound = u32::try_from(i + 1).expect("invariant: data sets have fewer than 2^32 rows");
        let bound = NonZeroU32::new(bound).expect("invariant: i + 1 >= 2");
        order.swap(i, stream.below(bound) as usize);
    }
    order
}

/// The shuffle of epoch `epoch` (from 0) for `seed`: stream `2^31 | (fnv1a32("data.shuffle") &
/// 0x7fff_ffff)` at step `epoch`, so every run with that seed sees the same batches.
pub fn epoch_stream(seed: u64, epoch: u32) -> PhiloxStream {
    let stream = FIRST_HOST_STREAM | (fnv1a32(b"data.shuffle") & 0x7fff_ffff);
    PhiloxStream::new(seed, stream, epoch)
}

/// Mini-batches of a data set, as `(features f32[b, 64], labels i32[b])`; every batch has
/// `batch_size` samples but the last, which keeps the remainder.
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl<'a> Batches<'a> {
    /// The samples in their stored order; [`DataError::BatchSize`] for a batch size of 0.
    pub fn in_order(data: &'a Dataset, batch_size: usize) -> Result<Batches<'a>, DataError> {
        if batch_size == 0 {
            return Err(DataError::BatchSize);
        }
        Ok(Batches {
            data,
            order: (0..data.len()).collect(),
            batch_size,
            next: 0,
        })
    }

    /// The samples in a permutation drawn from `shuffle` (e.g. [`epoch_stream`]).
    pub fn shuffled(
        data: &'a Dataset,
        batch_size: usize,
        mut shuffle: PhiloxStream,
    ) -> Result<Batches<'a>, DataError> {
        let mut batches = Batches::in_order(data, batch_size)?;
        batches.order = permutation(data.len(), &mut shuffle);
        Ok(batches)
    }
}

impl Iterator for Batches<'_> {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<(Tensor, Tensor)> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let batch = self.data.select(&self.order[self.next..end]);
        self.next = end;
        let (x, y) = batch.tensors();
        debug_assert_eq!(x.shape().dims()[1], FEATURES);
        Some((x, y))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_sum_to_the_split_and_follow_class_shares() {
        let counts = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180];
        let q = quotas(&counts, 300, 1797);
        assert_eq!(q.iter().sum::<usize>(), 300);
        for (c, &n) in counts.iter().enumerate() {
            let share = 300.0 * n as f64 / 1797.0;
            assert!(
                (q[c] as f64 - share).abs() < 1.0,
                "class {c}: {} vs {share}",
                q[c]
            );
        }
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut order = permutation(1000, &mut epoch_stream(3, 0));
        assert_ne!(order, (0..1000).collect::<Vec<_>>());
        order.sort_unstable();
        assert_eq!(order, (0..1000).collect::<Vec<_>>());
    }
}
