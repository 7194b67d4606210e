//! The command line's subcommands (binary only; `main.rs` parses the arguments), and what
//! `dropjit train` needs beyond the library: the experiment runner, its SVG plot and its
//! progress bar.

pub mod dump;
pub mod experiment;
pub mod plot;
pub mod progress;
pub mod run;
pub mod train;

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use clap::builder::RangedU64ValueParser;
use dropjit::{Graph, Mode, text};

/// The most threads `--threads` accepts (train, run, bench). Results are the same bits for any
/// count, so more threads than cores only add overhead, and every compilation builds its own
/// pool: `--threads 10000` spent most of its time starting threads. A fixed bound (rather than
/// a multiple of this machine's cores) keeps a command line valid on every machine; 256 is
/// above the cores of the machines dropjit is meant for.
pub const MAX_THREADS: u64 = 256;

/// The parser of `--threads`: 1 to [`MAX_THREADS`], an error naming the value and the range
/// otherwise.
pub fn thread_count() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..=MAX_THREADS)
}

/// Reads and parses `file`; errors come back as `FILE:line:col: message` lines.
pub fn load_graph(file: &Path) -> anyhow::Result<Graph> {
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

/// `dropjit check`: parse and verify.
pub fn check(file: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let graph = load_graph(file)?;
    writeln!(
        out,
        "{}: graph {} is well formed ({} nodes, {} outputs)",
        file.display(),
        graph.name(),
        graph.len(),
        graph.outputs().len()
    )?;
    Ok(())
}

/// `--samples N` checked against the mode: Monte Carlo samples are drawn in mc mode only.
pub fn samples(mode: Mode, samples: Option<u64>) -> anyhow::Result<Option<usize>> {
    match samples {
        Some(n) if mode != Mode::Mc => {
            anyhow::bail!("--samples {n} draws Monte Carlo samples: it needs --mode mc")
        }
        Some(n) => Ok(Some(usize::try_from(n)?)),
        None => Ok(None),
    }
}

/// `graph` as one graph of `samples` Monte Carlo samples, if asked for.
pub fn with_samples(graph: Graph, samples: Option<usize>) -> anyhow::Result<Graph> {
    Ok(match samples {
        Some(n) => dropjit::passes::batch_samples(&graph, n)?.graph,
        None => graph,
    })
}

/// The mode's name as the command line spells it.
pub fn mode_name(mode: Mode) -> &'static str {
    mode.name()
}

/// The message of `error` and its causes, joined by `: `, each once: a cause whose message
/// ends the text so far is left out. (`dropjit::Error::Io` prints its OS error and also has it
/// as its source, so `{:#}` would print `x.npy: No such file or directory (os error 2): No
/// such file or directory (os error 2)`.)
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Whether `error` comes from writing to a pipe whose reader has gone (`dropjit run F | head
/// -1`). Rust ignores SIGPIPE, so the write fails with `BrokenPipe` instead of ending the
/// process; `main` then ends quietly as the default SIGPIPE would have, whichever write it was.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    (error.chain())
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
