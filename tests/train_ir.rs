//! Whole training steps (forward, cross-entropy, backward, SGD with momentum) as committed IR
//! programs: SimpleNet's `ir/simple_net_train_step.ir` and the PyTorch MNIST example
//! network's `ir/mnist_net.ir`, and their compiled plans: no mask buffer, no keep bytes (the
//! vector kernels make mask bits in registers).

use dropjit::models::{MnistNet, SimpleNet};
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

/// The MNIST example network's step at batch 2 (the tests interpret every `ir/` program).
fn mnist_net_train_step() -> dropjit::train::StepGraph {
    let model = nn::Traced::new(MnistNet::new(&mut Generator::new(0)));
    let opt = Sgd::new(&model, 0.01).unwrap().momentum(0.9).unwrap();
    let (x, targets) = (TensorType::f32([2, 1, 28, 28]), TensorType::i32([2]));
    model
        .train_step_graph(&x, &targets, Loss::CrossEntropy, &opt)
        .unwrap()
}

/// `file` is `built`'s printed graph (after its leading comment lines), so the glob-based
/// snapshot tests cover it, with `entries` store entries updated.
fn assert_printed(path: &str, file: &str, built: &dropjit::train::StepGraph, entries: usize) {
    let body: String = (file.lines())
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let printed = built.graph.to_string();
    assert!(
        body == printed,
        "{path} is stale; the builder prints:\n{printed}"
    );
    assert_eq!(text::parse(file).unwrap(), built.graph);
    let updated: Vec<&str> = built.updated.iter().map(|u| u.entry.as_str()).collect();
    assert_eq!(
        updated.len(),
        entries,
        "parameters and their momentum buffers: {updated:?}"
    );
}

#[test]
fn the_ir_programs_are_the_printed_training_steps() {
    let simple_net = include_str!("../ir/simple_net_train_step.ir");
    assert_printed(
        "ir/simple_net_train_step.ir",
        simple_net,
        &simple_net_train_step(),
        12,
    );
    let mnist_net = include_str!("../ir/mnist_net.ir");
    assert_printed("ir/mnist_net.ir", mnist_net, &mnist_net_train_step(), 16);
}

#[test]
fn the_compiled_training_steps_save_no_mask() {
    // SimpleNet's two dropouts and their two gradients make their mask bits in registers
    // (vector kernels); the MNIST network's Dropout2d and its gradient draw one keep byte per
    // channel into scratch that lives within their kernel.
    assert_saves_no_mask(&simple_net_train_step(), 0);
    assert_saves_no_mask(&mnist_net_train_step(), 2);
}

/// No mask node, no bool value, and `keep_scratch` keep-byte buffers, each within one kernel.
fn assert_saves_no_mask(step: &dropjit::train::StepGraph, keep_scratch: usize) {
    let compiled = Compiler::new()
        .mode(Mode::Train)
        .compile(&step.graph)
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
    assert_eq!(
        keep.len(),
        keep_scratch,
        "keep bytes of {}",
        step.graph.name()
    );
    for buffer in keep {
        let (first, last) = buffer.live.expect("keep bytes live in the arena");
        assert_eq!(first, last, "keep bytes outlive their kernel");
    }
}
