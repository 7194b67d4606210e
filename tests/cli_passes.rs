//! `dropjit dump`'s pipeline flags: `--stage`, `--print-after-all` and `--time-passes`.

use std::process::{Command, Output};

fn dump(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dropjit"))
        .arg("dump")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the dropjit binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

#[test]
fn stage_parsed_prints_the_graph_as_written() {
    let output = dump(&[
        "ir/layout_cleanup.ir",
        "--stage",
        "parsed",
        "--mode",
        "eval",
    ]);
    assert!(output.status.success());
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("%probe: f32[4, 6] = dropout %x"),
        "{stdout}"
    );
    let optimized = text(&dump(&["ir/layout_cleanup.ir", "--mode", "eval"]).stdout);
    assert!(!optimized.contains("probe"), "{optimized}");
}

#[test]
fn print_after_all_heads_each_pass_on_stderr_and_keeps_stdout_one_graph() {
    let output = dump(&[
        "ir/layout_cleanup.ir",
        "--mode",
        "eval",
        "--print-after-all",
    ]);
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    let headers: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("# after"))
        .collect();
    assert_eq!(
        headers,
        [
            "# after eliminate_dropout",
            "# after simplify_layout",
            "# after fold_transpose",
            "# after eliminate_dead_code",
            "# after split_linear_bias"
        ]
    );
    let stdout = text(&output.stdout);
    // stdout: the result, then the kernel schedule and the memory plan as comments.
    let (graph, schedule) = stdout.split_at(
        stdout
            .find("# kernel")
            .expect("the schedule follows the graph"),
    );
    assert!(stderr.ends_with(graph), "the last dump is the result");
    assert!(schedule.lines().all(|l| l.starts_with("# ")), "{schedule}");
    assert!(schedule.contains("# memory: "), "{schedule}");
    assert_eq!(stdout.matches("graph layout_cleanup").count(), 1);
}

#[test]
fn time_passes_prints_a_table_on_stderr() {
    let output = dump(&["ir/simple_net.ir", "--time-passes", "--format", "dot"]);
    assert!(output.status.success());
    assert!(text(&output.stdout).starts_with("digraph"));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 7, "{stderr}");
    assert!(
        lines[0].contains("time (ms)") && lines[0].contains("pass"),
        "{stderr}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[1..],
        ["eliminate_dropout", "removed", "0,", "rewired", "0"]
    );
    assert!(row[0].parse::<f64>().is_ok(), "{stderr}");
    assert!(lines[5].contains("split_linear_bias"), "{stderr}");
    assert!(lines[6].ends_with("total"), "{stderr}");
}

#[test]
fn pass_flags_need_the_passes() {
    let output = dump(&["ir/dropout.ir", "--stage", "parsed", "--print-after-all"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("need a stage after the passes"));
}

#[test]
fn stage_optimized_prints_the_fused_kernels_as_comments() {
    let output = dump(&["ir/simple_net.ir", "--stage", "optimized"]);
    assert!(output.status.success());
    let stdout = text(&output.stdout);
    let kernels: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("# kernel"))
        .collect();
    assert_eq!(
        kernels,
        [
            "# kernel 0: %fc1.gemm -> %fc1.gemm",
            "# kernel 1: %fc1, %h1, %d1 -> %d1",
            "# kernel 2: %fc2.gemm -> %fc2.gemm",
            "# kernel 3: %fc2, %h2, %d2 -> %d2",
            "# kernel 4: %fc3 -> %fc3",
        ]
    );
    let reparsed = dropjit::text::parse(&stdout).expect("the dump parses");
    assert_eq!(reparsed.name(), "simple_net");
}
