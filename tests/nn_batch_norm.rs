//! `nn::BatchNormNd` (`BatchNorm1d/2d/3d`): PyTorch's defaults and display, train and eval
//! mode eagerly and traced, the running statistics and `num_batches_tracked` written back to
//! [`nn::Traced`]'s store by train-mode forwards and training steps (never by eval), kept
//! apart from the trainable parameters, saved and loaded by checkpoints; the compiled path
//! against the eager one and the interpreter.

use std::collections::BTreeMap;

use dropjit::nn::{self, Module, Var, child, relu};
use dropjit::optim::{Optimizer, Sgd};
use dropjit::train::Loss;
use dropjit::{Compiler, Gemm, Generator, Mode, Tensor, interp};

/// A small CNN with a batch norm after its convolution and a dropout after it.
struct Net {
    conv1: nn::ConvNd,
    bn1: nn::BatchNormNd,
    dropout: nn::Dropout2d,
    fc: nn::Linear,
}

impl Net {
    fn new(seed: u64) -> Net {
        let mut g = Generator::new(seed);
        Net {
            conv1: nn::ConvNd::new(1, 3, &[3, 3], &mut g)
                .unwrap()
                .padding(&[1, 1]),
            bn1: nn::BatchNormNd::new2d(3).unwrap(),
            dropout: nn::Dropout2d::new(0.25).unwrap(),
            fc: nn::Linear::new(3 * 4 * 4, 2, &mut g).unwrap(),
        }
    }
}

impl Module for Net {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let x = relu(&self.bn1.forward(&self.conv1.forward(x)?)?)?;
        let x = self.dropout.forward(&x)?;
        let n = x.shape().dims()[0] as i64;
        self.fc.forward(&nn::reshape(&x, &[n, -1])?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("conv1", &self.conv1),
            child("bn1", &self.bn1),
            child("dropout", &self.dropout),
            child("fc", &self.fc),
        ]
    }
}

/// Images offset and scaled, so the batch statistics are far from the running ones.
fn batch(seed: u64) -> Tensor {
    Generator::new(seed).normal([4, 1, 4, 4], 2.0, 3.0).unwrap()
}

/// The values the traced graph reads: `x`, the model's parameters and `buffers` (the running
/// statistics; the counter is no graph input).
fn graph_values<M: Module>(
    model: &nn::Traced<M>,
    x: &Tensor,
    buffers: Vec<(String, Tensor)>,
) -> BTreeMap<String, Tensor> {
    let mut values = BTreeMap::from([("x".to_string(), x.clone())]);
    let parameters = model.parameters().iter();
    values.extend(parameters.map(|(n, t)| (n.to_string(), t.clone())));
    values.extend(buffers.into_iter().filter(|(n, _)| !n.ends_with("tracked")));
    values
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.as_f32().unwrap().to_vec()
}

fn counter(t: &Tensor) -> i32 {
    t.as_i32().unwrap()[0]
}

#[test]
fn the_module_has_pytorchs_defaults_and_display() {
    let bn = nn::BatchNormNd::new2d(16).unwrap();
    assert_eq!(
        bn.to_string(),
        "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    );
    let plain = nn::BatchNormNd::new1d(4)
        .unwrap()
        .without_affine()
        .eps(1e-3)
        .momentum(0.3);
    assert_eq!(
        plain.to_string(),
        "BatchNorm1d(4, eps=0.001, momentum=0.3, affine=False, track_running_stats=True)"
    );
    assert!(plain.named_parameters().is_empty());
    let names: Vec<String> = bn.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias"]);
    assert_eq!(f32s(bn.named_parameters()[0].1), vec![1.0; 16]);
    assert_eq!(f32s(bn.named_parameters()[1].1), vec![0.0; 16]);
    let buffers: Vec<(String, Tensor)> = bn.named_buffers();
    let names: Vec<&str> = buffers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    assert_eq!(f32s(&buffers[0].1), vec![0.0; 16]);
    assert_eq!(f32s(&buffers[1].1), vec![1.0; 16]);
    assert_eq!(counter(&buffers[2].1), 0);
    assert!(nn::BatchNormNd::new(4, 3).is_err());
    let net = Net::new(0);
    assert!(net.display().to_string().contains(
        "(bn1): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    ));
}

#[test]
fn eager_calls_normalize_by_mode_and_update_the_modules_buffers_in_train_mode() {
    let mut bn = nn::BatchNormNd::new1d(2).unwrap();
    let x = Var::new(Tensor::from_f32([2, 2], vec![1.0, 10.0, 3.0, 30.0]).unwrap());
    let y = bn.forward(&x).unwrap();
    let eps = 1e-5f32;
    let s0 = 1.0 / (1.0 + eps).sqrt();
    let got = f32s(y.tensor().unwrap());
    assert!(
        (got[0] + s0).abs() < 1e-6 && (got[2] - s0).abs() < 1e-6,
        "{got:?}"
    );
    assert_eq!(f32s(&bn.buffer("running_mean").unwrap()), [0.2, 2.0]);
    assert_eq!(
        f32s(&bn.buffer("running_var").unwrap()),
        [0.1f32 * 2.0 + 0.9, 0.1f32 * 200.0 + 0.9]
    );
    assert_eq!(counter(&bn.buffer("num_batches_tracked").unwrap()), 1);
    // Eval mode: the running statistics, and nothing changes.
    bn.eval();
    let y = bn.forward(&x).unwrap();
    let (m, v) = (0.2f32, 0.1f32 * 2.0 + 0.9);
    let scale = 1.0 / (v + eps).sqrt();
    assert_eq!(
        f32s(y.tensor().unwrap())[0],
        1.0 * scale + (0.0 - m * scale)
    );
    assert_eq!(counter(&bn.buffer("num_batches_tracked").unwrap()), 1);
    // One value per channel is an error in train mode, naming the module and the shape.
    bn.train();
    let one = Var::new(Tensor::from_f32([1, 2], vec![1.0, 2.0]).unwrap());
    let err = bn.forward(&one).unwrap_err().to_string();
    assert!(
        err.contains("expected more than 1 value per channel when training, got input size [1, 2]"),
        "{err}"
    );
    let image = Var::new(Tensor::from_f32([1, 2, 1, 1], vec![0.0; 2]).unwrap());
    let err = bn.forward(&image).unwrap_err().to_string();
    assert_eq!(
        err,
        "BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True): expected 2D or 3D input (got 4D input)"
    );
    let wrong = Var::new(Tensor::from_f32([2, 3], vec![0.0; 6]).unwrap());
    let err = bn.forward(&wrong).unwrap_err().to_string();
    assert!(err.starts_with("BatchNorm1d(2, eps=1e-05"), "{err}");
    assert!(
        err.contains("running_mean has to be [3], one per channel, but is [2]"),
        "{err}"
    );
}

#[test]
fn traced_train_forwards_write_the_running_statistics_back_and_eval_reads_them() {
    let mut model = nn::Traced::new(Net::new(1));
    let names: Vec<&str> = model.named_parameters().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "bn1.weight",
            "bn1.bias",
            "fc.weight",
            "fc.bias"
        ]
    );
    let buffers: Vec<String> = model.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        buffers,
        [
            "bn1.num_batches_tracked",
            "bn1.running_mean",
            "bn1.running_var"
        ]
    );
    // An optimizer sees the trainable parameters only.
    let opt = Sgd::new(&model, 0.1).unwrap();
    assert!(opt.parameters().iter().all(|p| !p.contains("running")));

    // The traced graph outputs y and the running statistics after it.
    let x = batch(7);
    let graph = model.graph(&x.ty()).unwrap();
    let outputs: Vec<&str> = graph.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        outputs,
        ["y", "bn1.running_mean.next", "bn1.running_var.next"]
    );

    let mut generator = Generator::new(3);
    model.forward_with(&x, &mut generator).unwrap();
    let mean1 = model.buffer("bn1.running_mean").unwrap();
    assert_ne!(f32s(&mean1), vec![0.0; 3]);
    assert_eq!(
        counter(&model.buffer("bn1.num_batches_tracked").unwrap()),
        1
    );
    model.forward_with(&x, &mut generator).unwrap();
    assert_eq!(
        counter(&model.buffer("bn1.num_batches_tracked").unwrap()),
        2
    );
    let mean2 = model.buffer("bn1.running_mean").unwrap();
    // The same batch again: 0.9 * mean1 + 0.1 * batch mean, with mean1 = 0.1 * batch mean.
    assert_ne!(f32s(&mean2), f32s(&mean1));

    // Eval: the running statistics, no update, no generator step.
    model.eval();
    let before = model.named_buffers();
    let step = generator.step();
    let y_eval = model.forward_with(&x, &mut generator).unwrap();
    assert_eq!(generator.step(), step);
    let after = model.named_buffers();
    for ((n, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "{n} changed in eval mode");
    }
    // ... and they are what the eval-mode graph reads: the interpreter on them agrees.
    let graph = model.graph(&x.ty()).unwrap();
    assert_eq!(graph.outputs().len(), 1);
    let values = graph_values(&model, &x, after);
    let expected = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
    let diff = (f32s(&expected[0].1).iter().zip(f32s(&y_eval)))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn the_compiled_forward_equals_the_eager_calls_and_the_interpreter() {
    // Without dropout's randomness: the dropout modules in eval mode, batch norm in train.
    let eager = Net::new(2);
    let traced_net = Net::new(2);
    eager.dropout.set_training(false);
    traced_net.dropout.set_training(false);
    let model = nn::Traced::with_compiler(traced_net, Compiler::new().gemm(Gemm::Reference));
    let x = batch(8);
    for round in 0..3 {
        let want = eager.forward(&Var::new(x.clone())).unwrap();
        let got = model.forward_with(&x, &mut Generator::new(0)).unwrap();
        let diff = (f32s(want.tensor().unwrap()).iter().zip(f32s(&got)))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "round {round}: {diff}");
        // Eager convolutions run on the blocked GEMM, this model's on the reference one:
        // the statistics agree within rounding.
        for name in ["running_mean", "running_var"] {
            let (a, b) = (
                f32s(&eager.bn1.buffer(name).unwrap()),
                f32s(&model.buffer(&format!("bn1.{name}")).unwrap()),
            );
            for (a, b) in a.iter().zip(&b) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "round {round}: {name}"
                );
            }
        }
        assert_eq!(
            counter(&eager.bn1.buffer("num_batches_tracked").unwrap()),
            counter(&model.buffer("bn1.num_batches_tracked").unwrap())
        );
    }
    // The traced graph on the interpreter: the same outputs, bit for bit (reference GEMM).
    let graph = model.graph(&x.ty()).unwrap();
    let values = graph_values(&model, &x, model.named_buffers());
    let expected = interp::run(&graph, Mode::Train, &mut Generator::new(0), &values).unwrap();
    let compiled = model.compile(&x.ty()).unwrap();
    let (inputs, params) = dropjit::ParameterStore::split(&graph, values);
    let got = compiled
        .run(&mut Generator::new(0), &inputs, &params)
        .unwrap();
    for ((name, e), (_, g)) in expected.iter().zip(&got) {
        assert_eq!(e.to_le_bytes(), g.to_le_bytes(), "{name}");
    }
}

#[test]
fn a_training_step_updates_the_running_statistics_as_a_train_forward_does() {
    let x = batch(9);
    let targets = Generator::new(4).randint([4], 0, 2).unwrap();
    let forward_only = nn::Traced::new(Net::new(5));
    forward_only
        .forward_with(&x, &mut Generator::new(6))
        .unwrap();
    let mut model = nn::Traced::new(Net::new(5));
    let mut opt = Sgd::new(&model, 0.1).unwrap().momentum(0.9).unwrap();
    let bn_weight = model.parameter("bn1.weight").unwrap().clone();
    model
        .train_step_with(
            &x,
            &targets,
            Loss::CrossEntropy,
            &mut opt,
            &mut Generator::new(6),
        )
        .unwrap();
    for name in [
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ] {
        assert_eq!(
            model.buffer(name).unwrap().to_le_bytes(),
            forward_only.buffer(name).unwrap().to_le_bytes(),
            "{name}"
        );
    }
    // The affine parameters train; the optimizer keeps no state for the buffers.
    assert_ne!(model.parameter("bn1.weight").unwrap(), &bn_weight);
    assert!(model.parameter("bn1.weight.momentum_buffer").is_some());
    assert!(
        model
            .parameter("bn1.running_mean.momentum_buffer")
            .is_none()
    );
    assert!(model.parameter("bn1.running_mean").is_none());
    model
        .train_step_with(
            &x,
            &targets,
            Loss::CrossEntropy,
            &mut opt,
            &mut Generator::new(7),
        )
        .unwrap();
    assert_eq!(
        counter(&model.buffer("bn1.num_batches_tracked").unwrap()),
        2
    );

    // An eval-mode step normalizes with the running statistics and leaves them alone.
    model.eval();
    let before = model.named_buffers();
    model
        .train_step_with(
            &x,
            &targets,
            Loss::CrossEntropy,
            &mut opt,
            &mut Generator::new(8),
        )
        .unwrap();
    let after = model.named_buffers();
    for ((n, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "{n} changed in eval mode");
    }
}

#[test]
fn checkpoints_keep_the_buffers_under_pytorchs_names() {
    let path = std::env::temp_dir().join(format!(
        "dropjit_{}_batch_norm.safetensors",
        std::process::id()
    ));
    let x = batch(10);
    let targets = Generator::new(4).randint([4], 0, 2).unwrap();
    let mut model = nn::Traced::new(Net::new(11));
    let mut opt = Sgd::new(&model, 0.1).unwrap();
    let mut generator = Generator::new(12);
    for _ in 0..3 {
        model
            .train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt, &mut generator)
            .unwrap();
    }
    model.save_checkpoint(&path, &opt, &generator).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    for name in [
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ] {
        assert!(text.contains(&format!("\"{name}\"")), "{name} not saved");
    }

    let mut loaded = nn::Traced::new(Net::new(99));
    let mut opt2 = Sgd::new(&loaded, 0.1).unwrap();
    let mut resumed = loaded.load_checkpoint(&path, &mut opt2).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        counter(&loaded.buffer("bn1.num_batches_tracked").unwrap()),
        3
    );
    for ((n, a), (_, b)) in model.named_buffers().iter().zip(loaded.named_buffers()) {
        assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "{n}");
    }
    // The runs continue alike.
    let a = model
        .train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt, &mut generator)
        .unwrap();
    let b = loaded
        .train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt2, &mut resumed)
        .unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    for ((n, a), (_, b)) in model.named_buffers().iter().zip(loaded.named_buffers()) {
        assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "{n}");
    }
}

#[test]
fn monte_carlo_predictions_use_the_running_statistics_and_update_nothing() {
    let mut model = nn::Traced::new(Net::new(13));
    let x = batch(14);
    model.forward_with(&x, &mut Generator::new(1)).unwrap();
    let before = model.named_buffers();
    // The model stays in train mode: Monte Carlo mode is eval mode but for dropout.
    let mut generator = Generator::new(15);
    let prediction = model.mc_predict(&x, 4, &mut generator).unwrap();
    assert_eq!(prediction.samples.shape().dims(), [4, 4, 2]);
    let one = model.mc_forward(&x, &mut Generator::new(15)).unwrap();
    let first: Vec<f32> = f32s(&prediction.samples)[..8].to_vec();
    let diff = (first.iter().zip(f32s(&one)))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "{diff}");
    for ((n, a), (_, b)) in before.iter().zip(model.named_buffers()) {
        assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "{n} changed in mc mode");
    }
    model.eval();
    let _ = model.forward_with(&x, &mut Generator::new(1)).unwrap();
}

#[test]
fn a_batch_norm_in_eval_mode_keeps_its_running_statistics_in_a_graph_that_trains() {
    // A frozen batch norm: the model trains (its dropout draws), the batch norm is in eval.
    let net = Net::new(16);
    net.bn1.set_training(false);
    let model = nn::Traced::with_compiler(net, Compiler::new().gemm(Gemm::Reference));
    let x = batch(17);
    let graph = model.graph(&x.ty()).unwrap();
    assert_eq!(
        graph.outputs().len(),
        1,
        "no running statistics are updated"
    );
    let text = graph.to_string();
    assert!(text.contains("= batch_norm %conv1, %bn1.running_mean, %bn1.running_var, %bn1.weight, %bn1.bias {running_stats = true}"), "{text}");
    let before = model.named_buffers();
    let mut generator = Generator::new(18);
    let y = model.forward_with(&x, &mut generator).unwrap();
    assert_eq!(generator.step(), 1, "a train-mode run: the dropout drew");
    for ((n, a), (_, b)) in before.iter().zip(model.named_buffers()) {
        assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "{n} changed");
    }
    // The interpreter in train mode agrees: the running statistics, and the same masks.
    let values = graph_values(&model, &x, before);
    let expected = interp::run(&graph, Mode::Train, &mut Generator::new(18), &values).unwrap();
    assert_eq!(expected[0].1.to_le_bytes(), y.to_le_bytes());
}
