//! The command line as a new user meets it: check, dump and run on the shipped programs.

mod common;

use common::cli::{dropjit, scratch};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dropjit::Op;

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "dropjit failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

#[test]
fn check_accepts_simple_net_and_rejects_a_broken_copy_with_line_and_column() {
    let ok = stdout(&dropjit(&["check", "ir/simple_net.ir"]));
    assert!(ok.contains("graph simple_net is well formed"), "{ok}");

    let source = fs::read_to_string("ir/simple_net.ir").expect("simple_net.ir");
    let broken = source.replacen("f32[256, 784]", "f32[256, 783]", 1);
    assert_ne!(source, broken);
    let dir = scratch("check");
    let path = dir.join("broken.ir");
    fs::write(&path, broken).expect("write");
    let output = dropjit(&["check", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let prefix = format!("{}:", path.display());
    assert!(stderr.starts_with(&prefix), "{stderr}");
    let position: Vec<&str> = stderr[prefix.len()..].splitn(3, ':').collect();
    assert!(
        position[0].parse::<usize>().is_ok() && position[1].parse::<usize>().is_ok(),
        "{stderr}"
    );
    assert!(
        stderr.contains("input has 784 features but weight expects 783"),
        "{stderr}"
    );
}

#[test]
fn dump_prints_text_and_dot() {
    let text = stdout(&dropjit(&["dump", "ir/simple_net.ir"]));
    assert!(text.starts_with("graph simple_net {"), "{text}");
    assert!(text.contains("= dropout %"), "{text}");
    let eval = stdout(&dropjit(&["dump", "ir/simple_net.ir", "--mode", "eval"]));
    assert!(
        !eval.contains("dropout"),
        "eval mode eliminates dropout:\n{eval}"
    );
    let dot = stdout(&dropjit(&["dump", "ir/simple_net.ir", "--format", "dot"]));
    assert!(dot.starts_with("digraph"), "{dot}");
}

fn output_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn run_is_reproducible_per_seed_and_step() {
    let args = [
        "run",
        "ir/simple_net.ir",
        "--mode",
        "train",
        "--seed",
        "7",
        "--step",
        "0",
    ];
    let first = stdout(&dropjit(&args));
    let second = stdout(&dropjit(&args));
    assert!(first.contains("rng contract v1"), "{first}");
    assert_eq!(first, second);
    let mut next = args;
    next[7] = "1";
    let other = stdout(&dropjit(&next));
    assert_ne!(
        output_lines(&first),
        output_lines(&other),
        "step 1 draws other masks"
    );
}

#[test]
fn eval_equals_train_with_every_p_set_to_zero() {
    let source = fs::read_to_string("ir/simple_net.ir").expect("simple_net.ir");
    let zeroed = source.replace("p = 0.5", "p = 0");
    assert_ne!(source, zeroed);
    let dir = scratch("p0");
    let path = dir.join("simple_net_p0.ir");
    fs::write(&path, zeroed).expect("write");
    let path = path.to_str().expect("utf-8 path");
    let eval = stdout(&dropjit(&["run", "ir/simple_net.ir", "--mode", "eval"]));
    let train = stdout(&dropjit(&["run", path, "--mode", "train", "--seed", "3"]));
    assert_eq!(output_lines(&eval), output_lines(&train));
}

#[test]
fn saved_dropout_is_recomputed_bit_for_bit_by_the_independent_checker() {
    let dir = scratch("save");
    let dir_arg = dir.to_str().expect("utf-8 path");
    stdout(&dropjit(&[
        "run",
        "ir/dropout.ir",
        "--seed",
        "11",
        "--step",
        "5",
        "--save",
        dir_arg,
    ]));
    check_independently(
        &dir,
        &[
            "--kind", "dropout", "--p", "0.5", "--seed", "11", "--step", "5", "--stream", "0",
        ],
    );
}

#[test]
fn every_dropout_of_every_program_is_recomputed_bit_for_bit() {
    let mut checked = 0;
    for entry in fs::read_dir("ir").expect("ir/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "ir") {
            continue;
        }
        let graph =
            dropjit::text::parse(&fs::read_to_string(&path).expect("ir file")).expect("parses");
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name");
        let dir = scratch(&format!("all-{stem}"));
        let (path_arg, dir_arg) = (path.to_str().expect("utf-8"), dir.to_str().expect("utf-8"));
        stdout(&dropjit(&[
            "run",
            path_arg,
            "--seed",
            "5",
            "--step",
            "3",
            "--save",
            dir_arg,
            "--save-all",
        ]));
        for id in graph.topo_order() {
            let node = &graph[id];
            let Some(d) = node.op.as_dropout() else {
                continue;
            };
            let input = &graph[graph.operands(id).unwrap()[0]].name;
            let (x, y) = (
                dir.join(format!("{input}.npy")),
                dir.join(format!("{}.npy", node.name)),
            );
            let dims: Vec<String> = d.broadcast_dims.iter().map(usize::to_string).collect();
            let (p, stream, dims) = (d.p.to_string(), d.stream.to_string(), dims.join(","));
            let mut args = vec![
                "--kind",
                d.kind.name(),
                "--p",
                &p,
                "--seed",
                "5",
                "--step",
                "3",
                "--stream",
                &stream,
            ];
            if !dims.is_empty() {
                args.extend(["--broadcast-dims", &dims]);
            }
            check_files_independently(&x, &y, &args);
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} dropout nodes were checked");
}

fn check_independently(dir: &Path, args: &[&str]) {
    check_files_independently(&dir.join("x.npy"), &dir.join("y.npy"), args);
}

fn check_files_independently(x: &Path, y: &Path, args: &[&str]) {
    let output = Command::new("python3")
        .arg("tests/contract/check_masks.py")
        .args([
            "--x",
            x.to_str().expect("utf-8"),
            "--y",
            y.to_str().expect("utf-8"),
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 is needed for the independent contract check");
    assert!(
        output.status.success(),
        "independent check failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn saved_values_load_back_to_the_same_outputs() {
    let dir = scratch("load");
    let dir_arg = dir.to_str().expect("utf-8 path");
    let args = [
        "run",
        "ir/train_loss.ir",
        "--seed",
        "2",
        "--input-seed",
        "9",
    ];
    let saved = stdout(&dropjit(&[&args[..], &["--save", dir_arg]].concat()));
    let loaded = stdout(&dropjit(&[
        "run",
        "ir/train_loss.ir",
        "--seed",
        "2",
        "--load",
        dir_arg,
    ]));
    assert_eq!(output_lines(&saved), output_lines(&loaded));
    let other_inputs = stdout(&dropjit(&["run", "ir/train_loss.ir", "--seed", "2"]));
    assert_ne!(output_lines(&saved), output_lines(&other_inputs));

    fs::remove_file(dir.join("x.npy")).expect("x.npy was saved");
    let output = dropjit(&["run", "ir/train_loss.ir", "--load", dir_arg]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("x.npy"), "{stderr}");
}

/// The `name type` and the mean of an output line.
fn name_type_and_mean(line: &str) -> (String, f64) {
    let parts: Vec<&str> = line.split(' ').collect();
    let mean = parts
        .iter()
        .find_map(|p| p.strip_prefix("mean="))
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no mean in {line}"));
    (parts[..parts.len() - 3].join(" "), mean)
}

#[test]
fn jit_and_interpreter_print_the_same_lines() {
    for entry in fs::read_dir("ir").expect("ir/") {
        let path = entry.expect("dir entry").path();
        let graph =
            dropjit::text::parse(&fs::read_to_string(&path).expect("ir file")).expect("parses");
        // The GEMM crate sums matrix products in its own order (blocked, with FMA where the CPU
        // has it), so values downstream of matmul/linear agree within a tolerance; everything
        // else, every dropout mask included, is bit-identical.
        let has_gemm = graph
            .node_ids()
            .any(|id| matches!(graph[id].op, Op::MatMul { .. } | Op::Linear { .. }));
        let path = path.to_str().expect("utf-8 path");
        for mode in ["train", "eval"] {
            let run = |engine| {
                stdout(&dropjit(&[
                    "run", path, "--mode", mode, "--engine", engine, "--seed", "4",
                ]))
            };
            let (jit, interp) = (output_lines(&run("jit")), output_lines(&run("interp")));
            assert_eq!(jit.len(), interp.len());
            let reference = stdout(&dropjit(&[
                "run",
                path,
                "--mode",
                mode,
                "--gemm",
                "reference",
                "--seed",
                "4",
            ]));
            assert_eq!(
                output_lines(&reference),
                interp,
                "{path} {mode} --gemm reference"
            );
            for (j, i) in jit.iter().zip(&interp) {
                if !has_gemm {
                    assert_eq!(j, i, "{path} {mode}");
                    continue;
                }
                let ((j_head, j_mean), (i_head, i_mean)) =
                    (name_type_and_mean(j), name_type_and_mean(i));
                assert_eq!(j_head, i_head, "{path} {mode}");
                let close = (j_mean - i_mean).abs() <= 1e-4 * (1.0 + i_mean.abs())
                    || (j_mean.is_nan() && i_mean.is_nan());
                assert!(close, "{path} {mode}: {j} vs {i}");
            }
        }
    }
}

#[test]
fn dump_clif_and_bench() {
    let clif = stdout(&dropjit(&["dump", "ir/dropout.ir", "--stage", "clif"]));
    assert!(clif.starts_with("; phase 0: kernel 0 ("), "{clif}");
    assert!(clif.contains("\nfunction "), "{clif}");
    assert!(clif.contains("imul"), "Philox is inlined:\n{clif}");
    let eval = stdout(&dropjit(&[
        "dump",
        "ir/dropout.ir",
        "--stage",
        "clif",
        "--mode",
        "eval",
    ]));
    assert!(
        eval.lines().count() < clif.lines().count() / 4,
        "eval mode is a copy:\n{eval}"
    );
    for threads in ["1", "2"] {
        let bench = stdout(&dropjit(&[
            "bench",
            "ir/dropout.ir",
            "--iters",
            "5",
            "--threads",
            threads,
        ]));
        for figure in ["machine: ", "compile", "median call", "throughput"] {
            assert!(bench.contains(figure), "{bench}");
        }
    }
}

#[test]
fn bench_states_the_fma_peak_and_a_graphs_products_as_a_share_of_it() {
    let peak = stdout(&dropjit(&["bench", "--peak"]));
    assert!(peak.starts_with("machine: "), "{peak}");
    assert!(peak.contains("FMA peak portable"), "{peak}");
    assert!(!peak.contains("median call"), "{peak}");
    let bench = stdout(&dropjit(&[
        "bench",
        "ir/simple_net.ir",
        "--iters",
        "3",
        "--peak",
    ]));
    // 32 x (784 x 256 + 256 x 128 + 128 x 10) multiply-adds.
    assert!(
        bench.contains("(7512064 multiply-adds per call, "),
        "{bench}"
    );
    assert!(bench.contains("% of the FMA peak)"), "{bench}");
    let missing = dropjit(&["bench"]);
    assert!(!missing.status.success(), "a file or --peak is required");
}

#[test]
fn run_prints_the_same_lines_on_one_and_two_threads() {
    let mut paths: Vec<PathBuf> = (fs::read_dir("ir").expect("ir/"))
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let path = path.to_str().expect("utf-8 path");
        for mode in ["train", "eval"] {
            let run = |threads| {
                let args = [
                    "run",
                    path,
                    "--mode",
                    mode,
                    "--seed",
                    "9",
                    "--threads",
                    threads,
                ];
                stdout(&dropjit(&args))
            };
            assert_eq!(run("1"), run("2"), "{path} {mode}");
        }
    }
    let zero = dropjit(&["run", "ir/dropout.ir", "--threads", "0"]);
    assert_eq!(zero.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&zero.stderr);
    assert!(stderr.contains("0 is not in 1..=256"), "{stderr}");
}

#[test]
fn run_and_dump_draw_monte_carlo_samples_in_one_graph() {
    // `run --mode mc --samples N`: each output [N, ...], the same lines on both engines (the
    // reference GEMM), and sample s is a single-sample mc run at step s (its saved values).
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "ir/simple_net.ir", "--mode", "mc", "--samples", "3"];
        args.extend(extra);
        stdout(&dropjit(&args))
    };
    let jit = run(&["--gemm", "reference"]);
    let interp = run(&["--engine", "interp"]);
    assert_eq!(jit, interp);
    assert!(jit.contains("logits f32[3, 32, 10]"), "{jit}");
    assert!(
        jit.contains("  3 samples from step 0: variance mean=")
            && jit.contains("mutual_information mean="),
        "{jit}"
    );
    let dir = scratch("mc_samples");
    run(&["--engine", "interp", "--save", dir.to_str().unwrap()]);
    let all = dropjit::npy::read(&dir.join("logits.npy")).unwrap();
    let all = all.as_f32().unwrap().to_vec();
    for s in 0..3 {
        let one_dir = scratch(&format!("mc_sample_{s}"));
        let step = s.to_string();
        let args = [
            "run",
            "ir/simple_net.ir",
            "--mode",
            "mc",
            "--engine",
            "interp",
            "--step",
            &step,
            "--save",
            one_dir.to_str().unwrap(),
        ];
        stdout(&dropjit(&args));
        let one = dropjit::npy::read(&one_dir.join("logits.npy")).unwrap();
        assert_eq!(
            &all[s * 320..(s + 1) * 320],
            one.as_f32().unwrap(),
            "sample {s}"
        );
    }
    // --samples needs --mode mc.
    let wrong = dropjit(&["run", "ir/simple_net.ir", "--samples", "3"]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .contains("--samples 3 draws Monte Carlo samples: it needs --mode mc"),
    );
    // The dump: the pass, the prefix at its shapes, the expansion and the chunks.
    let dumped = stdout(&dropjit(&[
        "dump",
        "ir/simple_net.ir",
        "--mode",
        "mc",
        "--samples",
        "30",
    ]));
    assert!(
        dumped.contains("%fc1: f32[32, 256] = add %fc1.gemm"),
        "{dumped}"
    );
    assert!(
        dumped.contains("%h1.samples: f32[30, 32, 256] = expand %h1"),
        "{dumped}"
    );
    assert!(dumped.contains("sample_steps = true"), "{dumped}");
    assert!(dumped.contains("# samples: 30 in chunks of "), "{dumped}");
}
