//! Loss and accuracy of logits against labels, computed on the host in f64: what a training
//! loop reports when it evaluates a split (`dropjit train` after every epoch).

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
        let argmax = (0..classes).fold(0, |best, c| if row[c] > row[best] { c } else { best });
        correct += usize::from(argmax == label as usize);
    }
    Metrics {
        loss: loss / n as f64,
        accuracy: correct as f64 / n as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
