//! Compile time against graph size, built through the API so that only compilation is timed
//! (passes, plan, lowering, Cranelift): relu chains of 1,000 to 100,000 nodes over `f32[64]`
//! (every kernel on the scalar loop: less than one 128-element group) and `f32[1024]` (the
//! vector loop where a kernel is short enough for it), and chains of up to 10,000 nodes where
//! every eighth node is a train-mode dropout with a stream of its own. Near-linear growth is
//! the contract (issue 14): 100,000 nodes within 12x the 10,000-node time. A drawing dropout
//! costs more than a relu (a kernel of its own with the generator's run loop; about 0.4 ms of
//! compile, down from 2.7 ms when its Philox rounds were generated code), hence the shorter
//! range.
//!
//! `cargo bench --bench compile`

#[allow(dead_code)] // the bit-plane reference is for the dropout bench
mod support;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group};
use dropjit::graph::{Dropout, DropoutKind, UnaryOp};
use dropjit::{Compiler, Graph, Mode, Op, TensorType};

/// A chain of `nodes` element-wise nodes over `x: f32[width]`, every eighth a dropout if
/// `dropouts`.
fn chain(nodes: usize, width: usize, dropouts: bool) -> Graph {
    let mut g = Graph::new("chain");
    let mut x = (g.add("x", Op::Input(TensorType::f32([width])), &[])).expect("a valid input");
    for i in 0..nodes {
        let op = if dropouts && i % 8 == 7 {
            Op::Dropout(Dropout::new(DropoutKind::Dropout, 0.1, (i / 8) as u32))
        } else {
            Op::Unary(UnaryOp::Relu)
        };
        x = g.add(format!("n{i}"), op, &[x]).expect("a valid node");
    }
    g.add_output("y", x).expect("a valid output");
    g
}

fn compile_scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile_chain");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let relus = [1_000, 3_000, 10_000, 30_000, 100_000];
    let series = [
        ("relu/f32[64]", 64, false, &relus[..]),
        ("relu/f32[1024]", 1024, false, &relus[..]),
        ("relu_dropout/f32[1024]", 1024, true, &relus[..3]),
    ];
    for (name, width, dropouts, sizes) in series {
        for &nodes in sizes {
            let graph = chain(nodes, width, dropouts);
            let id = BenchmarkId::new(name, nodes);
            group.bench_with_input(id, &graph, |b, graph| {
                b.iter(|| (Compiler::new().mode(Mode::Train).compile(graph)).expect("compiles"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, compile_scaling);
/// `criterion_main!`, after the line naming the machine.
fn main() {
    println!("{}", support::machine());
    benches();
    Criterion::default().configure_from_args().final_summary();
}
