//! `dropjit train` on a tiny configuration (seconds): the tables, the plot file, plain progress
//! lines when stderr is not a terminal, reproducibility, and save/resume.

mod common;

use common::cli::{dropjit, scratch};

use std::fs;
use std::path::Path;
use std::process::Output;

fn success(output: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "dropjit failed: {stderr}");
    (
        String::from_utf8(output.stdout.clone()).expect("utf-8"),
        stderr,
    )
}

const TINY: [&str; 6] = [
    "--train-size",
    "100",
    "--hidden",
    "32,16",
    "--batch-size",
    "25",
];

fn train(out: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    if !extra.contains(&"--epochs") {
        args.extend(["--epochs", "3"]);
    }
    args.extend(extra);
    success(&dropjit(&args))
}

/// The rows of the summary table after the last epoch: `p` and the cells after it.
fn summary_rows(stdout: &str) -> Vec<Vec<String>> {
    let table = stdout
        .split("after the last epoch:\n")
        .nth(1)
        .expect("a summary table");
    table
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with("plot:"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn train_prints_epochs_a_table_and_the_plot_path() {
    let out = scratch("tables");
    let (stdout, stderr) = train(&out, &[]);
    assert!(
        stdout.contains("on 100 training digits (1697 held out), sgd lr 0.01, batch 25, seed 0"),
        "{stdout}"
    );
    // Per epoch: three rows, both runs side by side.
    assert!(
        stdout.contains("p = 0") && stdout.contains("p = 0.5"),
        "{stdout}"
    );
    for epoch in 1..=3 {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{epoch}  |"))),
            "{stdout}"
        );
    }
    let header = stdout
        .split("after the last epoch:\n")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    for column in ["train acc", "test acc", "gap", "compile", "steps/s"] {
        assert!(header.contains(column), "{header}");
    }
    let rows = summary_rows(&stdout);
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!((rows[0][0].as_str(), rows[1][0].as_str()), ("0", "0.5"));
    for row in &rows {
        // p, train acc, test acc, gap, test loss, compile ms "ms", steps/s
        assert_eq!(row.len(), 8, "{row:?}");
        let pct = |s: &str| s.trim_end_matches('%').parse::<f64>().unwrap();
        let (train, test, gap) = (pct(&row[1]), pct(&row[2]), pct(&row[3]));
        assert!((train - test - gap).abs() < 0.11, "{row:?}");
        assert!(test > 10.0, "better than chance after 3 epochs: {row:?}");
        assert!(row[5].parse::<f64>().unwrap() > 0.0 && row[7].parse::<f64>().unwrap() > 0.0);
    }
    // Not a terminal: one plain progress line per epoch and run.
    assert_eq!(
        stderr.lines().filter(|l| l.contains(" epoch ")).count(),
        6,
        "{stderr}"
    );
    assert!(!stderr.contains('\r'));
    // The plot.
    let plot = out.join("learning_curves.svg");
    assert!(
        stdout.contains(&format!("plot: {}", plot.display())),
        "{stdout}"
    );
    let svg = fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for name in ["train p=0", "test p=0", "train p=0.5", "test p=0.5"] {
        assert!(svg.contains(&format!("<title>{name}</title>")), "{name}");
    }
}

#[test]
fn same_seed_same_figures_other_seed_other_figures() {
    let out = scratch("seeds");
    let strip = |s: &str| -> Vec<Vec<String>> {
        // Timing columns differ run to run: keep p, accuracies, gap and loss.
        summary_rows(s)
            .into_iter()
            .map(|r| r[..5].to_vec())
            .collect()
    };
    let a = strip(&train(&out, &[]).0);
    let b = strip(&train(&out, &["--threads", "2"]).0);
    let c = strip(&train(&out, &["--seed", "1"]).0);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn save_then_resume_continues_the_run() {
    let dir = scratch("resume");
    let out = dir.join("out");
    let ckpt = dir.join("ckpt").to_str().unwrap().to_string();
    // Three epochs at once versus one epoch saved, then two resumed.
    let whole = train(&out, &["--epochs", "3"]).0;
    let (_, _) = train(&out, &["--epochs", "1", "--save", &ckpt]);
    assert!(dir.join("ckpt/p0.5.safetensors").is_file());
    let resumed = train(&out, &["--epochs", "2", "--resume", &ckpt]).0;
    let last = |s: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with("3  |"))
            .map(str::to_string)
    };
    assert!(last(&resumed).is_some(), "{resumed}");
    assert_eq!(last(&whole), last(&resumed));
}

#[test]
fn bad_flags_are_errors_that_say_why() {
    let out = scratch("errors");
    let output = dropjit(&[
        "train",
        "--out",
        out.to_str().unwrap(),
        "--train-size",
        "5000",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a training split of 5000 samples needs 0 < 5000 < 1797"),
        "{stderr}"
    );
    let output = dropjit(&["train", "--out", out.to_str().unwrap(), "--p", "1.5"]);
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("dropout probability has to be between 0 and 1, but got 1.5")
    );
}

#[test]
fn several_seeds_add_a_table_over_them() {
    let out = scratch("several");
    let (stdout, _) = train(&out, &["--seeds", "2", "--epochs", "1"]);
    let table = stdout
        .split("2 seeds (0, 1): mean ± standard deviation\n")
        .nth(1)
        .expect(&stdout);
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].trim_start().starts_with("0 ") && rows[1].trim_start().starts_with("0.5 "));
    assert_eq!(rows[0].matches('±').count(), 4);
    assert!(
        out.join("learning_curves_seed0.svg").is_file()
            && out.join("learning_curves_seed1.svg").is_file()
    );
}

#[test]
fn the_cnn_trains_with_dropout2d_and_reports_like_the_mlp() {
    // One run, one epoch, a small test split: quick.
    let out = scratch("cnn");
    let args = [
        "train",
        "--model",
        "cnn",
        "--p",
        "0.5",
        "--train-size",
        "1700",
        "--batch-size",
        "100",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    let (stdout, _) = success(&dropjit(&args));
    assert!(
        stdout.starts_with("DigitsCnn (conv 16, conv 32, max pool, Dropout2d, linear) on 1700 training digits (97 held out)"),
        "{stdout}"
    );
    let rows = summary_rows(&stdout);
    assert_eq!(rows.len(), 1, "{stdout}");
    assert_eq!(rows[0][0], "0.5");
    // The uncertainty table: the eval forward and the Monte Carlo call, timed beside 30
    // single-sample calls.
    let uncertainty = stdout
        .split("uncertainty on the test split")
        .nth(1)
        .expect("the report");
    assert!(
        uncertainty
            .lines()
            .any(|l| l.trim_start().starts_with("0.5        mc")),
        "{stdout}"
    );
    assert!(out.join("learning_curves.svg").exists());
}
