//! Long element-wise chains (issue 14, item 6): compiled in near-linear time by cutting them
//! into kernels of bounded length (fusion rule 4) and running long kernels on the scalar loop;
//! the cuts change no bit. `cargo bench --bench compile` times chains of up to 100,000 nodes.

use std::collections::BTreeMap;

use dropjit::graph::{Dropout, DropoutKind, UnaryOp};
use dropjit::{Compiler, Generator, Graph, Mode, Op, ParameterStore, Tensor, TensorType, interp};

/// 700 nodes over `f32[300]` (two whole 128-element groups and a partial one): relus, and
/// every seventh a dropout of a different kind, each with its own stream.
fn chain() -> Graph {
    let mut g = Graph::new("chain");
    let mut x = g.add("x", Op::Input(TensorType::f32([300])), &[]).unwrap();
    for i in 0..700usize {
        let op = if i % 7 == 6 {
            let kind = [DropoutKind::Dropout, DropoutKind::AlphaDropout][i / 7 % 2];
            Op::Dropout(Dropout::new(kind, 0.2, (i / 7) as u32))
        } else {
            Op::Unary(if i % 3 == 0 {
                UnaryOp::Neg
            } else {
                UnaryOp::Relu
            })
        };
        x = g.add(format!("n{i}"), op, &[x]).unwrap();
    }
    g.add_output("y", x).unwrap();
    g
}

#[test]
fn a_long_chain_matches_the_interpreter_bit_for_bit() {
    let graph = chain();
    let x = Generator::new(5).normal([300], 0.0, 1.0).unwrap();
    let values = BTreeMap::from([("x".to_string(), x)]);
    for mode in [Mode::Train, Mode::Eval] {
        let expected = interp::run(&graph, mode, &mut Generator::new(11), &values).unwrap();
        for threads in [1, 2] {
            let compiled = Compiler::new()
                .mode(mode)
                .threads(threads)
                .compile(&graph)
                .unwrap();
            // Three kernels of at most 256 nodes, as three phases: the cuts are visible.
            assert!(compiled.clif().matches("\nfunction ").count() >= 3);
            let got = compiled
                .run(&mut Generator::new(11), &values, &ParameterStore::new())
                .unwrap();
            let bits = |t: &Tensor| {
                t.as_f32()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                bits(&got[0].1),
                bits(&expected[0].1),
                "{mode:?}, {threads} threads"
            );
        }
    }
}
