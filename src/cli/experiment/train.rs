//! The training loop: one run per dropout rate, all from the same initial weights and batches.

use std::fs;
use std::time::Instant;

use anyhow::Context;
use dropjit::data::{self, Batches, CLASSES, DataError, FEATURES, Split, epoch_stream};
use dropjit::models::{DigitsCnn, SimpleNet};
use dropjit::nn::Module;
use dropjit::nn::{McPrediction, Traced};
use dropjit::optim::{self, Optimizer};
use dropjit::train::{Loss, metrics};
use dropjit::{Compiler, Generator, Tensor};

use super::report::{Detection, EpochStats, MC_SAMPLES, Report, RunResult, Uncertainty};
use super::{Config, ConfigError, ModelKind, OptimizerKind};

/// What [`run`] reports while it works, in order: a `Run` before each run's first step, a
/// `Step` after every training step and an `Epoch` after every evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Progress {
    /// Run `run` (from 0) of `runs` starts: dropout rate `p`, `steps` steps to take.
    Run {
        /// The run's index.
        run: usize,
        /// How many runs there are.
        runs: usize,
        /// Its dropout rate.
        p: f64,
        /// The steps it will take.
        steps: usize,
    },
    /// A training step finished.
    Step {
        /// The run's index.
        run: usize,
        /// Steps done in this run so far (from 1).
        step: usize,
        /// The steps it will take.
        steps: usize,
        /// The step's loss (train mode, with dropout).
        loss: f32,
    },
    /// An epoch finished and both splits were evaluated.
    Epoch {
        /// The run's index.
        run: usize,
        /// Its dropout rate.
        p: f64,
        /// The epoch's figures.
        stats: EpochStats,
    },
}

/// Runs the experiment: splits the embedded digits (seeded), then trains one network of
/// `config.model` per dropout rate of `config`, each from the same initial weights (the generator after the
/// split, cloned) on the same batches, evaluating both splits after every epoch.
///
/// Every checkpoint to resume is read and checked before the first run trains, and none is
/// saved before the last run has finished: a run that fails leaves every file as it was
/// (`--p 0,0.5 --resume D --save D` with a corrupt `D/p0.5.safetensors` does not overwrite
/// `D/p0.safetensors`).
pub fn run(config: &Config, progress: &mut dyn FnMut(Progress)) -> anyhow::Result<Report> {
    check(config)?;
    let digits = data::digits()?;
    let mut generator = Generator::new(config.seed);
    let split = Split::stratified(&digits, config.train_size, &mut generator)?;
    let mlp = |p: f64, g: &mut Generator| SimpleNet::new(FEATURES, config.hidden, CLASSES, p, g);
    let runs = match (config.model, config.optimizer) {
        (ModelKind::Mlp, OptimizerKind::Sgd) => {
            train_all(config, &split, &generator, mlp, sgd(config), progress)?
        }
        (ModelKind::Mlp, OptimizerKind::AdamW) => {
            train_all(config, &split, &generator, mlp, adamw(config), progress)?
        }
        (ModelKind::Cnn, OptimizerKind::Sgd) => train_all(
            config,
            &split,
            &generator,
            DigitsCnn::digits,
            sgd(config),
            progress,
        )?,
        (ModelKind::Cnn, OptimizerKind::AdamW) => train_all(
            config,
            &split,
            &generator,
            DigitsCnn::digits,
            adamw(config),
            progress,
        )?,
    };
    Ok(Report {
        config: config.clone(),
        train_size: split.train.len(),
        test_size: split.test.len(),
        runs,
    })
}

/// SGD with momentum 0.9 at the config's learning rate, for any model.
fn sgd<M: Module>(config: &Config) -> impl Fn(&Traced<M>) -> dropjit::Result<optim::Sgd> + '_ {
    |m| optim::Sgd::new(m, config.lr())?.momentum(0.9)
}

/// AdamW with torch's defaults at the config's learning rate, for any model.
fn adamw<M: Module>(config: &Config) -> impl Fn(&Traced<M>) -> dropjit::Result<optim::Adam> + '_ {
    |m| optim::AdamW::new(m, config.lr())
}

/// The most epochs a run may reach, counting those of the checkpoint it resumes: each
/// epoch's shuffle is the stream of its number, a `u32` (`data::epoch_stream`).
const MAX_EPOCHS: usize = u32::MAX as usize;

/// The widest hidden layer [`Config::hidden`] may ask for. With both layers at most this wide,
/// every size below is far from overflowing; [`MAX_PARAMETERS`] bounds the memory.
const MAX_WIDTH: usize = 1 << 16;

/// The most parameters SimpleNet may have: 2^28, 1 GiB of f32 per copy (the parameters, their
/// gradients and the optimizer's state each hold one).
const MAX_PARAMETERS: usize = 1 << 28;

/// The config's own constraints (the data, the optimizers and the compiler check the rest).
fn check(config: &Config) -> anyhow::Result<()> {
    let bad = |what: &'static str, value: String| Err(ConfigError { what, value }.into());
    if config.ps.is_empty() {
        return bad("dropout rates (at least one)", "none".to_string());
    }
    if config.epochs == 0 {
        return bad("epochs (at least 1)", "0".to_string());
    }
    if config.epochs > MAX_EPOCHS {
        return bad("epochs (at most 4294967295)", config.epochs.to_string());
    }
    if config.hidden.contains(&0) {
        return bad("hidden sizes (at least 1)", format!("{:?}", config.hidden));
    }
    if config.hidden.iter().any(|&h| h > MAX_WIDTH) {
        return bad(
            "hidden sizes (at most 65536)",
            format!("{:?}", config.hidden),
        );
    }
    let parameters = simple_net_parameters(config.hidden);
    if parameters > MAX_PARAMETERS {
        return bad(
            "hidden sizes (at most 268435456 parameters)",
            format!("{:?} make {parameters}", config.hidden),
        );
    }
    if config.batch_size == 0 {
        // Checked here as well as by the batches, so that it fails before anything compiles.
        return Err(DataError::BatchSize.into());
    }
    Ok(())
}

/// SimpleNet's parameter count, weights and biases: FEATURES-H1-H2-CLASSES. Widths of at most
/// [`MAX_WIDTH`] (2^16) keep it below 2^33, so plain arithmetic cannot overflow.
fn simple_net_parameters([h1, h2]: [usize; 2]) -> usize {
    (FEATURES + 1) * h1 + (h1 + 1) * h2 + (h2 + 1) * CLASSES
}

/// Trains one network per dropout rate: first every run is set up (a checkpoint to resume is
/// read and checked then), then each trains, then each is saved.
fn train_all<M: Module, O: Optimizer>(
    config: &Config,
    split: &Split,
    generator: &Generator,
    build: impl Fn(f64, &mut Generator) -> dropjit::Result<M>,
    optimizer: impl Fn(&Traced<M>) -> dropjit::Result<O>,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<Vec<RunResult>> {
    let mut jobs = Vec::new();
    for (index, &p) in config.ps.iter().enumerate() {
        let mut generator = generator.clone();
        let net = build(p, &mut generator)?;
        jobs.push(Job::new(
            config,
            split,
            (index, p),
            (net, generator),
            &optimizer,
        )?);
    }
    let mut results = Vec::new();
    for job in &mut jobs {
        results.push(job.train(progress)?);
    }
    if let Some(dir) = &config.save {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for job in &jobs {
            let path = Config::checkpoint_path(dir, job.p);
            job.model.save_checkpoint(&path, &job.opt, &job.generator)?;
        }
    }
    Ok(results)
}

/// One training run, set up: its model and optimizer (resumed from a checkpoint, if asked)
/// and the epochs it will train.
struct Job<'a, M: Module, O> {
    config: &'a Config,
    split: &'a Split,
    index: usize,
    p: f64,
    model: Traced<M>,
    opt: O,
    generator: Generator,
    /// The first epoch to train, from 0 (a resumed run's epochs done so far).
    first_epoch: usize,
    /// The training steps it will take: `config.epochs` times the batches per epoch.
    steps: usize,
}

impl<'a, M: Module, O: Optimizer> Job<'a, M, O> {
    /// The run of `net` (built for `p` from the same generator as every run, so all start
    /// from the same weights), its optimizer and, with `config.resume`, its checkpoint.
    fn new(
        config: &'a Config,
        split: &'a Split,
        (index, p): (usize, f64),
        (net, mut generator): (M, Generator),
        optimizer: &impl Fn(&Traced<M>) -> dropjit::Result<O>,
    ) -> anyhow::Result<Job<'a, M, O>> {
        let compiler = Compiler::new().threads(config.threads);
        let mut model = Traced::with_compiler(net, compiler);
        let mut opt = optimizer(&model)?;
        // At least one batch: the split has at least one training sample (Split checks).
        let batches = split.train.len().div_ceil(config.batch_size);
        let mut first_epoch = 0;
        if let Some(dir) = &config.resume {
            let path = Config::checkpoint_path(dir, p);
            generator = model.load_checkpoint(&path, &mut opt)?;
            first_epoch = usize::try_from(opt.steps()).unwrap_or(usize::MAX) / batches;
            if first_epoch.saturating_add(config.epochs) > MAX_EPOCHS {
                return Err(ConfigError {
                    what: "epochs (at most 4294967295 in all)",
                    value: format!(
                        "{} more after the {first_epoch} of {}",
                        config.epochs,
                        path.display()
                    ),
                }
                .into());
            }
        }
        let steps = (config.epochs.checked_mul(batches)).ok_or_else(|| ConfigError {
            what: "epochs (at most usize::MAX training steps)",
            value: format!("{} of {batches} batches", config.epochs),
        })?;
        Ok(Job {
            config,
            split,
            index,
            p,
            model,
            opt,
            generator,
            first_epoch,
            steps,
        })
    }

    fn train(&mut self, progress: &mut dyn FnMut(Progress)) -> anyhow::Result<RunResult> {
        let (config, p, steps) = (self.config, self.p, self.steps);
        let batches = self.split.train.len().div_ceil(config.batch_size);
        progress(Progress::Run {
            run: self.index,
            runs: config.ps.len(),
            p,
            steps,
        });
        let (train_x, train_y) = self.split.train.tensors();
        let (test_x, test_y) = self.split.test.tensors();
        let mut timing = Timing::default();
        let mut curve = Vec::new();
        // The last epoch's eval logits of the test split, which the uncertainty report scores.
        let mut test_logits = None;
        let mut done = 0;
        // check and Job::new keep the last epoch at most MAX_EPOCHS.
        for epoch in self.first_epoch..self.first_epoch + config.epochs {
            self.model.train();
            let shuffle = epoch_stream(config.seed, epoch_u32(epoch)?);
            let mut loss_sum = 0.0;
            for (x, y) in Batches::shuffled(&self.split.train, config.batch_size, shuffle)? {
                let model = &mut self.model;
                let compilations = model.compilations();
                let start = Instant::now();
                let loss = model.train_step_with(
                    &x,
                    &y,
                    Loss::CrossEntropy,
                    &mut self.opt,
                    &mut self.generator,
                )?;
                let seconds = start.elapsed().as_secs_f64();
                // A step that compiled first counts as compile time (its one run is noise).
                if model.compilations() > compilations {
                    timing.compile_seconds += seconds;
                } else {
                    timing.step_seconds += seconds;
                    timing.steps += 1;
                }
                loss_sum += f64::from(loss);
                done += 1;
                progress(Progress::Step {
                    run: self.index,
                    step: done,
                    steps,
                    loss,
                });
            }
            self.model.eval();
            let logits = self.evaluate(&test_x, &mut timing)?;
            let stats = EpochStats {
                epoch: epoch + 1,
                step_loss: loss_sum / batches as f64,
                train: metrics(&self.evaluate(&train_x, &mut timing)?, &train_y),
                test: metrics(&logits, &test_y),
            };
            test_logits = Some(logits);
            curve.push(stats);
            progress(Progress::Epoch {
                run: self.index,
                p,
                stats,
            });
        }
        let test_logits = test_logits.expect("invariant: a run trains at least one epoch");
        let uncertainty = self.uncertainty(&test_x, test_logits, &test_y)?;
        Ok(RunResult {
            p,
            curve,
            compile_seconds: timing.compile_seconds,
            steps: timing.steps,
            step_seconds: timing.step_seconds,
            uncertainty,
        })
    }

    /// The eval-mode logits of a whole split; compiling for a new shape counts as compile time.
    fn evaluate(&mut self, x: &Tensor, timing: &mut Timing) -> dropjit::Result<Tensor> {
        let (model, generator) = (&self.model, &mut self.generator);
        let start = Instant::now();
        let compilations = model.compilations();
        model.compile(&x.ty())?;
        if model.compilations() > compilations {
            timing.compile_seconds += start.elapsed().as_secs_f64();
        }
        model.forward_with(x, generator)
    }

    /// The trained network's uncertainty on the test split `x`: the softmax of its eval
    /// `logits` (one sample of a Monte Carlo prediction with no dropout) and [`MC_SAMPLES`]
    /// samples of Monte Carlo dropout, drawn from a copy of the run's generator (so a
    /// checkpoint, and a run resumed from it, are as without the report).
    fn uncertainty(
        &mut self,
        x: &Tensor,
        logits: Tensor,
        labels: &Tensor,
    ) -> dropjit::Result<Uncertainty> {
        let labels = labels.as_i32().expect("invariant: labels are i32");
        let mut dims = vec![1];
        dims.extend(logits.shape().dims());
        let eval = Tensor::from_f32(dims, logits.as_f32().expect("f32 logits").to_vec())?;
        let eval = Detection::of(&McPrediction::of_samples(eval, 0), labels);
        let generator = self.generator.clone();
        let mc = self
            .model
            .mc_predict(x, MC_SAMPLES, &mut generator.clone())?;
        // Both compiled now; timed apart from compiling, the best of a few rounds.
        let mut mc_seconds = f64::INFINITY;
        let mut single_seconds = f64::INFINITY;
        for _ in 0..TIMING_ROUNDS {
            let start = Instant::now();
            self.model
                .mc_predict(x, MC_SAMPLES, &mut generator.clone())?;
            mc_seconds = mc_seconds.min(start.elapsed().as_secs_f64());
            let mut apart = generator.clone();
            let start = Instant::now();
            for _ in 0..MC_SAMPLES {
                self.model.mc_forward(x, &mut apart)?;
            }
            let seconds = start.elapsed().as_secs_f64();
            single_seconds = single_seconds.min(seconds);
            if seconds > SLOW_ROUND_SECONDS {
                // Slow enough that the noise is small: one round will do.
                break;
            }
        }
        Ok(Uncertainty {
            eval,
            mc: Detection::of(&mc, labels),
            mc_seconds,
            single_seconds,
        })
    }
}

/// Rounds of the uncertainty report's timings (the first single-sample call compiles).
const TIMING_ROUNDS: usize = 3;

/// A round of single-sample calls this long is not repeated.
const SLOW_ROUND_SECONDS: f64 = 1.0;

/// Where a run's wall time went.
#[derive(Default)]
struct Timing {
    compile_seconds: f64,
    steps: usize,
    step_seconds: f64,
}

fn epoch_u32(epoch: usize) -> Result<u32, ConfigError> {
    u32::try_from(epoch).map_err(|_| ConfigError {
        what: "epochs (below 2^32)",
        value: epoch.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Config {
        Config {
            ps: vec![0.5, 0.5, 0.0],
            epochs: 2,
            train_size: 60,
            hidden: [16, 8],
            batch_size: 25,
            ..Config::default()
        }
    }

    #[test]
    fn runs_start_from_the_same_weights_and_report_progress_in_order() {
        let mut events = Vec::new();
        let report = run(&tiny(), &mut |e| events.push(e)).unwrap();
        // Equal rates give equal curves: same weights, batches and masks.
        assert_eq!(report.runs[0].curve, report.runs[1].curve);
        assert_ne!(report.runs[0].curve, report.runs[2].curve);
        assert_eq!((report.train_size, report.test_size), (60, 1737));
        // Per run: Run, then 3 steps (25 + 25 + 10) and an Epoch, twice.
        let kinds: String = (events.iter())
            .map(|e| match e {
                Progress::Run { .. } => 'R',
                Progress::Step { .. } => 's',
                Progress::Epoch { .. } => 'E',
            })
            .collect();
        assert_eq!(kinds, "RsssEsssE".repeat(3));
        let last_step = events.iter().rev().find_map(|e| match *e {
            Progress::Step { step, steps, .. } => Some((step, steps)),
            _ => None,
        });
        assert_eq!(last_step, Some((6, 6)));
        assert_eq!(report.runs[2].last().epoch, 2);
    }

    #[test]
    fn bad_configs_are_errors() {
        let cases = [
            (
                Config {
                    epochs: 0,
                    ..tiny()
                },
                "invalid epochs (at least 1): 0",
            ),
            (
                Config {
                    ps: vec![],
                    ..tiny()
                },
                "invalid dropout rates (at least one): none",
            ),
            (
                Config {
                    hidden: [0, 8],
                    ..tiny()
                },
                "invalid hidden sizes (at least 1): [0, 8]",
            ),
            (
                Config {
                    epochs: MAX_EPOCHS + 1,
                    ..tiny()
                },
                "invalid epochs (at most 4294967295): 4294967296",
            ),
            (
                Config {
                    hidden: [8, MAX_WIDTH + 1],
                    ..tiny()
                },
                "invalid hidden sizes (at most 65536): [8, 65537]",
            ),
            (
                Config {
                    hidden: [MAX_WIDTH, 4097],
                    ..tiny()
                },
                "invalid hidden sizes (at most 268435456 parameters): [65536, 4097] make 272805909",
            ),
            (
                Config {
                    batch_size: 0,
                    ..tiny()
                },
                "the batch size has to be at least 1",
            ),
            (
                Config {
                    lr: Some(-1.0),
                    ..tiny()
                },
                "Invalid learning rate: -1.0",
            ),
        ];
        for (config, message) in cases {
            let error = run(&config, &mut |_| {}).unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }
}
