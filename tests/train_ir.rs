//! Whole training steps (forward, cross-entropy, backward, SGD with momentum) as committed IR
//! programs: SimpleNet's `ir/simple_net_train_step.ir` and the PyTorch MNIST example
//! network's `ir/mnist_net.ir`, and their compiled plans: no mask buffer, no keep bytes (the
//! vector kernels make mask bits in registers).

use dropjit::models::{Gpt, GptConfig, MnistNet, SimpleNet};
use dropjit::optim::{AdamW, Optimizer, Sgd};
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

/// nanoGPT's character model's step at batch 2 with its optimizer: AdamW in two groups (no
/// decay below rank 2) after clip_grad_norm(1.0).
fn gpt_char_train_step() -> dropjit::train::StepGraph {
    let gpt = Gpt::new(GptConfig::shakespeare_char(65), &mut Generator::new(0)).unwrap();
    let model = nn::Traced::new(gpt);
    let count: usize = (model.parameters().iter())
        .map(|(_, t)| t.shape().numel())
        .sum();
    assert_eq!(count, 809_856);
    let no_decay: Vec<String> = (model.parameters().iter())
        .filter(|(_, t)| t.shape().rank() < 2)
        .map(|(n, _)| n.to_string())
        .collect();
    let mut opt = AdamW::new(&model, 1e-3)
        .unwrap()
        .betas(0.9, 0.99)
        .unwrap()
        .weight_decay(0.1)
        .unwrap()
        .no_weight_decay(&no_decay)
        .unwrap();
    opt.set_max_grad_norm(Some(1.0)).unwrap();
    let (x, targets) = (TensorType::i32([2, 64]), TensorType::i32([128]));
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
    // 68 parameters (the tied table once), each with AdamW's two moments.
    let gpt_char = include_str!("../ir/gpt_char.ir");
    assert_printed("ir/gpt_char.ir", gpt_char, &gpt_char_train_step(), 3 * 68);
}

/// The character GPT's step: no dropout mask anywhere (the attention probabilities' dropout
/// and the residual ones redraw theirs in the backward); its only bool value is the causal
/// mask, a constant.
#[test]
fn the_gpt_step_saves_no_mask() {
    let step = gpt_char_train_step();
    let compiled = Compiler::new()
        .mode(Mode::Train)
        .compile(&step.graph)
        .unwrap();
    let graph = compiled.graph();
    let mut bools = 0;
    for id in graph.node_ids() {
        let node = &graph[id];
        assert!(
            node.op.as_dropout_mask().is_none(),
            "mask node {}",
            node.name
        );
        if node.ty.dtype == DType::Bool {
            assert!(
                matches!(node.op, dropjit::Op::Constant(_)),
                "bool value {}",
                node.name
            );
            bools += 1;
        }
    }
    assert_eq!(bools, 4, "one causal mask per block");
    let memory = compiled.memory();
    for buffer in memory.buffers.iter().filter(|b| b.keep_bytes_of.is_some()) {
        let (first, last) = buffer.live.expect("keep bytes live in the arena");
        assert_eq!(first, last, "keep bytes outlive their kernel");
    }
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
