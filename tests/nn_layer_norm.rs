//! `nn::LayerNorm`: PyTorch's defaults and display, its parameters (none without
//! `elementwise_affine`), eager calls against the compiled forward and the interpreter, a
//! training step through it (the weight and bias train), and its typed errors.

use dropjit::nn::{self, Module, Var, child};
use dropjit::optim::Sgd;
use dropjit::train::Loss;
use dropjit::{Compiler, Gemm, Generator, Mode, Tensor, interp};

/// Token features through a linear, a layer norm and a linear head.
struct Net {
    fc: nn::Linear,
    ln: nn::LayerNorm,
    head: nn::Linear,
}

impl Net {
    fn new(seed: u64) -> Net {
        let mut g = Generator::new(seed);
        Net {
            fc: nn::Linear::new(6, 8, &mut g).unwrap(),
            ln: nn::LayerNorm::new(&[8]).unwrap(),
            head: nn::Linear::new(8, 3, &mut g).unwrap(),
        }
    }
}

impl Module for Net {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        self.head.forward(&self.ln.forward(&self.fc.forward(x)?)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("fc", &self.fc),
            child("ln", &self.ln),
            child("head", &self.head),
        ]
    }
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.as_f32().unwrap().to_vec()
}

#[test]
fn the_module_has_pytorchs_defaults_and_display() {
    let ln = nn::LayerNorm::new(&[128]).unwrap();
    assert_eq!(
        ln.to_string(),
        "LayerNorm((128,), eps=1e-05, elementwise_affine=True)"
    );
    assert_eq!(f32s(ln.weight().unwrap()), vec![1.0; 128]);
    assert_eq!(f32s(ln.bias().unwrap()), vec![0.0; 128]);
    let names: Vec<String> = ln.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias"]);
    let plain = nn::LayerNorm::with_options(&[2, 3], 1e-3, false, true).unwrap();
    assert_eq!(
        plain.to_string(),
        "LayerNorm((2, 3), eps=0.001, elementwise_affine=False)"
    );
    assert!(plain.named_parameters().is_empty());
    let no_bias = nn::LayerNorm::with_options(&[4], 1e-5, true, false).unwrap();
    let names: Vec<String> = no_bias
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight"]);
}

#[test]
fn eager_calls_normalize_each_row() {
    let ln = nn::LayerNorm::new(&[5]).unwrap();
    let x = Generator::new(1).normal([3, 5], 4.0, 2.0).unwrap();
    let y = ln.forward(&Var::new(x)).unwrap();
    for row in f32s(y.tensor().unwrap()).chunks(5) {
        let mean = row.iter().sum::<f32>() / 5.0;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 5.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4, "{row:?}");
    }
}

#[test]
fn the_compiled_forward_equals_the_eager_calls_and_the_interpreter() {
    let eager = Net::new(2);
    let model = nn::Traced::with_compiler(Net::new(2), Compiler::new().gemm(Gemm::Reference));
    let x = Generator::new(3).normal([4, 2, 6], 1.0, 3.0).unwrap();
    let want = eager.forward(&Var::new(x.clone())).unwrap();
    let got = model.forward_with(&x, &mut Generator::new(0)).unwrap();
    for (a, b) in f32s(want.tensor().unwrap()).iter().zip(f32s(&got)) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    }
    let graph = model.graph(&x.ty()).unwrap();
    assert!(
        graph
            .to_string()
            .contains("= layer_norm %fc, %ln.weight, %ln.bias {normalized_shape = [8]}")
    );
    let mut values = std::collections::BTreeMap::from([("x".to_string(), x.clone())]);
    values.extend((model.parameters().iter()).map(|(n, t)| (n.to_string(), t.clone())));
    let expected = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
    assert_eq!(expected[0].1.to_le_bytes(), got.to_le_bytes());
}

#[test]
fn a_training_step_trains_the_weight_and_bias() {
    let mut model = nn::Traced::new(Net::new(5));
    let mut opt = Sgd::new(&model, 0.5).unwrap();
    let x = Generator::new(6).normal([5, 6], 0.0, 1.0).unwrap();
    let targets = Generator::new(7).randint([5], 0, 3).unwrap();
    let (weight, bias) = (
        model.parameter("ln.weight").unwrap().clone(),
        model.parameter("ln.bias").unwrap().clone(),
    );
    let mut losses = Vec::new();
    for _ in 0..20 {
        let loss = model
            .train_step_with(
                &x,
                &targets,
                Loss::CrossEntropy,
                &mut opt,
                &mut Generator::new(8),
            )
            .unwrap();
        losses.push(loss);
    }
    assert_ne!(model.parameter("ln.weight").unwrap(), &weight);
    assert_ne!(model.parameter("ln.bias").unwrap(), &bias);
    assert!(losses[19] < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn bad_shapes_are_typed_errors() {
    let error = nn::LayerNorm::new(&[]).err().unwrap().to_string();
    assert!(
        error.contains("normalized_shape has to name at least one dimension"),
        "{error}"
    );
    let ln = nn::LayerNorm::new(&[4]).unwrap();
    let x = Tensor::from_f32([2, 3], vec![0.0; 6]).unwrap();
    let error = ln.forward(&Var::new(x)).err().unwrap().to_string();
    assert!(
        error.contains("given normalized_shape = [4], the input has to be [*, 4], but is [2, 3]"),
        "{error}"
    );
}
