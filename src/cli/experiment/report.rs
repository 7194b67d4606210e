//! What an experiment returns, and its renderings: the side-by-side summary table, the
//! per-epoch table, the SVG of the learning curves and the table over several seeds. Each is
//! a value (a `String`); the caller decides where it goes.

use std::fmt::Write;

use dropjit::nn::McPrediction;
use dropjit::train::{Metrics, argmax, auroc};

use super::Config;
use crate::cli::plot::{self, Chart, Series};

/// One epoch of one run: the mean training loss of its steps (train mode, masks drawn) and the
/// eval-mode metrics of both whole splits after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// The epoch, from 1 (continuing the count of a resumed run).
    pub epoch: usize,
    /// The mean of the epoch's step losses (with dropout, as the optimizer saw them).
    pub step_loss: f64,
    /// The training split in eval mode.
    pub train: Metrics,
    /// The test split in eval mode.
    pub test: Metrics,
}

/// One training run (one dropout rate).
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// The dropout rate of both dropout layers.
    pub p: f64,
    /// One entry per epoch, in order.
    pub curve: Vec<EpochStats>,
    /// Wall time spent compiling, in seconds: the training step once per batch size (the
    /// whole first call, whose one run is noise beside the compilation) and the eval forward
    /// once per split.
    pub compile_seconds: f64,
    /// Training steps taken.
    pub steps: usize,
    /// Wall time spent in training steps once compiled, in seconds.
    pub step_seconds: f64,
    /// How well the trained network's uncertainty flags its errors on the test split.
    pub uncertainty: Uncertainty,
}

/// The test split's predictive entropy as a detector of the network's errors: for the
/// deterministic eval forward and for Monte Carlo dropout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Uncertainty {
    /// The eval forward: the softmax of its logits.
    pub eval: Detection,
    /// Monte Carlo dropout: the mean softmax of [`MC_SAMPLES`] samples.
    pub mc: Detection,
    /// Wall time of the Monte Carlo call (all samples in one compiled graph), in seconds,
    /// compiled beforehand: the best of a few calls.
    pub mc_seconds: f64,
    /// Wall time of as many single-sample Monte Carlo calls, one after another (the same
    /// samples, computed apart), in seconds: the best of a few rounds.
    pub single_seconds: f64,
}

/// Monte Carlo samples per test input in the uncertainty report.
pub const MC_SAMPLES: usize = 30;

/// One predictor's errors and the entropy of its predictive distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// The share of test samples whose most probable class is their label.
    pub accuracy: f64,
    /// Mean predictive entropy (nats) of the correctly classified samples.
    pub entropy_correct: f64,
    /// Mean predictive entropy (nats) of the misclassified samples.
    pub entropy_wrong: f64,
    /// The AUROC of the entropy as a detector of errors (errors positive, ties one half);
    /// `None` if every sample is right or every one wrong.
    pub auroc: Option<f64>,
}

impl Detection {
    /// The detection of a predictive distribution `mc` (its mean softmax and entropy) against
    /// `labels`.
    pub fn of(mc: &McPrediction, labels: &[i32]) -> Detection {
        let classification = mc.classification();
        let p = (classification.mean_probabilities.as_f32()).expect("invariant: f32 values");
        let classes = p.len() / labels.len();
        let entropy = &classification.predictive_entropy;
        let entropy: Vec<f64> = (entropy.as_f32().expect("invariant: f32 entropies").iter())
            .map(|&h| f64::from(h))
            .collect();
        let wrong: Vec<bool> = (p.chunks_exact(classes).zip(labels))
            .map(|(row, &label)| argmax(row) != label as usize)
            .collect();
        let mean_where = |flag: bool| {
            let chosen: Vec<f64> = (entropy.iter().zip(&wrong))
                .filter(|&(_, &w)| w == flag)
                .map(|(&h, _)| h)
                .collect();
            chosen.iter().sum::<f64>() / chosen.len() as f64
        };
        Detection {
            accuracy: wrong.iter().filter(|&&w| !w).count() as f64 / labels.len() as f64,
            entropy_correct: mean_where(false),
            entropy_wrong: mean_where(true),
            auroc: auroc(&entropy, &wrong),
        }
    }
}

impl RunResult {
    /// The last epoch's statistics.
    pub fn last(&self) -> &EpochStats {
        self.curve
            .last()
            .expect("invariant: a run trains at least one epoch")
    }

    /// Train accuracy minus test accuracy after the last epoch.
    pub fn gap(&self) -> f64 {
        self.last().train.accuracy - self.last().test.accuracy
    }

    /// Training steps per second of step time.
    pub fn steps_per_second(&self) -> f64 {
        self.steps as f64 / self.step_seconds
    }
}

/// A whole experiment: its configuration, the split sizes and one run per dropout rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The configuration it ran.
    pub config: Config,
    /// Training samples.
    pub train_size: usize,
    /// Test samples.
    pub test_size: usize,
    /// One run per [`Config::ps`] entry, in order.
    pub runs: Vec<RunResult>,
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

impl Report {
    /// The side-by-side summary after the last epoch: one row per run.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:>5}  {:>9}  {:>8}  {:>6}  {:>9}  {:>10}  {:>8}\n",
            "p", "train acc", "test acc", "gap", "test loss", "compile", "steps/s"
        );
        for run in &self.runs {
            let last = run.last();
            let _ = writeln!(
                out,
                "{:>5}  {:>9}  {:>8}  {:>6}  {:>9.4}  {:>7.1} ms  {:>8.0}",
                run.p,
                percent(last.train.accuracy),
                percent(last.test.accuracy),
                percent(run.gap()),
                last.test.loss,
                1e3 * run.compile_seconds,
                run.steps_per_second()
            );
        }
        out
    }

    /// The uncertainty report: per run, the test split's predictive entropy of correct and
    /// wrong predictions and its AUROC as an error detector, eval forward against Monte Carlo
    /// dropout.
    pub fn uncertainty_table(&self) -> String {
        let mut out = format!(
            "{:>5}  {:>8}  {:>9}  {:>8}  {:>7}  {:>9}  {:>9}  {:>12}\n",
            "p",
            "forward",
            "test acc",
            "H right",
            "H wrong",
            "AUROC",
            "one call",
            format!("{MC_SAMPLES} calls")
        );
        for run in &self.runs {
            let u = &run.uncertainty;
            let rows = [
                ("eval", &u.eval, None),
                ("mc", &u.mc, Some((u.mc_seconds, u.single_seconds))),
            ];
            for (name, d, seconds) in rows {
                let auroc = d.auroc.map_or("-".to_string(), |a| format!("{a:.3}"));
                let ms = |s: f64| format!("{:.1} ms", 1e3 * s);
                let (one, apart) = seconds
                    .map_or((String::new(), String::new()), |(one, apart)| {
                        (ms(one), ms(apart))
                    });
                let _ = writeln!(
                    out,
                    "{:>5}  {:>8}  {:>9}  {:>8.3}  {:>7.3}  {:>9}  {:>9}  {:>12}",
                    run.p,
                    name,
                    percent(d.accuracy),
                    d.entropy_correct,
                    d.entropy_wrong,
                    auroc,
                    one,
                    apart
                );
            }
        }
        out
    }

    /// Every epoch of every run side by side: train and test loss and accuracy per run.
    pub fn epoch_table(&self) -> String {
        let mut header = format!("{:>5}", "epoch");
        let mut names = format!("{:>5}", "");
        for run in &self.runs {
            let _ = write!(header, "  | {:^36}", format!("p = {}", run.p));
            let _ = write!(
                names,
                "  | {:>8} {:>8} {:>9} {:>8}",
                "tr loss", "tr acc", "te loss", "te acc"
            );
        }
        let mut out = format!("{header}\n{names}\n");
        let epochs = self.runs.iter().map(|r| r.curve.len()).max().unwrap_or(0);
        for i in 0..epochs {
            let epoch = self
                .runs
                .iter()
                .find_map(|r| r.curve.get(i))
                .map_or(i + 1, |e| e.epoch);
            let _ = write!(out, "{epoch:>5}");
            for run in &self.runs {
                match run.curve.get(i) {
                    Some(e) => {
                        let _ = write!(
                            out,
                            "  | {:>8.4} {:>8} {:>9.4} {:>8}",
                            e.train.loss,
                            percent(e.train.accuracy),
                            e.test.loss,
                            percent(e.test.accuracy)
                        );
                    }
                    None => out.push_str(&format!("  | {:36}", "")),
                }
            }
            out.push('\n');
        }
        out
    }

    /// The learning curves as SVG: accuracy and loss panels, train solid and test dashed,
    /// one colour per dropout rate.
    pub fn svg(&self) -> String {
        const COLORS: [&str; 6] = [
            "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
        ];
        let panel = |title: &str, y_label: &str, value: fn(&Metrics) -> f64| {
            let mut series = Vec::new();
            for (i, run) in self.runs.iter().enumerate() {
                let color = COLORS[i % COLORS.len()].to_string();
                for (split, dashed, pick) in [
                    (
                        "train",
                        false,
                        (|e: &EpochStats| e.train) as fn(&EpochStats) -> Metrics,
                    ),
                    ("test", true, |e: &EpochStats| e.test),
                ] {
                    series.push(Series {
                        name: format!("{split} p={}", run.p),
                        color: color.clone(),
                        dashed,
                        points: run
                            .curve
                            .iter()
                            .map(|e| (e.epoch as f64, value(&pick(e))))
                            .collect(),
                    });
                }
            }
            Chart {
                title: title.to_string(),
                x_label: "epoch".to_string(),
                y_label: y_label.to_string(),
                series,
            }
        };
        let summary = format!(
            "{} on {} digits ({} held out)",
            self.config.model.describe(self.config.hidden),
            self.train_size,
            self.test_size
        );
        plot::svg(&[
            panel(&format!("accuracy: {summary}"), "accuracy (%)", |m| {
                100.0 * m.accuracy
            }),
            panel("cross-entropy loss (eval mode)", "loss", |m| m.loss),
        ])
    }
}

/// Mean and sample standard deviation.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Final train accuracy, test accuracy, gap (percentage points) and test loss per dropout rate
/// over several experiments (one per seed, same configuration otherwise), as mean ± sample
/// standard deviation.
pub fn seed_table(reports: &[Report]) -> String {
    let seeds: Vec<String> = reports.iter().map(|r| r.config.seed.to_string()).collect();
    let mut out = format!(
        "{} seeds ({}): mean ± standard deviation\n{:>5}  {:>14}  {:>14}  {:>14}  {:>16}\n",
        reports.len(),
        seeds.join(", "),
        "p",
        "train acc %",
        "test acc %",
        "gap %",
        "test loss"
    );
    let runs = reports.first().map_or(0, |r| r.runs.len());
    for i in 0..runs {
        let column = |f: &dyn Fn(&RunResult) -> f64, scale: f64, decimals: usize| {
            let values: Vec<f64> = reports.iter().map(|r| scale * f(&r.runs[i])).collect();
            let (mean, sd) = mean_sd(&values);
            format!("{mean:.decimals$} ± {sd:.decimals$}")
        };
        let _ = writeln!(
            out,
            "{:>5}  {:>14}  {:>14}  {:>14}  {:>16}",
            reports[0].runs[i].p,
            column(&|r| r.last().train.accuracy, 100.0, 1),
            column(&|r| r.last().test.accuracy, 100.0, 1),
            column(&RunResult::gap, 100.0, 1),
            column(&|r| r.last().test.loss, 1.0, 4)
        );
    }
    out
}
