//! `dropjit dump`: a graph as parsed, after the passes (with its kernel schedule), or as the
//! Cranelift IR it compiles to; with `--grad OUTPUT`, of the graph extended by the gradients
//! of that output with respect to every parameter.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clap::ValueEnum;
use dropjit::{Compiler, Graph, Mode, autodiff, passes};

use super::load_graph;

/// How far `dump` takes the compilation.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// The graph as written.
    Parsed,
    /// After the pass pipeline for the mode, followed (text format) by the kernels a
    /// compilation runs, as `# kernel` comment lines.
    Optimized,
    /// The Cranelift IR of the compiled function (before Cranelift's own optimizations).
    Clif,
}

/// Textual IR or Graphviz DOT.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Dot,
}

/// How far `dump` compiles, how it prints the result, and which pipeline reports it adds.
pub struct DumpOptions {
    pub stage: Stage,
    pub format: Format,
    pub print_after_all: bool,
    pub time_passes: bool,
    /// Differentiate this output with respect to every parameter first.
    pub grad: Option<String>,
    /// Monte Carlo samples in one graph (`--samples`, mc mode).
    pub samples: Option<usize>,
}

/// Prints the requested stage of `file` compiled for `mode` to `out` (the pipeline's reports
/// to stderr).
pub fn dump(
    file: &Path,
    mode: Mode,
    options: &DumpOptions,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut parsed = load_graph(file)?;
    if let Some(loss) = &options.grad {
        parsed = with_gradients(parsed, loss)?;
    }
    let uses_passes = options.print_after_all || options.time_passes;
    if options.stage != Stage::Optimized && uses_passes {
        bail!(
            "--print-after-all and --time-passes need a stage after the passes (--stage optimized)"
        );
    }
    if options.stage == Stage::Clif && options.format == Format::Dot {
        bail!("--stage clif prints Cranelift IR, which has no DOT form (use --format text)");
    }
    let graph = match options.stage {
        Stage::Parsed => parsed.clone(),
        Stage::Optimized => {
            let pipeline = passes::PipelineOptions {
                record_dumps: options.print_after_all,
                record_times: options.time_passes,
                samples: options.samples,
                ..passes::PipelineOptions::new(mode)
            };
            let optimized = passes::run_pipeline(&parsed, &pipeline)?;
            // Like LLVM's flags: the extra reports go to stderr, stdout stays one graph.
            if options.print_after_all {
                write!(io::stderr(), "{}", optimized.report.dumps())?;
            }
            if options.time_passes {
                write!(io::stderr(), "{}", optimized.report.times())?;
            }
            optimized.graph
        }
        Stage::Clif => {
            let compiled = Compiler::new()
                .mode(mode)
                .samples(options.samples)
                .compile(&parsed)?;
            write!(out, "{}", compiled.clif())?;
            return Ok(());
        }
    };
    match options.format {
        Format::Text => write!(out, "{graph}")?,
        Format::Dot => write!(out, "{}", graph.dot())?,
    }
    if options.stage == Stage::Optimized && options.format == Format::Text {
        // The kernels a compilation for this mode runs and its memory plan (planned bytes per
        // buffer), as comments: the dump still parses.
        let compiled = Compiler::new()
            .mode(mode)
            .samples(options.samples)
            .compile(&parsed)?;
        write!(out, "{}", compiled.schedule().display(compiled.graph()))?;
        if let Some(tiling) = compiled.tiling() {
            writeln!(out, "{tiling}")?;
        }
        write!(out, "{}", compiled.memory())?;
    }
    Ok(())
}

/// `graph` with the gradient of its output `loss` with respect to every parameter added, each
/// an output named like its node (`fc1.weight.grad`).
fn with_gradients(mut graph: Graph, loss: &str) -> anyhow::Result<Graph> {
    let output = (graph.outputs().iter())
        .find(|o| o.name == loss)
        .with_context(|| format!("--grad {loss}: graph {} has no such output", graph.name()))?;
    let loss = output.node;
    let parameters = graph.parameters();
    let grads = autodiff::gradients(&mut graph, loss, &parameters)?;
    for grad in grads {
        let name = graph[grad].name.clone();
        graph.add_output(name, grad)?;
    }
    Ok(graph)
}
