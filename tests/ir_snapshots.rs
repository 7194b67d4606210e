//! Snapshot tests over every program in `ir/`: drop a `.ir` file there and it is tested.
//!
//! Each snapshot holds the program as printed after parsing, the graph after the eval-mode
//! passes, and the interpreter's outputs (type, mean, zero share, FNV-1a 64 of the bytes) in
//! train mode at two steps and in eval mode, with inputs and parameters filled by name from a
//! fixed seed. A change to printing, passes, the interpreter or the RNG contract shows up here
//! as a diff to review. Bless with `INSTA_UPDATE=always cargo test --release`.

use std::fmt::Write;
use std::fs;

use dropjit::{Generator, Mode, init, interp, passes, text};

fn summarize(graph: &dropjit::Graph, mode: Mode, step: u32) -> String {
    let values = init::random_values(graph, 1).unwrap();
    let mut generator = Generator::new(7).with_step(step);
    let mut out = String::new();
    match interp::run(graph, mode, &mut generator, &values) {
        Ok(outputs) => {
            for (name, tensor) in outputs {
                writeln!(
                    out,
                    "{name} {} mean={:.6} zeros={:.4} fnv1a64={:016x}",
                    tensor.ty(),
                    tensor.mean(),
                    tensor.zero_share(),
                    tensor.fnv1a64()
                )
                .expect("write to string");
            }
        }
        Err(error) => writeln!(out, "error: {error}").expect("write to string"),
    }
    out
}

#[test]
fn ir_programs() {
    insta::glob!("../ir", "*.ir", |path| {
        let source = fs::read_to_string(path).expect("readable ir file");
        let graph = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let eval = passes::optimize(&graph, Mode::Eval).expect("eval passes");
        let report = format!(
            "{graph}\n# after the eval-mode passes\n{eval}\n# train, seed 7, step 0\n{}\n# train, seed 7, step 1\n{}\n# eval\n{}",
            summarize(&graph, Mode::Train, 0),
            summarize(&graph, Mode::Train, 1),
            summarize(&graph, Mode::Eval, 0),
        );
        insta::assert_snapshot!(report);
    });
}
