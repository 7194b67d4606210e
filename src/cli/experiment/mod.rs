//! The main job: SimpleNet trained on the embedded digits with and without dropout, from the
//! same initial weights on the same batches, so the curves differ by dropout alone.
//!
//! [`run`] trains one network per dropout rate in [`Config::ps`], evaluates train and test
//! loss and accuracy on the whole splits after every epoch (eval mode), reports progress
//! through a callback (the progress bar draws it; the runner never prints) and returns a
//! [`Report`]: per-epoch curves, compile time and steps per second per run.
//! [`Report::table`], [`Report::epoch_table`] and [`Report::svg`] render it.
//!
//! # Why these defaults
//! Dropout is a regulariser: it can only show its worth where an unregularised network
//! overfits, i.e. where the network can memorise its training set. The defaults set up that
//! situation the way a practitioner would, fixed before looking at any comparison:
//! - **A small training split, 300 samples** (30 per class, stratified) of the 1,797, the rest
//!   (1,497) held out: SimpleNet's 64-256-128-10 shape has about 51,000 parameters, far more
//!   than 300 samples can pin down, and 1,497 test samples measure accuracy to about ±0.7
//!   percentage points (one standard error at 90%).
//! - **The seed's widths (256, 128), p = 0 against p = 0.5**, the classic hidden-layer rate
//!   (Srivastava et al., 2014) and the one in the seed's example.
//! - **SGD with momentum 0.9, learning rate 0.01, batch 32**: the textbook configuration,
//!   with no weight decay, so dropout is the only regulariser in the comparison. (`adamw`
//!   uses torch's defaults, lr 1e-3 and weight decay 0.01.)
//! - **100 epochs** (1,000 updates: nine batches of 32 and one of 12 per epoch): long enough
//!   that the network without dropout reaches 100% training accuracy and its test loss has
//!   passed its minimum, the overfitting regime the comparison is about (with seed 0 it
//!   reaches 100% at epoch 53 and its lowest test loss at epoch 62); short enough that both
//!   runs finish in a few seconds after the build.
//! - Both networks start from the same weights and see the same batches in the same order
//!   (the split and each epoch's shuffle are pure functions of the seed, see
//!   `dropjit::data`); only the dropout masks differ.

mod report;
mod train;

use std::path::PathBuf;

pub use report::{EpochStats, MC_SAMPLES, Report, seed_table};
pub use train::{Progress, run};

/// Which optimizer trains the networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// `torch.optim.SGD` with momentum 0.9 (no dampening, nesterov or weight decay).
    Sgd,
    /// `torch.optim.AdamW` with torch's defaults (betas 0.9/0.999, eps 1e-8, weight decay 0.01).
    AdamW,
}

impl OptimizerKind {
    /// The learning rate used when the config names none: 0.01 for SGD, torch's 1e-3 for AdamW.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Sgd => 0.01,
            OptimizerKind::AdamW => 1e-3,
        }
    }

    /// `sgd` or `adamw`, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

/// Which network the experiment trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// SimpleNet: `64 -> hidden -> hidden -> 10` with two Dropout(p).
    Mlp,
    /// DigitsCnn: two 3x3 convolutions of 16 and 32 maps, 2x2 max pooling, Dropout2d(p), a
    /// linear head.
    Cnn,
}

impl ModelKind {
    /// The network as the report names it, with its widths.
    pub fn describe(self, hidden: [usize; 2]) -> String {
        match self {
            ModelKind::Mlp => format!("SimpleNet 64-{}-{}-10", hidden[0], hidden[1]),
            ModelKind::Cnn => {
                "DigitsCnn (conv 16, conv 32, max pool, Dropout2d, linear)".to_string()
            }
        }
    }
}

/// Everything one experiment depends on. [`Config::default`] is the `cargo run --release` job
/// (the module docs give the reasoning).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The dropout rates to compare, one training run each, in order.
    pub ps: Vec<f64>,
    /// The network.
    pub model: ModelKind,
    /// Passes over the training split.
    pub epochs: usize,
    /// Training samples (stratified); the rest of the 1,797 are the test split.
    pub train_size: usize,
    /// The two hidden layers' widths.
    pub hidden: [usize; 2],
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// The learning rate; `None` takes [`OptimizerKind::default_lr`].
    pub lr: Option<f64>,
    /// Samples per training step; the last batch of an epoch keeps the remainder.
    pub batch_size: usize,
    /// Seeds the split, the initial weights, the shuffles and the dropout masks.
    pub seed: u64,
    /// JIT threads (results are bit-identical for any count).
    pub threads: usize,
    /// Where the caller writes the plot (the runner itself writes only checkpoints).
    pub out_dir: PathBuf,
    /// Save each run's final state (parameters, optimizer state, generator) to
    /// `DIR/p<p>.safetensors`.
    pub save: Option<PathBuf>,
    /// Start each run from `DIR/p<p>.safetensors` (written by `save`) and train `epochs` more.
    pub resume: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            ps: vec![0.0, 0.5],
            model: ModelKind::Mlp,
            epochs: EPOCHS,
            train_size: 300,
            hidden: [256, 128],
            optimizer: OptimizerKind::Sgd,
            lr: None,
            batch_size: 32,
            seed: 0,
            threads: 1,
            out_dir: PathBuf::from("target/dropjit-train"),
            save: None,
            resume: None,
        }
    }
}

/// The default number of epochs (see the module docs).
pub const EPOCHS: usize = 100;

impl Config {
    /// The learning rate in effect.
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(self.optimizer.default_lr())
    }

    /// The checkpoint file of the run with dropout rate `p` under `dir`: `p0.5.safetensors`.
    pub fn checkpoint_path(dir: &std::path::Path, p: f64) -> PathBuf {
        dir.join(format!("p{p}.safetensors"))
    }
}

/// An experiment setting outside its range (the data, the optimizers and the compiler check
/// the rest, with their own errors).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid {what}: {value}")]
pub struct ConfigError {
    /// The setting and its range, `epochs (at least 1)`.
    pub what: &'static str,
    /// The value given.
    pub value: String,
}
