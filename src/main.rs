//! `dropjit`: a thin command line over the library.
//!
//! - `dropjit` alone, or `dropjit train [--p 0,0.5] [--epochs N] [--train-size N] [--hidden
//!   H1,H2] [--optimizer sgd|adamw] [--lr LR] [--batch-size B] [--seed S] [--seeds N]
//!   [--threads N] [--out DIR] [--save DIR] [--resume DIR]`: SimpleNet trained on the embedded
//!   digits with and without dropout from the same weights; a progress bar while it trains, then
//!   per-epoch figures, a side-by-side table and the path of an SVG of the learning curves.
//! - `dropjit check FILE.ir`: parse and verify; errors print as `FILE:line:col: message`.
//! - `dropjit dump FILE.ir [--mode train|eval] [--stage parsed|optimized|clif] [--format
//!   text|dot] [--print-after-all] [--time-passes] [--grad OUTPUT]`: the graph as written,
//!   after the passes for that mode (per-pass dumps and timings go to stderr), or the
//!   Cranelift IR it compiles to; `--grad` first adds the gradient of the scalar output
//!   OUTPUT with respect to every parameter (`autodiff::gradients`), each as an output.
//! - `dropjit run FILE.ir [--mode] [--engine jit|interp] [--gemm blocked|reference]
//!   [--threads N] [--seed S] [--step T] [--input-seed K] [--load DIR] [--save DIR]
//!   [--save-all]`: run on inputs and parameters filled by name from seed K (or read from
//!   `DIR/NAME.npy`) and print one line per output (the same lines for any thread count).
//! - `dropjit bench [FILE.ir] [--peak] [--mode] [--threads N] [--iters K]`: print the machine;
//!   with `--peak` the f32 FMA peak of each instruction set on 1 thread and all cores; for a
//!   file, compile once, run K times, print the compile time, the median time per call, the
//!   throughput and the products' GFLOP/s (with `--peak`, as a share of the peak).
//!
//! Numbers a user gives are bounded before anything runs: `--threads` 1 to 256
//! ([`cli::MAX_THREADS`]), `--iters` 1 to a million, the training's epochs, widths and seeds
//! ([`cli::experiment`] and `cli::train`); an out-of-range value is an error naming it and the
//! bound. Errors print on stderr, each message once, with exit status 1 (2 for clap's usage
//! errors). A reader that goes away (`dropjit run F | head -1`) ends the command quietly with
//! status 141, as the default SIGPIPE would. Every file a command writes is written
//! atomically ([`dropjit::fs_atomic`]), and only after everything it reads has been checked.

mod cli;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dropjit::{Generator, Mode};

use cli::dump::{DumpOptions, Format, Stage};
use cli::progress::Bar;
use cli::run::{BenchOptions, Engine, GemmArg, RunOptions, Sources};
use cli::train::TrainArgs;

#[derive(Parser)]
#[command(
    name = "dropjit",
    version,
    about = "A graph compiler for dropout and its family"
)]
struct Cli {
    /// Without a subcommand, `train` runs with its defaults.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train SimpleNet on the embedded digits with and without dropout and compare.
    Train(TrainArgs),
    /// Parse and verify an IR file; print every error as FILE:line:col: message.
    Check {
        /// The `.ir` file.
        file: PathBuf,
    },
    /// Print a graph as parsed, after the passes for a mode, or as Cranelift IR.
    Dump {
        /// The `.ir` file.
        file: PathBuf,
        /// Train keeps dropout; eval removes it as the identity.
        #[arg(long, value_enum, default_value_t = ModeArg::Train)]
        mode: ModeArg,
        /// With --mode mc: N Monte Carlo samples in one compiled graph, each output [N, ...]
        /// (the part before the first dropout runs once; sample s draws at step + s).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        samples: Option<u64>,
        /// Which stage of the compilation to print.
        #[arg(long, value_enum, default_value_t = Stage::Optimized)]
        stage: Stage,
        /// Textual IR or Graphviz DOT.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also print the graph after every pass to stderr, each headed `# after NAME`.
        #[arg(long)]
        print_after_all: bool,
        /// Also print a table of per-pass times to stderr.
        #[arg(long)]
        time_passes: bool,
        /// First differentiate this scalar f32 output with respect to every parameter,
        /// adding each gradient (`NAME.grad`) as an output.
        #[arg(long, value_name = "OUTPUT")]
        grad: Option<String>,
    },
    /// Run a graph and print a line per output.
    Run {
        /// The `.ir` file.
        file: PathBuf,
        /// Train draws dropout masks; eval is the identity for every dropout.
        #[arg(long, value_enum, default_value_t = ModeArg::Train)]
        mode: ModeArg,
        /// With --mode mc: N Monte Carlo samples in one compiled graph, each output [N, ...]
        /// (the part before the first dropout runs once; sample s draws at step + s).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        samples: Option<u64>,
        /// The Cranelift JIT or the reference interpreter.
        #[arg(long, value_enum, default_value_t = Engine::Jit)]
        engine: Engine,
        /// How the JIT computes matrix products; `reference` matches the interpreter bit for bit.
        #[arg(long, value_enum, default_value_t = GemmArg::Blocked)]
        gemm: GemmArg,
        /// JIT threads, at most 256; results are bit-identical for any count.
        #[arg(long, default_value_t = 1, value_parser = cli::thread_count())]
        threads: usize,
        #[command(flatten)]
        values: ValueArgs,
        /// The generator's step for this execution.
        #[arg(long, default_value_t = 0)]
        step: u32,
        /// Write inputs, parameters and outputs to DIR/NAME.npy.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
        /// With --save, also write every intermediate value, named after its node.
        #[arg(long, requires = "save")]
        save_all: bool,
    },
    /// Compile a graph once, run it many times, and print compile time and time per call;
    /// with --peak, also the host's f32 FMA peak (alone: only the peak).
    Bench {
        /// The `.ir` file.
        #[arg(required_unless_present = "peak")]
        file: Option<PathBuf>,
        /// Measure the f32 FMA peak of every instruction set on 1 thread and on all cores
        /// (with a file: state its products' rate as a share of the peak on its threads).
        #[arg(long)]
        peak: bool,
        /// Train draws dropout masks; eval is the identity for every dropout.
        #[arg(long, value_enum, default_value_t = ModeArg::Train)]
        mode: ModeArg,
        /// With --mode mc: N Monte Carlo samples in one compiled graph, each output [N, ...]
        /// (the part before the first dropout runs once; sample s draws at step + s).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        samples: Option<u64>,
        /// JIT threads, at most 256; results are bit-identical for any count.
        #[arg(long, default_value_t = 1, value_parser = cli::thread_count())]
        threads: usize,
        /// How many timed calls, at most a million.
        #[arg(
            long,
            default_value_t = 100,
            value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
                .range(1..=cli::run::MAX_ITERS)
        )]
        iters: usize,
        #[command(flatten)]
        values: ValueArgs,
    },
}

/// The generator's seed and where inputs and parameters come from.
#[derive(clap::Args)]
struct ValueArgs {
    /// The generator's seed: the key of every dropout mask.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed for filling inputs and parameters by name.
    #[arg(long, default_value_t = 0)]
    input_seed: u64,
    /// Read each input and parameter from DIR/NAME.npy instead.
    #[arg(long, value_name = "DIR")]
    load: Option<PathBuf>,
}

impl ValueArgs {
    fn sources(self) -> Sources {
        Sources {
            input_seed: self.input_seed,
            load: self.load,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    /// Dropout draws masks.
    Train,
    /// Every dropout is the identity.
    Eval,
    /// Monte Carlo dropout: dropout draws masks, every other op as in eval.
    Mc,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Train => Mode::Train,
            ModeArg::Eval => Mode::Eval,
            ModeArg::Mc => Mode::Mc,
        }
    }
}

/// The exit status of a process ended by SIGPIPE as shells report it (128 + 13), which
/// dropjit returns when its reader goes away: what `yes | head -1` reports for `yes`.
const BROKEN_PIPE_STATUS: u8 = 141;

fn main() -> ExitCode {
    let command = Cli::parse()
        .command
        .unwrap_or_else(|| Command::Train(TrainArgs::default()));
    let mut out = io::stdout().lock();
    let result = execute(command, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Like a Unix tool under the default SIGPIPE: the reader has what it wanted, so no
        // message (stderr may be the same closed pipe).
        Err(error) if cli::is_broken_pipe(&error) => ExitCode::from(BROKEN_PIPE_STATUS),
        Err(error) => {
            // Nothing more can be done if stderr is gone too; the status still says it failed.
            let _ = writeln!(io::stderr(), "{}", cli::error_message(&error));
            ExitCode::FAILURE
        }
    }
}

/// Runs `command`, printing its results to `out`.
fn execute(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Train(args) => {
            let mut bar = Bar::new(args.seeds > 1);
            let result = cli::train::train(&args, &mut |seed, event| bar.update(seed, event), out);
            bar.finish();
            result
        }
        Command::Check { file } => cli::check(&file, out),
        Command::Dump {
            file,
            mode,
            samples,
            stage,
            format,
            print_after_all,
            time_passes,
            grad,
        } => {
            let options = DumpOptions {
                samples: cli::samples(mode.into(), samples)?,
                stage,
                format,
                print_after_all,
                time_passes,
                grad,
            };
            cli::dump::dump(&file, mode.into(), &options, out)
        }
        Command::Run {
            file,
            mode,
            samples,
            engine,
            gemm,
            threads,
            values,
            step,
            save,
            save_all,
        } => {
            let generator = Generator::new(values.seed).with_step(step);
            let options = RunOptions {
                file,
                mode: mode.into(),
                samples: cli::samples(mode.into(), samples)?,
                engine,
                gemm: gemm.into(),
                threads,
                save,
                save_all,
            };
            cli::run::run(&options, generator, &values.sources(), out)
        }
        Command::Bench {
            file,
            peak,
            mode,
            samples,
            threads,
            iters,
            values,
        } => {
            let options = BenchOptions {
                file,
                peak,
                mode: mode.into(),
                samples: cli::samples(mode.into(), samples)?,
                threads,
                iters,
            };
            cli::run::bench(&options, values.seed, &values.sources(), out)
        }
    }
}
