//! The `dropjit` binary as the command-line tests run it, and scratch directories for the
//! files it reads and writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the binary with `args` from the crate's root (where `ir/` is).
pub fn dropjit(args: &[&str]) -> Output {
    // Cargo names the binary to the package's integration tests only; the fuzz crate, which
    // shares this module, builds without it (and never runs the binary).
    let Some(binary) = option_env!("CARGO_BIN_EXE_dropjit") else {
        panic!("invariant: the package's integration tests know the dropjit binary")
    };
    Command::new(binary)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the dropjit binary runs")
}

/// A fresh, empty directory under the system temp dir, unique to this process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropjit-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The names in `dir`, sorted (temporary files of the atomic writes would show here).
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = (fs::read_dir(dir).expect("read dir"))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
