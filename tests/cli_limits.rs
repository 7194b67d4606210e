//! The command line against hostile input: numbers at the edges of their types, a reader that
//! goes away, missing and corrupt files. Each case was a panic, a hang, a silent no-op or a
//! damaged file; each is now a typed error naming the values (or, for a closed pipe, a quiet
//! exit), and a failing command leaves every file as it was.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

fn dropjit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dropjit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the dropjit binary runs")
}

/// The stderr of a command that failed with `status` (1 for dropjit's errors, 2 for clap's
/// usage errors); never a panic.
fn failure(output: &Output, status: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A fresh directory under the system temp dir, unique to this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropjit-limits-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    // Was: a panic, "failed printing to stdout: Broken pipe". The pipe's read end is closed
    // before the command starts, so its first write fails, deterministically.
    let commands: [&[&str]; 4] = [
        &["run", "ir/simple_net.ir"],
        &["dump", "ir/simple_net.ir"],
        &["check", "ir/simple_net.ir"],
        &["bench", "ir/dropout.ir", "--iters", "1"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_dropjit"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(writer)
            .output()
            .expect("the dropjit binary runs");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
        // 128 + SIGPIPE, what a shell reports for a process the default SIGPIPE ended.
        assert_eq!(output.status.code(), Some(141), "{args:?}");
    }
}

#[test]
fn an_os_error_is_printed_once() {
    let dir = scratch("once");
    // Was: "x.npy: No such file or directory (os error 2): No such file or directory (os
    // error 2)", the error's message and then its source.
    let output = dropjit(&["run", "ir/dropout.ir", "--load", dir.to_str().unwrap()]);
    let stderr = failure(&output, 1);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{}: No such file or directory (os error 2)",
            dir.join("x.npy").display()
        )
    );
    let missing = dir.join("missing.ir");
    let stderr = failure(&dropjit(&["check", missing.to_str().unwrap()]), 1);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
}
