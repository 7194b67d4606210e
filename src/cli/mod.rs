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
use std::path::Path;

use anyhow::Context;
use dropjit::{Graph, Mode, text};

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
pub fn check(file: &Path) -> anyhow::Result<()> {
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

/// The mode's name as the command line spells it.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Train => "train",
        Mode::Eval => "eval",
    }
}
