//! Snapshots of the optimized graph, in train and in eval mode, for every program in `ir/`:
//! what the pass pipeline did, as a diff to review. Each snapshot shows, per mode, every pass's
//! stats and the graph after the pipeline. The eval-mode graphs must hold no dropout-family
//! node. Bless with `INSTA_UPDATE=always cargo test --release --test pass_snapshots`.

use std::fmt::Write;
use std::fs;

use dropjit::passes::{self, PipelineOptions};
use dropjit::{Mode, text};

#[test]
fn optimized_ir_programs() {
    insta::glob!("../ir", "*.ir", |path| {
        let source = fs::read_to_string(path).expect("readable ir file");
        let graph = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut report = String::new();
        for (mode, name) in [(Mode::Train, "train"), (Mode::Eval, "eval")] {
            let optimized = passes::run_pipeline(&graph, &PipelineOptions::new(mode))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            writeln!(report, "# {name}").expect("write to string");
            for line in optimized.report.to_string().lines() {
                writeln!(report, "# {line}").expect("write to string");
            }
            writeln!(report, "{}", optimized.graph).expect("write to string");
            if mode == Mode::Eval {
                let g = &optimized.graph;
                let dropouts: Vec<&str> = g
                    .node_ids()
                    .filter(|&id| g[id].op.is_dropout())
                    .map(|id| g[id].name.as_str())
                    .collect();
                assert!(
                    dropouts.is_empty(),
                    "{}: eval mode keeps {dropouts:?}",
                    path.display()
                );
            }
        }
        insta::assert_snapshot!(report);
    });
}
