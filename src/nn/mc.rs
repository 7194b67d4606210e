//! Monte Carlo dropout (Gal and Ghahramani, 2016): N forward passes with dropout sampling and
//! the rest of the model in eval mode, and what they say about the model's uncertainty.
//! [`crate::nn::Traced::mc_predict`] makes an [`McPrediction`]; its summaries are computed
//! here, on the host in f64.
//!
//! Sample `s` of a call made at generator step `t` draws its masks at step `t + s`, and the
//! call claims the N steps, so any sample can be reproduced alone: a Monte Carlo forward
//! ([`crate::nn::trace_mc`]) run with `Generator::new(seed).with_step(t + s)`.

use crate::tensor::Tensor;
use crate::types::Shape;

/// N stochastic forward passes of one input and their mean and variance.
#[derive(Clone, Debug)]
pub struct McPrediction {
    /// The outputs, sample `s` at index `s` of a new leading dimension: `[N, output dims..]`.
    pub samples: Tensor,
    /// The mean over the samples (accumulated in f64, dividing by N), of the output's shape.
    pub mean: Tensor,
    /// The variance over the samples (dividing by N), of the output's shape.
    pub variance: Tensor,
    /// The generator step of sample 0: sample `s` drew its masks at step `first_step + s`.
    pub first_step: u32,
}

impl McPrediction {
    /// Summarises `samples` (`[N, output dims..]`, N >= 1, f32) drawn from `first_step` on
    /// (also a deterministic output as one sample, to score it the same way).
    ///
    /// # Panics
    /// If `samples` is not f32 or has no leading sample.
    pub fn of_samples(samples: Tensor, first_step: u32) -> McPrediction {
        let dims = samples.shape().dims();
        let n = dims[0];
        let shape = Shape::new(dims[1..].to_vec());
        let values = samples
            .as_f32()
            .expect("invariant: a forward's output is f32");
        let size = values.len() / n;
        let mut mean = vec![0.0f64; size];
        for sample in values.chunks_exact(size) {
            for (m, &v) in mean.iter_mut().zip(sample) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut variance = vec![0.0f64; size];
        for sample in values.chunks_exact(size) {
            for ((v, &x), &m) in variance.iter_mut().zip(sample).zip(&mean) {
                *v += (f64::from(x) - m).powi(2);
            }
        }
        variance.iter_mut().for_each(|v| *v /= n as f64);
        let tensor = |values: Vec<f64>| {
            let values = values.into_iter().map(|v| v as f32).collect();
            Tensor::from_f32(shape.clone(), values).expect("invariant: one value per element")
        };
        McPrediction {
            mean: tensor(mean),
            variance: tensor(variance),
            samples,
            first_step,
        }
    }

    /// The number of samples.
    pub fn count(&self) -> usize {
        self.samples.shape().dims()[0]
    }

    /// For a classifier, whose output's last dimension holds class logits: the predictive
    /// distribution and its uncertainties, in one pass over the samples ([`Classification`]).
    pub fn classification(&self) -> Classification {
        let summary = self.classifier_summary();
        let dims = self.mean.shape().dims();
        let rows = Shape::new(dims[..dims.len() - 1].to_vec());
        let per_row = |value: &dyn Fn(&RowSummary) -> f64| {
            let values = summary.iter().map(|r| value(r) as f32).collect();
            Tensor::from_f32(rows.clone(), values).expect("invariant: one value per row")
        };
        let probabilities = (summary.iter())
            .flat_map(|row| row.mean.iter().map(|&p| p as f32))
            .collect();
        Classification {
            mean_probabilities: Tensor::from_f32(self.mean.shape().clone(), probabilities)
                .expect("invariant: one value per element"),
            predictive_entropy: per_row(&|row| row.entropy),
            mutual_information: per_row(&|row| row.entropy - row.mean_sample_entropy),
        }
    }

    /// Classes (the last dimension) and rows (the rest) of the output.
    fn rows(&self) -> (usize, usize) {
        let dims = self.mean.shape().dims();
        let classes = *dims
            .last()
            .expect("invariant: a classifier's output has a class axis");
        (classes, self.mean.numel() / classes.max(1))
    }

    /// Each row's mean softmax, its entropy, and the mean of the samples' own entropies.
    fn classifier_summary(&self) -> Vec<RowSummary> {
        let (classes, rows) = self.rows();
        let n = self.count();
        let values = self.samples.as_f32().expect("invariant: f32 samples");
        let mut summary = vec![
            RowSummary {
                mean: vec![0.0; classes],
                entropy: 0.0,
                mean_sample_entropy: 0.0,
            };
            rows
        ];
        let mut p = vec![0.0f64; classes];
        for sample in values.chunks_exact(rows * classes) {
            for (logits, row) in sample.chunks_exact(classes).zip(&mut summary) {
                softmax(logits, &mut p);
                row.mean_sample_entropy += entropy(&p) / n as f64;
                for (m, &q) in row.mean.iter_mut().zip(&p) {
                    *m += q / n as f64;
                }
            }
        }
        for row in &mut summary {
            row.entropy = entropy(&row.mean);
        }
        summary
    }
}

/// What N samples of a classifier say, per row of the output without its class axis.
#[derive(Clone, Debug)]
pub struct Classification {
    /// The mean over the samples of their softmax (the predictive distribution; its argmax is
    /// the Monte Carlo prediction), of the output's shape.
    pub mean_probabilities: Tensor,
    /// The predictive entropy `H = -sum p ln p` (nats) of the mean softmax `p`; `0 ln 0`
    /// counts as 0.
    pub predictive_entropy: Tensor,
    /// The mutual information between the prediction and the masks (BALD): the predictive
    /// entropy minus the mean over samples of each sample's own softmax entropy (nats, >= 0
    /// up to rounding).
    pub mutual_information: Tensor,
}

#[derive(Clone)]
struct RowSummary {
    mean: Vec<f64>,
    entropy: f64,
    mean_sample_entropy: f64,
}

/// The softmax of `logits` into `p`, in f64 (shifted by the maximum).
fn softmax(logits: &[f32], p: &mut [f64]) {
    let max = (logits.iter()).fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    for (q, &v) in p.iter_mut().zip(logits) {
        *q = (f64::from(v) - max).exp();
    }
    let sum: f64 = p.iter().sum();
    p.iter_mut().for_each(|q| *q /= sum);
}

/// `-sum p ln p` in nats, `0 ln 0 = 0`.
fn entropy(p: &[f64]) -> f64 {
    -(p.iter())
        .filter(|&&q| q > 0.0)
        .map(|&q| q * q.ln())
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(n: usize, rows: usize, values: Vec<f32>) -> McPrediction {
        let classes = values.len() / (n * rows);
        let samples = Tensor::from_f32([n, rows, classes], values).unwrap();
        McPrediction::of_samples(samples, 7)
    }

    #[test]
    fn mean_and_variance_divide_by_the_sample_count() {
        let p = prediction(2, 1, vec![1.0, 4.0, 3.0, 8.0]);
        assert_eq!(p.count(), 2);
        assert_eq!(p.mean.as_f32().unwrap(), [2.0, 6.0]);
        assert_eq!(p.variance.as_f32().unwrap(), [1.0, 4.0]);
        assert_eq!(p.mean.shape().dims(), [1, 2]);
    }

    #[test]
    fn agreeing_samples_have_no_mutual_information() {
        // Two identical samples, two rows: certain (large margin) and uniform.
        let row = [30.0, 0.0, 0.0, 0.0];
        let mut values = Vec::new();
        for _ in 0..2 {
            values.extend(row);
            values.extend([0.0; 4]);
        }
        let p = prediction(2, 2, values);
        let h = p.classification().predictive_entropy;
        let h = h.as_f32().unwrap();
        assert!(h[0] < 1e-9);
        assert!((f64::from(h[1]) - 4f64.ln()).abs() < 1e-6);
        let mi = p.classification().mutual_information;
        assert!(mi.as_f32().unwrap().iter().all(|v| v.abs() < 1e-6));
    }

    #[test]
    fn disagreeing_confident_samples_are_all_mutual_information() {
        // Each sample is sure, of a different class: H(mean) = ln 2, each sample's H = 0.
        let p = prediction(2, 1, vec![40.0, 0.0, 0.0, 40.0]);
        let h = f64::from(p.classification().predictive_entropy.as_f32().unwrap()[0]);
        let mi = f64::from(p.classification().mutual_information.as_f32().unwrap()[0]);
        assert!((h - 2f64.ln()).abs() < 1e-6 && (mi - 2f64.ln()).abs() < 1e-6);
        let mean = p.classification().mean_probabilities;
        assert!((mean.as_f32().unwrap()[0] - 0.5).abs() < 1e-6);
    }
}
