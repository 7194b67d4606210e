//! `dropjit`: a thin command line over the library.
//!
//! - `dropjit check FILE.ir`: parse and verify; errors print as `FILE:line:col: message`.
//! - `dropjit dump FILE.ir [--mode train|eval] [--stage parsed|optimized] [--format text|dot]
//!   [--print-after-all] [--time-passes]`: the graph as written or after the passes for that
//!   mode, as textual IR or Graphviz DOT; the pipeline's per-pass dumps and timings go to stderr.
//! - `dropjit run FILE.ir [--mode] [--seed S] [--step T] [--input-seed K] [--load DIR]
//!   [--save DIR] [--save-all]`: run the reference interpreter on inputs and parameters filled
//!   by name from seed K (or read from `DIR/NAME.npy`) and print one line per output.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use dropjit::{Generator, Graph, Mode, Tensor, init, interp, npy, passes, rng, text};

#[derive(Parser)]
#[command(
    name = "dropjit",
    version,
    about = "A graph compiler for dropout and its family"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and verify an IR file; print every error as FILE:line:col: message.
    Check {
        /// The `.ir` file.
        file: PathBuf,
    },
    /// Print a graph as parsed or after the passes for a mode.
    Dump {
        /// The `.ir` file.
        file: PathBuf,
        /// Train keeps dropout; eval removes it as the identity.
        #[arg(long, value_enum, default_value_t = ModeArg::Train)]
        mode: ModeArg,
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
    },
    /// Run a graph with the reference interpreter and print a line per output.
    Run {
        /// The `.ir` file.
        file: PathBuf,
        /// Train draws dropout masks; eval is the identity for every dropout.
        #[arg(long, value_enum, default_value_t = ModeArg::Train)]
        mode: ModeArg,
        /// The generator's seed: the key of every dropout mask.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The generator's step for this execution.
        #[arg(long, default_value_t = 0)]
        step: u32,
        /// Seed for filling inputs and parameters by name.
        #[arg(long, default_value_t = 0)]
        input_seed: u64,
        /// Read each input and parameter from DIR/NAME.npy instead.
        #[arg(long, value_name = "DIR")]
        load: Option<PathBuf>,
        /// Write inputs, parameters and outputs to DIR/NAME.npy.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
        /// With --save, also write every intermediate value, named after its node.
        #[arg(long, requires = "save")]
        save_all: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Train,
    Eval,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Train => Mode::Train,
            ModeArg::Eval => Mode::Eval,
        }
    }
}

/// How far `dump` takes the compilation.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stage {
    /// The graph as written.
    Parsed,
    /// After the pass pipeline for the mode.
    Optimized,
    // TODO(#3): `Clif`, the lowered Cranelift IR, once lowering exists.
}

/// How far `dump` compiles, how it prints the result, and which pipeline reports it adds.
struct DumpOptions {
    stage: Stage,
    format: Format,
    print_after_all: bool,
    time_passes: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Dot,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { file } => check(&file),
        Command::Dump {
            file,
            mode,
            stage,
            format,
            print_after_all,
            time_passes,
        } => {
            let options = DumpOptions {
                stage,
                format,
                print_after_all,
                time_passes,
            };
            dump(&file, mode.into(), &options)
        }
        Command::Run {
            file,
            mode,
            seed,
            step,
            input_seed,
            load,
            save,
            save_all,
        } => {
            let generator = Generator::new(seed).with_step(step);
            let sources = Sources { input_seed, load };
            let save = save.map(|dir| (dir, save_all));
            run(&file, mode.into(), generator, &sources, save.as_ref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads and parses `file`; errors come back as `FILE:line:col: message` lines.
fn load_graph(file: &Path) -> anyhow::Result<Graph> {
    let source =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    text::parse(&source).map_err(|error| {
        let lines: Vec<String> = error
            .flatten()
            .iter()
            .map(|e| format!("{}:{e}", file.display()))
            .collect();
        anyhow::anyhow!(lines.join("\n"))
    })
}

fn check(file: &Path) -> anyhow::Result<()> {
    let graph = load_graph(file)?;
    println!(
        "{}: graph {} is well formed ({} nodes, {} outputs)",
        file.display(),
        graph.name(),
        graph.len(),
        graph.outputs().len()
    );
    Ok(())
}

fn dump(file: &Path, mode: Mode, options: &DumpOptions) -> anyhow::Result<()> {
    let parsed = load_graph(file)?;
    let uses_passes = options.print_after_all || options.time_passes;
    if options.stage == Stage::Parsed && uses_passes {
        bail!(
            "--print-after-all and --time-passes need a stage after the passes (--stage optimized)"
        );
    }
    let graph = match options.stage {
        Stage::Parsed => parsed,
        Stage::Optimized => {
            let pipeline = passes::PipelineOptions {
                record_dumps: options.print_after_all,
                record_times: options.time_passes,
                ..passes::PipelineOptions::new(mode)
            };
            let optimized = passes::run_pipeline(&parsed, &pipeline)?;
            // Like LLVM's flags: the extra reports go to stderr, stdout stays one graph.
            if options.print_after_all {
                eprint!("{}", optimized.report.dumps());
            }
            if options.time_passes {
                eprint!("{}", optimized.report.times());
            }
            optimized.graph
        }
    };
    match options.format {
        Format::Text => print!("{graph}"),
        Format::Dot => print!("{}", graph.dot()),
    }
    Ok(())
}

/// Where input and parameter values come from.
struct Sources {
    input_seed: u64,
    load: Option<PathBuf>,
}

impl Sources {
    fn values(&self, graph: &Graph) -> anyhow::Result<BTreeMap<String, Tensor>> {
        let Some(dir) = &self.load else {
            return Ok(init::random_values(graph, self.input_seed));
        };
        let mut values = BTreeMap::new();
        for id in graph.inputs().into_iter().chain(graph.parameters()) {
            let name = &graph.node(id).name;
            let tensor = npy::read(&dir.join(format!("{name}.npy")))?;
            values.insert(name.clone(), tensor);
        }
        Ok(values)
    }
}

fn run(
    file: &Path,
    mode: Mode,
    mut generator: Generator,
    sources: &Sources,
    save: Option<&(PathBuf, bool)>,
) -> anyhow::Result<()> {
    let graph = load_graph(file)?;
    let values = sources.values(&graph)?;
    let step = generator.step();
    let trace = interp::run_traced(&graph, mode, &mut generator, &values)?;
    let mode_name = match mode {
        Mode::Train => "train",
        Mode::Eval => "eval",
    };
    println!(
        "# graph {}: mode {mode_name}, seed {}, step {step}, rng contract v{}",
        graph.name(),
        generator.seed(),
        rng::CONTRACT_VERSION
    );
    for (name, tensor) in &trace.outputs {
        println!(
            "{name} {} mean={:.6} zeros={:.4} fnv1a64={:016x}",
            tensor.ty(),
            tensor.mean(),
            tensor.zero_share(),
            tensor.fnv1a64()
        );
    }
    if let Some((dir, save_all)) = save {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files: BTreeMap<&str, &Tensor> = BTreeMap::new();
        if *save_all {
            files.extend(trace.values.iter().map(|(n, t)| (n.as_str(), t)));
        }
        files.extend(values.iter().map(|(n, t)| (n.as_str(), t)));
        files.extend(trace.outputs.iter().map(|(n, t)| (n.as_str(), t)));
        for (name, tensor) in files {
            if name.contains(['/', '\\']) {
                bail!("cannot save {name}: the name contains a path separator");
            }
            npy::write(&dir.join(format!("{name}.npy")), tensor)?;
        }
        println!("# saved to {}", dir.display());
    }
    Ok(())
}
