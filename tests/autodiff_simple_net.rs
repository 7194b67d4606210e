//! SimpleNet's training graph (`autodiff::gradients` of its cross-entropy loss): gradients
//! against central differences, the JIT against the interpreter, the committed IR program,
//! and the compiled memory plan (no mask buffer).

mod common;

use common::compare::Agreement;
use common::gradcheck::{check_finite_differences, check_jit};
use common::training::{simple_net_grad, simple_net_loss};
use dropjit::Gemm;

#[test]
fn gradients_match_central_differences_in_f64() {
    let graph = simple_net_loss();
    let wrt = [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "fc3.weight",
        "fc3.bias",
    ];
    // f64 throughout, h = 1e-6: truncation error ~1e-12, rounding ~1e-10; a relu kink
    // within h of a sample would show as an O(1) error.
    check_finite_differences(&graph, &wrt, 3, 6, 1e-6).unwrap();
}

#[test]
fn jit_gradients_equal_the_interpreter() {
    let graph = simple_net_grad();
    check_jit(&graph, 5, Gemm::Reference, Agreement::Bits).unwrap();
    // sgemm sums in its own order.
    check_jit(&graph, 5, Gemm::Blocked, Agreement::Within(1e-5)).unwrap();
}

/// `ir/simple_net_grad.ir` is the printed transform (after its leading comment lines), so it
/// round-trips and the glob-based snapshot tests cover SimpleNet's training graph.
#[test]
fn the_ir_program_is_the_printed_transform() {
    let file = include_str!("../ir/simple_net_grad.ir");
    let body: String = (file.lines())
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let printed = simple_net_grad().to_string();
    assert!(
        body == printed,
        "ir/simple_net_grad.ir is stale; the transform prints:\n{printed}"
    );
}

/// The backward recomputes each dropout's mask in its own kernel: the optimized training
/// graph has no mask node, and no buffer holds a bool value or keep bytes beyond the kernel
/// that draws them (nothing is saved from forward to backward).
#[test]
fn the_compiled_training_graph_saves_no_mask() {
    let compiled = dropjit::Compiler::new()
        .mode(dropjit::Mode::Train)
        .compile(&simple_net_grad())
        .unwrap();
    let graph = compiled.graph();
    for id in graph.node_ids() {
        let node = &graph[id];
        assert!(
            node.op.as_dropout_mask().is_none(),
            "mask node {}",
            node.name
        );
        assert_ne!(
            node.ty.dtype,
            dropjit::DType::Bool,
            "bool value {}",
            node.name
        );
    }
    let memory = compiled.memory();
    let mut keep_buffers = 0;
    for buffer in &memory.buffers {
        if let Some(of) = &buffer.keep_bytes_of {
            keep_buffers += 1;
            let (first, last) = buffer.live.expect("keep bytes live in the arena");
            assert_eq!(first, last, "keep bytes of {of} outlive their kernel");
        }
    }
    // Two forward dropouts and their two gradients each make their mask bits in registers, in
    // their own vector kernel: no keep bytes at all (a scalar fallback's would be checked above).
    assert_eq!(keep_buffers, 0);
    let kinds: Vec<&str> = (graph.node_ids())
        .filter_map(|id| graph[id].op.drawn_dropout().map(|_| graph[id].op.name()))
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

/// Forward and backward split across threads (the cross-entropy gradient by rows, the
/// gradients' draws by mask groups) give the bits of one thread.
#[test]
fn two_threads_give_the_bits_of_one() {
    use std::collections::BTreeMap;

    use dropjit::{Compiler, Generator, Mode, ParameterStore, Tensor, init};
    let graph = simple_net_grad();
    let values = init::random_values(&graph, 9).unwrap();
    let (inputs, params): (BTreeMap<String, Tensor>, ParameterStore) =
        ParameterStore::split(&graph, values);
    let run = |threads: usize| {
        let compiled = Compiler::new()
            .mode(Mode::Train)
            .threads(threads)
            .max_chunk_units(1)
            .compile(&graph)
            .unwrap();
        compiled
            .run(&mut Generator::new(9), &inputs, &params)
            .unwrap()
    };
    assert_eq!(run(1), run(2));
}
