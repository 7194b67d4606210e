//! SimpleNet's whole training step (forward, cross-entropy, backward, SGD with momentum) as
//! the committed IR program `ir/simple_net_train_step.ir`, and its compiled plan: no mask
//! buffer, no keep bytes (the vector kernels make mask bits in registers).

use dropjit::models::SimpleNet;
use dropjit::optim::Sgd;
use dropjit::train::Loss;
use dropjit::{Compiler, DType, Generator, Mode, TensorType, nn, text};

fn simple_net_train_step() -> dropjit::train::StepGraph {
    let model = nn::Traced::new(SimpleNet::mnist(&mut Generator::new(0)));
    let opt = Sgd::new(&model, 0.01).unwrap().momentum(0.9).unwrap();
    let (x, targets) = (TensorType::f32([32, 784]), TensorType::i32([32]));
    model
        .train_step_graph(&x, &targets, Loss::CrossEntropy, &opt)
        .unwrap()
}

/// `ir/simple_net_train_step.ir` is the printed step graph (after its leading comment
/// lines), so the glob-based snapshot tests cover it.
#[test]
fn the_ir_program_is_the_printed_training_step() {
    let file = include_str!("../ir/simple_net_train_step.ir");
    let body: String = (file.lines())
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let built = simple_net_train_step();
    let printed = built.graph.to_string();
    assert!(
        body == printed,
        "ir/simple_net_train_step.ir is stale; the builder prints:\n{printed}"
    );
    assert_eq!(text::parse(file).unwrap(), built.graph);
    let entries: Vec<&str> = built.updated.iter().map(|u| u.entry.as_str()).collect();
    assert_eq!(
        entries.len(),
        12,
        "6 parameters and their momentum buffers: {entries:?}"
    );
}

#[test]
fn the_compiled_training_step_saves_no_mask() {
    let compiled = Compiler::new()
        .mode(Mode::Train)
        .compile(&simple_net_train_step().graph)
        .unwrap();
    let graph = compiled.graph();
    for id in graph.node_ids() {
        let node = &graph[id];
        assert!(
            node.op.as_dropout_mask().is_none(),
            "mask node {}",
            node.name
        );
        assert_ne!(node.ty.dtype, DType::Bool, "bool value {}", node.name);
    }
    let memory = compiled.memory();
    let keep: Vec<_> = (memory.buffers.iter())
        .filter(|b| b.keep_bytes_of.is_some())
        .collect();
    // The two dropouts and their two gradients make their mask bits in registers (vector
    // kernels); a scalar fallback's keep bytes would have to live within one kernel.
    assert_eq!(
        keep.len(),
        0,
        "two dropouts and their two gradients draw in registers"
    );
    for buffer in keep {
        let (first, last) = buffer.live.expect("keep bytes live in the arena");
        assert_eq!(first, last, "keep bytes outlive their kernel");
    }
}
