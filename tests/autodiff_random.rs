//! Random graphs (tests/common's generator: every op, broadcasting, NaN and infinite
//! constants, every dropout kind): the gradients of `sum(y * w)` for an f32 output `y`, with
//! respect to every f32 input and parameter, compiled and run against the interpreter bit for
//! bit (reference GEMM), in train mode. Graphs the transform refuses (a `selu_grad` or
//! `gelu_grad` on the path to its `x`) and runs the interpreter refuses (an out-of-range target) are skipped,
//! and counted so that the test cannot pass by skipping everything.

mod common;

use common::compare::Agreement;
use common::gradcheck::{check_jit, f32_leaves, weighted_loss};
use common::{random_graph, without_inplace};
use dropjit::{DType, Gemm, Generator, Mode, autodiff, init, interp};

#[test]
fn random_graph_gradients_compile_to_the_interpreters_bits() {
    let (mut checked, mut refused) = (0, 0);
    for seed in 0..400u64 {
        let graph = without_inplace(&random_graph(seed));
        let Some(y) = (graph.outputs().iter())
            .map(|o| o.node)
            .find(|&id| graph[id].ty.dtype == DType::F32)
        else {
            continue;
        };
        let name = graph[y].name.clone();
        let mut graph = weighted_loss(graph, &name);
        let leaves = f32_leaves(&graph);
        let wrt: Vec<_> = leaves.iter().map(|n| graph.lookup(n).unwrap()).collect();
        let loss = graph.lookup("loss").unwrap();
        let grads = match autodiff::gradients(&mut graph, loss, &wrt) {
            Ok(grads) => grads,
            Err(error) => {
                assert!(
                    error
                        .to_string()
                        .contains("no derivative with respect to x"),
                    "seed {seed}: {error}"
                );
                refused += 1;
                continue;
            }
        };
        for grad in grads {
            let name = graph[grad].name.clone();
            if graph.outputs().iter().all(|o| o.name != name) {
                graph.add_output(name, grad).unwrap();
            }
        }
        let values = init::random_values(&graph, seed).unwrap();
        if interp::run(&graph, Mode::Train, &mut Generator::new(seed), &values).is_err() {
            refused += 1;
            continue;
        }
        check_jit(&graph, seed, Gemm::Reference, Agreement::Bits)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        checked += 1;
    }
    assert!(
        checked >= 300,
        "only {checked} graphs checked ({refused} refused)"
    );
}
