//! Compile time against graph size: element-wise chains of 1,000 to 100,000 nodes (relus,
//! every eighth a train-mode dropout with a stream of its own), built through the API so that
//! only compilation is timed (passes, plan, lowering, Cranelift). `[64]` keeps every kernel on
//! the scalar loop (less than one 128-element group); `[1024]` takes the vector loop where a
//! kernel is short enough for it. Near-linear growth is the contract (issue 14): 100,000
//! nodes within 12x the 10,000-node time.
//!
//! `cargo bench --bench compile`

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dropjit::graph::{Dropout, DropoutKind, UnaryOp};
use dropjit::{Compiler, Graph, Mode, Op, TensorType};

/// A chain of `nodes` element-wise nodes over `x: f32[width]`.
fn chain(nodes: usize, width: usize) -> Graph {
    let mut g = Graph::new("chain");
    let mut x = (g.add("x", Op::Input(TensorType::f32([width])), &[])).expect("a valid input");
    for i in 0..nodes {
        let op = if i % 8 == 7 {
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
    for width in [64, 1024] {
        for nodes in [1_000, 3_000, 10_000, 30_000, 100_000] {
            let graph = chain(nodes, width);
            let id = BenchmarkId::new(format!("f32[{width}]"), nodes);
            group.bench_with_input(id, &graph, |b, graph| {
                b.iter(|| (Compiler::new().mode(Mode::Train).compile(graph)).expect("compiles"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, compile_scaling);
criterion_main!(benches);
