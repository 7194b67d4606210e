//! Loss and accuracy of logits against labels, computed on the host in f64: what a training
//! loop reports when it evaluates a split (`dropjit train` after every epoch); and the AUROC
//! of a score as a detector (how well an uncertainty flags errors).

use crate::tensor::Tensor;

/// The mean cross-entropy and the accuracy of a whole split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Mean cross-entropy, `-log softmax(logits)[label]` averaged over samples.
    pub loss: f64,
    /// The share of samples whose largest logit is their label (the first largest on ties).
    pub accuracy: f64,
}

/// Metrics of `logits` `f32[n, classes]` against `labels` `i32[n]` (both from the same split,
/// so their shapes agree by construction: a mismatch is a bug and panics).
pub fn metrics(logits: &Tensor, labels: &Tensor) -> Metrics {
    let logits = logits.as_f32().expect("invariant: logits are f32");
    let labels = labels.as_i32().expect("invariant: labels are i32");
    let n = labels.len();
    assert!(
        n > 0 && logits.len().is_multiple_of(n),
        "invariant: one row of logits per label"
    );
    let classes = logits.len() / n;
    let (mut loss, mut correct) = (0.0, 0usize);
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        loss += max + sum.ln() - f64::from(row[label as usize]);
        correct += usize::from(argmax(row) == label as usize);
    }
    Metrics {
        loss: loss / n as f64,
        accuracy: correct as f64 / n as f64,
    }
}

/// The index of the largest value of `row` (the first on ties; NaN never wins): a
/// classifier's prediction from its logits or probabilities.
pub fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best })
}

/// The area under the ROC curve of `scores` as a detector of `positives` (higher score =
/// more likely positive): the probability that a random positive scores above a random
/// negative, ties counting one half (the Mann-Whitney statistic). `None` unless there is at
/// least one positive and one negative. NaN scores are an error of the caller and panic.
pub fn auroc(scores: &[f64], positives: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        positives.len(),
        "invariant: one label per score"
    );
    assert!(
        scores.iter().all(|s| !s.is_nan()),
        "invariant: scores are numbers"
    );
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Ranks from 1, tied scores sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| positives[i]).count();
        rank_sum += mean_rank * tied_positives as f64;
        start = end;
    }
    let p = positives.iter().filter(|&&x| x).count() as f64;
    let n = positives.len() as f64 - p;
    (p > 0.0 && n > 0.0).then(|| (rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_pairs_and_ties_one_half() {
        // Perfect, reversed, and all tied.
        assert_eq!(auroc(&[0.1, 0.2, 0.9], &[false, false, true]), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.2, 0.1], &[false, false, true]), Some(0.0));
        assert_eq!(auroc(&[0.5; 4], &[true, false, true, false]), Some(0.5));
        // Pairs (positive, negative): (3, 1) wins, (3, 3) ties, (2, 1) wins, (2, 3) loses.
        let got = auroc(&[3.0, 1.0, 2.0, 3.0], &[true, false, true, false]).unwrap();
        assert!((got - 2.5 / 4.0).abs() < 1e-12);
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None);
    }

    #[test]
    fn uniform_logits_cost_log_classes_and_ties_pick_the_first() {
        let logits = Tensor::from_f32([2, 4], vec![0.0; 8]).unwrap();
        let labels = Tensor::from_i32([2], vec![0, 3]).unwrap();
        let m = metrics(&logits, &labels);
        assert!((m.loss - 4f64.ln()).abs() < 1e-12);
        assert_eq!(m.accuracy, 0.5);
    }

    #[test]
    fn confident_right_answers_cost_little() {
        let logits = Tensor::from_f32([2, 2], vec![20.0, 0.0, 0.0, 20.0]).unwrap();
        let labels = Tensor::from_i32([2], vec![0, 1]).unwrap();
        let m = metrics(&logits, &labels);
        assert!(m.loss < 1e-8);
        assert_eq!(m.accuracy, 1.0);
    }
}
