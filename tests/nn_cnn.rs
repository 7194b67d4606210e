//! The CNN building blocks as modules (`nn::ConvNd`, `nn::PoolNd`, `nn::AdaptiveAvgPool`,
//! `nn::Flatten`) and `models::DigitsCnn`: PyTorch-style display, eager calls equal to the
//! traced graph, a compiled training step that learns the embedded digits, Dropout2d's
//! channel masks in its backward, and Monte Carlo dropout through the convolutions.

use std::collections::BTreeMap;

use dropjit::models::DigitsCnn;
use dropjit::nn::{self, Module, Traced, Var, trace, trace_mc};
use dropjit::optim::Sgd;
use dropjit::train::Loss;
use dropjit::{Compiler, Gemm, Generator, Mode, Tensor, data, interp};

fn digits(n: usize) -> (Tensor, Tensor) {
    let set = data::digits().unwrap();
    let indices: Vec<usize> = (0..n).collect();
    set.select(&indices).tensors()
}

#[test]
fn the_model_displays_like_pytorch() {
    let model = DigitsCnn::digits(0.25, &mut Generator::new(0)).unwrap();
    assert_eq!(
        model.to_string(),
        "DigitsCnn(\n  (conv1): Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n  (conv2): Conv2d(16, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n  (pool): MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0], dilation=[1, 1], ceil_mode=false)\n  (dropout): Dropout2d(p=0.25, inplace=false)\n  (flatten): Flatten(start_dim=1, end_dim=-1)\n  (fc): Linear(in_features=512, out_features=10, bias=true)\n)"
    );
    let params: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        params,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc.weight",
            "fc.bias"
        ]
    );
    // PyTorch's default bound: 1 / sqrt(fan_in), fan_in = 16 * 3 * 3 for conv2.
    let bound = 1.0 / (144f32).sqrt();
    let w = model.conv2.weight().as_f32().unwrap();
    assert!(w.iter().all(|v| v.abs() <= bound) && w.iter().any(|v| v.abs() > 0.9 * bound));
}

#[test]
fn eager_calls_equal_the_traced_graph() {
    let mut model = DigitsCnn::digits(0.5, &mut Generator::new(1)).unwrap();
    model.dropout = nn::Dropout2d::new(0.5).unwrap();
    let (x, _) = digits(4);
    // Eval mode: no dropout node; eager and traced give the same bits.
    let mut traced = Traced::new(model);
    traced.eval();
    let eager = traced
        .model()
        .forward(&Var::new(x.clone()))
        .unwrap()
        .into_tensor()
        .unwrap();
    let compiled = traced.forward_with(&x, &mut Generator::new(0)).unwrap();
    assert_eq!(eager, compiled);
    let graph = traced.graph(&x.ty()).unwrap();
    let ops: Vec<&str> = graph.node_ids().map(|id| graph[id].op.name()).collect();
    for op in ["conv2d", "max_pool2d", "linear", "reshape"] {
        assert!(ops.contains(&op), "{op} in {ops:?}");
    }
    assert!(!ops.contains(&"dropout2d"), "eval mode traces no dropout");
    let mc = trace_mc(traced.model(), &x.ty()).unwrap();
    assert!(mc.node_ids().any(|id| mc[id].op.name() == "dropout2d"));
    let train_graph = {
        traced.train();
        trace(traced.model(), &x.ty()).unwrap()
    };
    assert!(
        train_graph
            .node_ids()
            .any(|id| train_graph[id].op.name() == "dropout2d")
    );
}

#[test]
fn a_compiled_training_step_learns_the_digits() {
    // A few samples and steps: the direct convolution loops are slow (the im2col GEMM is the
    // CNN work's next step).
    let (x, y) = digits(24);
    let model = DigitsCnn::digits(0.25, &mut Generator::new(2)).unwrap();
    let mut model = Traced::new(model);
    let mut opt = Sgd::new(&model, 0.05).unwrap().momentum(0.9).unwrap();
    let mut generator = Generator::new(3);
    let first = model
        .train_step_with(&x, &y, Loss::CrossEntropy, &mut opt, &mut generator)
        .unwrap();
    let mut last = first;
    for _ in 0..20 {
        last = model
            .train_step_with(&x, &y, Loss::CrossEntropy, &mut opt, &mut generator)
            .unwrap();
    }
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert_eq!(generator.step(), 21, "one step per training step");
}

#[test]
fn the_step_matches_the_interpreter_bit_for_bit() {
    // The whole training step's graph (forward, Dropout2d's channel masks, the convolutions'
    // and pool's gradients, SGD) on both engines with the reference GEMM.
    let (x, y) = digits(8);
    let model = Traced::new(DigitsCnn::digits(0.5, &mut Generator::new(4)).unwrap());
    let opt = Sgd::new(&model, 0.1).unwrap();
    let step = model
        .train_step_graph(&x.ty(), &y.ty(), Loss::CrossEntropy, &opt)
        .unwrap();
    let graph = step.graph.clone();
    let mut values: BTreeMap<String, Tensor> = BTreeMap::new();
    for id in graph.inputs().into_iter().chain(graph.parameters()) {
        let node = &graph[id];
        let value = match node.name.as_str() {
            "x" => x.clone(),
            "targets" => y.clone(),
            name => model
                .parameter(name)
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(&node.ty).unwrap()),
        };
        values.insert(node.name.clone(), value);
    }
    let expected = interp::run(&graph, Mode::Train, &mut Generator::new(5), &values).unwrap();
    let compiled = Compiler::new()
        .mode(Mode::Train)
        .gemm(Gemm::Reference)
        .compile(&graph)
        .unwrap();
    let (inputs, params) = dropjit::ParameterStore::split(&graph, values);
    let got = compiled
        .run(&mut Generator::new(5), &inputs, &params)
        .unwrap();
    assert_eq!(expected, got);
}

#[test]
fn monte_carlo_dropout_runs_through_the_convolutions() {
    let (x, _) = digits(5);
    let mut model = Traced::new(DigitsCnn::digits(0.5, &mut Generator::new(6)).unwrap());
    model.eval();
    let mut generator = Generator::new(7).with_step(10);
    let prediction = model.mc_predict(&x, 4, &mut generator).unwrap();
    assert_eq!(prediction.samples.shape().dims(), [4, 5, 10]);
    assert_eq!(generator.step(), 14);
    let samples = prediction.samples.as_f32().unwrap();
    for s in 0..4 {
        let mut at_step = Generator::new(7).with_step(10 + s as u32);
        let single = model.mc_forward(&x, &mut at_step).unwrap();
        assert_eq!(
            &samples[s * 50..(s + 1) * 50],
            single.as_f32().unwrap(),
            "sample {s}"
        );
    }
    assert_ne!(
        samples[..50],
        samples[50..100],
        "samples draw different channel masks"
    );
}
