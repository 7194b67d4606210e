//! The command line against hostile input: numbers at the edges of their types, a reader that
//! goes away, missing and corrupt files. Each case was a panic, a hang, a silent no-op or a
//! damaged file; each is now a typed error naming the values (or, for a closed pipe, a quiet
//! exit), and a failing command leaves every file as it was.

mod common;

use common::cli::{dropjit, names, scratch};

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const U64_MAX: &str = "18446744073709551615";

/// The stderr of a command that failed with `status` (1 for dropjit's errors, 2 for clap's
/// usage errors); never a panic.
fn failure(output: &Output, status: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn success(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "dropjit failed: {stderr}");
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

/// `dropjit train` on the smallest configuration: 20 samples, widths 4 and 4, one batch per
/// epoch, plus `extra`.
fn train(out: &Path, extra: &[&str]) -> Output {
    let out = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "train",
        "--out",
        out,
        "--train-size",
        "20",
        "--batch-size",
        "20",
    ];
    for (flag, default) in [("--epochs", "1"), ("--hidden", "4,4")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend(extra);
    dropjit(&args)
}

#[test]
fn epochs_past_the_limit_are_errors_even_after_a_resume() {
    let dir = scratch("epochs");
    let ckpt = dir.join("ckpt");
    let ckpt = ckpt.to_str().unwrap();
    success(&train(&dir, &["--p", "0", "--save", ckpt]));
    // Was: a panic on arithmetic overflow (or, wrapped, no epoch at all and a panic later).
    let stderr = failure(
        &train(&dir, &["--p", "0", "--resume", ckpt, "--epochs", U64_MAX]),
        1,
    );
    assert_eq!(
        stderr.trim_end(),
        format!("invalid epochs (at most 4294967295): {U64_MAX}")
    );
    // Within the bound alone, but not with the epoch the checkpoint has done.
    let stderr = failure(
        &train(
            &dir,
            &["--p", "0", "--resume", ckpt, "--epochs", "4294967295"],
        ),
        1,
    );
    assert_eq!(
        stderr.trim_end(),
        format!(
            "invalid epochs (at most 4294967295 in all): 4294967295 more after the 1 of {}",
            Path::new(ckpt).join("p0.safetensors").display()
        )
    );
}

#[test]
fn a_seed_range_that_would_wrap_is_an_error_and_the_last_seed_works() {
    let dir = scratch("seeds");
    // Was: exit 0 with nothing printed (the range SEED..SEED+N wrapped to empty).
    let stderr = failure(&train(&dir, &["--seed", U64_MAX, "--seeds", "2"]), 1);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "invalid seeds (the last, SEED + N - 1, at most {U64_MAX}): --seed {U64_MAX} --seeds 2"
        )
    );
    let stderr = failure(&train(&dir, &["--seeds", "0"]), 1);
    assert_eq!(
        stderr.trim_end(),
        "invalid seed count --seeds (at least 1): 0"
    );
    let stdout = success(&train(&dir, &["--p", "0", "--seed", U64_MAX]));
    assert!(stdout.contains(&format!("seed {U64_MAX}\n")), "{stdout}");
}

#[test]
fn hidden_widths_are_bounded() {
    let dir = scratch("hidden");
    // Was: a capacity-overflow panic.
    let stderr = failure(&train(&dir, &["--hidden", "4611686018427387904,1"]), 1);
    assert_eq!(
        stderr.trim_end(),
        "invalid hidden sizes (at most 65536): [4611686018427387904, 1]"
    );
    // Each width within the bound, but 4.3 billion parameters (16 GiB of f32) in all.
    let stderr = failure(&train(&dir, &["--hidden", "65536,65536"]), 1);
    assert_eq!(
        stderr.trim_end(),
        "invalid hidden sizes (at most 268435456 parameters): [65536, 65536] make 4299948042"
    );
}

#[test]
fn thread_counts_are_bounded_in_every_subcommand() {
    // Was: 10,000 threads started per compilation (20-40 s for a tiny graph).
    let dir = scratch("threads");
    let dir = dir.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["train", "--out", dir],
        &["run", "ir/dropout.ir"],
        &["bench", "ir/dropout.ir"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--threads", "10000"]);
        let stderr = failure(&dropjit(&args), 2);
        assert!(
            stderr.contains(
                "invalid value '10000' for '--threads <THREADS>': 10000 is not in 1..=256"
            ),
            "{command:?}: {stderr}"
        );
    }
    success(&dropjit(&["run", "ir/dropout.ir", "--threads", "256"]));
}

#[test]
fn bench_iterations_are_bounded() {
    // Was: a timing kept per call until memory ran out.
    let stderr = failure(&dropjit(&["bench", "ir/dropout.ir", "--iters", U64_MAX]), 2);
    assert!(
        stderr.contains(&format!("{U64_MAX} is not in 1..=1000000")),
        "{stderr}"
    );
    let stderr = failure(&dropjit(&["bench", "ir/dropout.ir", "--iters", "0"]), 2);
    assert!(stderr.contains("0 is not in 1..=1000000"), "{stderr}");
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

#[test]
fn run_save_writes_whole_files_or_leaves_the_old_ones() {
    let dir = scratch("save");
    let dir_arg = dir.to_str().unwrap();
    success(&dropjit(&["run", "ir/dropout.ir", "--save", dir_arg]));
    success(&dropjit(&[
        "run",
        "ir/dropout.ir",
        "--save",
        dir_arg,
        "--seed",
        "1",
    ]));
    // Replaced by renames: no temporary file is left behind.
    assert_eq!(names(&dir), ["x.npy", "y.npy"]);

    // A directory where y.npy goes makes its write fail, deterministically (chmod does not
    // stop root): an error naming the file, and what stood there is untouched.
    let y = dir.join("y.npy");
    fs::remove_file(&y).unwrap();
    fs::create_dir(&y).unwrap();
    fs::write(y.join("inside"), b"kept").unwrap();
    let stderr = failure(&dropjit(&["run", "ir/dropout.ir", "--save", dir_arg]), 1);
    assert!(
        stderr.starts_with(&format!("{}: ", y.display())),
        "{stderr}"
    );
    assert_eq!(fs::read(y.join("inside")).unwrap(), b"kept");
    assert_eq!(names(&dir), ["x.npy", "y.npy"]);
}

#[test]
fn a_corrupt_checkpoint_fails_the_command_before_any_checkpoint_is_written() {
    let dir = scratch("corrupt");
    let ckpt = dir.join("ckpt");
    let ckpt_arg = ckpt.to_str().unwrap();
    success(&train(&dir, &["--p", "0,0.5", "--save", ckpt_arg]));
    let p0 = ckpt.join("p0.safetensors");
    let before = fs::read(&p0).unwrap();
    let plot = dir.join("learning_curves.svg");
    let plot_before = fs::read(&plot).unwrap();
    let p05 = ckpt.join("p0.5.safetensors");
    fs::write(&p05, b"not a checkpoint").unwrap();
    // Was: p = 0 trained and overwrote p0.safetensors before p = 0.5 failed to load.
    let stderr = failure(
        &train(
            &dir,
            &["--p", "0,0.5", "--resume", ckpt_arg, "--save", ckpt_arg],
        ),
        1,
    );
    assert!(
        stderr.starts_with(&format!("{}: ", p05.display())),
        "{stderr}"
    );
    assert_eq!(fs::read(&p0).unwrap(), before);
    assert_eq!(fs::read(&p05).unwrap(), b"not a checkpoint");
    assert_eq!(fs::read(&plot).unwrap(), plot_before);
    assert_eq!(names(&ckpt), ["p0.5.safetensors", "p0.safetensors"]);
}
