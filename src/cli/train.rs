//! `dropjit train` (and `dropjit` alone): the dropout experiment on the embedded digits, with
//! the results as tables and an SVG plot.

use std::fs;
use std::io::Write;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
use dropjit::fs_atomic;

use super::experiment::{
    self, Config, ConfigError, MC_SAMPLES, ModelKind, OptimizerKind, Progress, Report,
};

/// The flags of `dropjit train`; every default is [`Config::default`]'s.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainArgs {
    /// Dropout rates to compare, one training run each (comma-separated).
    #[arg(long = "p", value_delimiter = ',', default_values_t = Config::default().ps)]
    pub ps: Vec<f64>,
    /// The network: mlp (SimpleNet, Dropout after each hidden layer) or cnn (DigitsCnn,
    /// Dropout2d after its convolutions and pooling).
    #[arg(long, value_enum, default_value_t = ModelArg::Mlp)]
    pub model: ModelArg,
    /// Passes over the training split.
    #[arg(long, default_value_t = Config::default().epochs)]
    pub epochs: usize,
    /// Training samples (stratified); the rest of the 1,797 are the test split.
    #[arg(long, default_value_t = Config::default().train_size)]
    pub train_size: usize,
    /// The two hidden layers' widths (comma-separated).
    #[arg(long, value_name = "H1,H2", default_value_t = Hidden(Config::default().hidden))]
    pub hidden: Hidden,
    /// The optimizer: SGD with momentum 0.9, or AdamW with torch's defaults.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    pub optimizer: OptimizerArg,
    /// The learning rate [default: 0.01 for sgd, 0.001 for adamw].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Samples per training step.
    #[arg(long, default_value_t = Config::default().batch_size)]
    pub batch_size: usize,
    /// Seeds the split, the initial weights, the shuffles and the dropout masks.
    #[arg(long, default_value_t = Config::default().seed)]
    pub seed: u64,
    /// Run the experiment for seeds SEED, SEED+1, ... (N of them) and add a table over them.
    #[arg(long, default_value_t = 1, value_name = "N", conflicts_with_all = ["save", "resume"])]
    pub seeds: u64,
    /// JIT threads, at most 256 (results are bit-identical for any count).
    #[arg(long, default_value_t = Config::default().threads, value_parser = super::thread_count())]
    pub threads: usize,
    /// Where the plot goes.
    #[arg(long, value_name = "DIR", default_value_os_t = Config::default().out_dir)]
    pub out: PathBuf,
    /// Save each run's final state to DIR/p<P>.safetensors.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Start each run from DIR/p<P>.safetensors and train --epochs more.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
}

impl Default for TrainArgs {
    fn default() -> TrainArgs {
        let config = Config::default();
        TrainArgs {
            ps: config.ps,
            model: ModelArg::Mlp,
            epochs: config.epochs,
            train_size: config.train_size,
            hidden: Hidden(config.hidden),
            optimizer: OptimizerArg::Sgd,
            lr: None,
            batch_size: config.batch_size,
            seed: config.seed,
            seeds: 1,
            threads: config.threads,
            out: config.out_dir,
            save: None,
            resume: None,
        }
    }
}

/// `--model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// SimpleNet 64-H1-H2-10 with Dropout after each hidden layer.
    Mlp,
    /// DigitsCnn: two 3x3 convolutions, 2x2 max pooling, Dropout2d, a linear head.
    Cnn,
}

/// `--hidden H1,H2`: two layer widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hidden(pub [usize; 2]);

impl std::fmt::Display for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.0[0], self.0[1])
    }
}

impl std::str::FromStr for Hidden {
    type Err = String;

    fn from_str(s: &str) -> Result<Hidden, String> {
        let widths: Vec<usize> = (s.split(','))
            .map(|w| {
                w.trim()
                    .parse()
                    .map_err(|_| format!("{w:?} is not a width"))
            })
            .collect::<Result<_, _>>()?;
        match widths[..] {
            [h1, h2] => Ok(Hidden([h1, h2])),
            _ => Err(format!(
                "expected two widths H1,H2, but got {}",
                widths.len()
            )),
        }
    }
}

/// `--optimizer`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    /// SGD, momentum 0.9.
    Sgd,
    /// AdamW.
    Adamw,
}

impl TrainArgs {
    /// The seeds to run, `seed..=seed + seeds - 1`: an error if the last would pass
    /// `u64::MAX` (the range would wrap), or for no seeds at all.
    fn seed_range(&self) -> Result<RangeInclusive<u64>, ConfigError> {
        let Some(more) = self.seeds.checked_sub(1) else {
            return Err(ConfigError {
                what: "seed count --seeds (at least 1)",
                value: "0".to_string(),
            });
        };
        match self.seed.checked_add(more) {
            Some(last) => Ok(self.seed..=last),
            None => Err(ConfigError {
                what: "seeds (the last, SEED + N - 1, at most 18446744073709551615)",
                value: format!("--seed {} --seeds {}", self.seed, self.seeds),
            }),
        }
    }

    /// The experiment for `seed`.
    fn config(&self, seed: u64) -> Config {
        Config {
            ps: self.ps.clone(),
            model: match self.model {
                ModelArg::Mlp => ModelKind::Mlp,
                ModelArg::Cnn => ModelKind::Cnn,
            },
            epochs: self.epochs,
            train_size: self.train_size,
            hidden: self.hidden.0,
            optimizer: match self.optimizer {
                OptimizerArg::Sgd => OptimizerKind::Sgd,
                OptimizerArg::Adamw => OptimizerKind::AdamW,
            },
            lr: self.lr,
            batch_size: self.batch_size,
            seed,
            threads: self.threads,
            out_dir: self.out.clone(),
            save: self.save.clone(),
            resume: self.resume.clone(),
        }
    }
}

/// Runs the experiment for every seed asked for, reporting progress to `progress`, then writes
/// the plots and prints to `out` the per-epoch table, the summary and the plot's path (and with
/// several seeds, the table over them).
///
/// Nothing is written before every run has succeeded, so a failing command leaves every file
/// as it was (the experiment saves its checkpoints after its last run, [`experiment::run`]).
pub fn train(
    args: &TrainArgs,
    progress: &mut dyn FnMut(u64, Progress),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for seed in args.seed_range()? {
        let config = args.config(seed);
        reports.push(experiment::run(&config, &mut |event| {
            progress(seed, event)
        })?);
    }
    let mut plots = Vec::new();
    for report in &reports {
        let name = if args.seeds > 1 {
            format!("learning_curves_seed{}.svg", report.config.seed)
        } else {
            "learning_curves.svg".to_string()
        };
        plots.push(write_plot(report, &name)?);
    }
    for (report, plot) in reports.iter().zip(&plots) {
        print_report(out, report, plot)?;
    }
    if reports.len() > 1 {
        writeln!(out, "\n{}", experiment::seed_table(&reports))?;
    }
    Ok(())
}

fn write_plot(report: &Report, name: &str) -> anyhow::Result<PathBuf> {
    let dir = &report.config.out_dir;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    // Atomic, like every file dropjit saves: a failed write leaves the old plot whole.
    fs_atomic::write(&path, report.svg().as_bytes())?;
    Ok(path)
}

fn print_report(out: &mut dyn Write, report: &Report, plot: &Path) -> std::io::Result<()> {
    let config = &report.config;
    writeln!(
        out,
        "{} on {} training digits ({} held out), {} lr {}, batch {}, seed {}",
        config.model.describe(config.hidden),
        report.train_size,
        report.test_size,
        config.optimizer.name(),
        config.lr(),
        config.batch_size,
        config.seed
    )?;
    writeln!(
        out,
        "\nper epoch (eval mode, whole splits):\n{}",
        report.epoch_table()
    )?;
    writeln!(out, "after the last epoch:\n{}", report.table())?;
    writeln!(
        out,
        "uncertainty on the test split: predictive entropy H (nats) of right and wrong \
         predictions, and its AUROC as a detector of errors; eval forward against Monte Carlo \
         dropout ({MC_SAMPLES} samples, Traced::mc_predict):\n{}",
        report.uncertainty_table()
    )?;
    writeln!(out, "plot: {}", plot.display())
}
