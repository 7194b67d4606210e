//! `dropjit run` and `dropjit bench`: execute a graph on inputs and parameters filled by name
//! (or read from `.npy` files) with the JIT or the reference interpreter.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use dropjit::nn::McPrediction;
use dropjit::{
    CompiledGraph, Compiler, Gemm, Generator, Graph, Mode, ParameterStore, Tensor, init, interp,
    npy, rng,
};

use super::{load_graph, mode_name, with_samples};

/// Which engine executes the graph.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Cranelift-compiled native code.
    Jit,
    /// The reference interpreter.
    Interp,
}

/// How the JIT computes matrix products (`--gemm`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GemmArg {
    /// The GEMM crate: fast, sums in its own order (last bits differ from the interpreter).
    Blocked,
    /// Plain loops in the interpreter's order: bit-identical to `--engine interp`.
    Reference,
}

impl From<GemmArg> for Gemm {
    fn from(gemm: GemmArg) -> Gemm {
        match gemm {
            GemmArg::Blocked => Gemm::Blocked,
            GemmArg::Reference => Gemm::Reference,
        }
    }
}

/// Where input and parameter values come from.
pub struct Sources {
    pub input_seed: u64,
    pub load: Option<PathBuf>,
}

impl Sources {
    /// Every input's and parameter's value by name.
    fn values(&self, graph: &Graph) -> anyhow::Result<BTreeMap<String, Tensor>> {
        let Some(dir) = &self.load else {
            return Ok(init::random_values(graph, self.input_seed)?);
        };
        let mut values = BTreeMap::new();
        for id in graph.inputs().into_iter().chain(graph.parameters()) {
            let name = &graph[id].name;
            let tensor = npy::read(&dir.join(format!("{name}.npy")))?;
            values.insert(name.clone(), tensor);
        }
        Ok(values)
    }
}

/// What `run` does besides printing: `--save DIR` and `--save-all`.
pub struct RunOptions {
    pub file: PathBuf,
    pub mode: Mode,
    /// Monte Carlo samples in one graph (`--samples`, mc mode).
    pub samples: Option<usize>,
    pub engine: Engine,
    pub gemm: Gemm,
    pub threads: usize,
    pub save: Option<PathBuf>,
    pub save_all: bool,
}

/// Runs the graph once and prints to `out` a line per output: name, type, mean, share of exact
/// zeros and the FNV-1a 64 of its bytes. Both engines print identical lines.
///
/// Everything is read (the graph, `--load`'s files) and computed, and every name checked,
/// before `--save` writes anything; the lines are printed after the save, so a reader that
/// stops early (`| head -1`) does not cut it short.
pub fn run(
    options: &RunOptions,
    mut generator: Generator,
    sources: &Sources,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let graph = load_graph(&options.file)?;
    let values = sources.values(&graph)?;
    let graph = with_samples(graph, options.samples)?;
    // --save-all makes every node an output, named after itself, after the real outputs.
    let executed = if options.save_all {
        graph.with_every_node_as_output()
    } else {
        graph.clone()
    };
    let step = generator.step();
    let outputs = match options.engine {
        Engine::Interp => interp::run(&executed, options.mode, &mut generator, &values)?,
        Engine::Jit => {
            let compiler = (Compiler::new().mode(options.mode))
                .gemm(options.gemm)
                .threads(options.threads);
            let compiled = compiler.compile(&executed)?;
            // A copy: an in-place dropout of a graph input overwrites it (run_mut), and the
            // values saved with --save are the ones the graph was given.
            let (mut inputs, params) = ParameterStore::split(&executed, values.clone());
            compiled.run_mut(&mut generator, &mut inputs, &params)?
        }
    };
    if let Some(dir) = &options.save {
        save(dir, &values, &outputs)?;
    }
    writeln!(
        out,
        "# graph {}: mode {}, seed {}, step {step}, rng contract v{}",
        graph.name(),
        mode_name(options.mode),
        generator.seed(),
        rng::CONTRACT_VERSION
    )?;
    // The real outputs come first (--save-all appends every node after them).
    for (name, tensor) in &outputs[..graph.outputs().len()] {
        writeln!(
            out,
            "{name} {} mean={:.6} zeros={:.4} fnv1a64={:016x}",
            tensor.ty(),
            tensor.mean(),
            tensor.zero_share(),
            tensor.fnv1a64()
        )?;
        if options.samples.is_some() {
            print_uncertainty(tensor, step, out)?;
        }
    }
    if let Some(dir) = &options.save {
        writeln!(out, "# saved to {}", dir.display())?;
    }
    Ok(())
}

/// The Monte Carlo summaries of an f32 output of samples `[N, ...]`: the mean variance over
/// the samples and, read as class logits along its last dimension (rank 2 or more after the
/// samples), the mean predictive entropy and mutual information in nats.
fn print_uncertainty(samples: &Tensor, step: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    if samples.as_f32().is_none() || samples.shape().rank() < 2 {
        return Ok(());
    }
    let first = u32::try_from(step)?;
    let prediction = McPrediction::of_samples(samples.clone(), first);
    write!(
        out,
        "  {} samples from step {first}: variance mean={:.6}",
        prediction.count(),
        prediction.variance.mean()
    )?;
    if samples.shape().rank() >= 3 {
        let classes = prediction.classification();
        write!(
            out,
            " entropy mean={:.6} mutual_information mean={:.6} (nats)",
            classes.predictive_entropy.mean(),
            classes.mutual_information.mean()
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// Writes every value to `DIR/NAME.npy`, each file atomically (`npy::write`); every name is
/// checked before the first file is written.
fn save(
    dir: &Path,
    values: &BTreeMap<String, Tensor>,
    outputs: &[(String, Tensor)],
) -> anyhow::Result<()> {
    let files: Vec<(&String, &Tensor)> = (values.iter())
        .chain(outputs.iter().map(|(n, t)| (n, t)))
        .collect();
    if let Some((name, _)) = files.iter().find(|(n, _)| n.contains(['/', '\\'])) {
        bail!("cannot save {name}: the name contains a path separator");
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, tensor) in files {
        npy::write(&dir.join(format!("{name}.npy")), tensor)?;
    }
    Ok(())
}

/// What `bench` measures: the graph (if any), whether to measure the FMA peak, the mode, the
/// thread count and how many calls.
pub struct BenchOptions {
    pub file: Option<PathBuf>,
    pub peak: bool,
    pub mode: Mode,
    /// Monte Carlo samples in one graph (`--samples`, mc mode).
    pub samples: Option<usize>,
    pub threads: usize,
    pub iters: usize,
}

/// The most timed calls `--iters` accepts: every call's time is kept for the median (16 bytes
/// each, 16 MB at the bound), and a median of a million calls is already far steadier than
/// the timer.
pub const MAX_ITERS: u64 = 1_000_000;

/// Prints the machine, then with `--peak` the FMA peak of every instruction set on one thread
/// and on all cores, then for a graph: compiles it once, runs it `iters` times into
/// preallocated outputs, and prints the compile time, the median time per call, the elements
/// per second of the largest output, and its products' multiply-adds and rate (as a share of
/// the peak on its thread count, with `--peak`).
pub fn bench(
    options: &BenchOptions,
    seed: u64,
    sources: &Sources,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (mode, threads, iters) = (options.mode, options.threads, options.iters);
    if iters == 0 || iters as u64 > MAX_ITERS {
        bail!("--iters {iters} is not in 1..={MAX_ITERS}");
    }
    writeln!(out, "{}", dropjit::machine::describe())?;
    let peak = if options.peak {
        Some(print_peaks(threads, out)?)
    } else {
        None
    };
    let Some(file) = &options.file else {
        return Ok(());
    };
    let graph = load_graph(file)?;
    let values = sources.values(&graph)?;
    let graph = with_samples(graph, options.samples)?;
    let (inputs, params) = ParameterStore::split(&graph, values);
    let started = Instant::now();
    let compiled = Compiler::new()
        .mode(mode)
        .threads(threads)
        .compile(&graph)?;
    let compile_time = started.elapsed();
    let mut generator = Generator::new(seed);
    let mut outputs = compiled.run(&mut generator, &inputs, &params)?;
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| time_call(&compiled, &mut generator, &inputs, &params, &mut outputs))
        .collect::<anyhow::Result<_>>()?;
    times.sort();
    let median = times[times.len() / 2];
    let largest = outputs.iter().map(|(_, t)| t.numel()).max().unwrap_or(0);
    writeln!(
        out,
        "graph {} ({} mode), {iters} calls on {threads} thread{}",
        graph.name(),
        mode_name(mode),
        if threads == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "compile      {:>12.3} ms",
        compile_time.as_secs_f64() * 1e3
    )?;
    writeln!(out, "median call  {:>12.3} us", median.as_secs_f64() * 1e6)?;
    writeln!(
        out,
        "throughput   {:>12.3} G elements/s (largest output, {largest} elements)",
        largest as f64 / median.as_secs_f64() / 1e9
    )?;
    let multiply_adds = graph.multiply_adds();
    if multiply_adds > 0 {
        let gflops = 2.0 * multiply_adds as f64 / median.as_secs_f64() / 1e9;
        let share = match peak {
            Some(peak) => format!(", {:.0}% of the FMA peak", 100.0 * gflops / peak),
            None => String::new(),
        };
        writeln!(
            out,
            "products     {gflops:>12.1} GFLOP/s ({multiply_adds} multiply-adds per call{share})"
        )?;
    }
    Ok(())
}

/// Prints the f32 FMA peak of every instruction set this host runs, on one thread and on all
/// cores; returns the widest one's on `threads` threads.
fn print_peaks(threads: usize, out: &mut dyn Write) -> anyhow::Result<f64> {
    use dropjit::gemm::peak::fma_peak;
    use dropjit::isa::Isa;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for isa in Isa::available().into_iter().rev() {
        let one = fma_peak(isa, 1, 3);
        let all = fma_peak(isa, cores, 3);
        writeln!(
            out,
            "FMA peak {:<8} {one:>8.1} GFLOP/s on 1 thread, {all:>8.1} on {cores}",
            isa.name()
        )?;
    }
    Ok(fma_peak(Isa::best(), threads, 3))
}

fn time_call(
    compiled: &CompiledGraph,
    generator: &mut Generator,
    inputs: &BTreeMap<String, Tensor>,
    params: &ParameterStore,
    outputs: &mut [(String, Tensor)],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    compiled.run_into(generator, inputs, params, outputs)?;
    Ok(started.elapsed())
}
