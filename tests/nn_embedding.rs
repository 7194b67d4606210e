//! `nn::Embedding`: PyTorch's initialisation and display, the padding row (zero, and it stays
//! zero through training), eager calls against the compiled forward, and a training step
//! whose table gradient is a scatter-add.

use dropjit::nn::{self, Module, Var, child};
use dropjit::optim::Sgd;
use dropjit::train::Loss;
use dropjit::{Generator, Tensor};

/// Tokens `[N, 3]` through an embedding table, flattened, and a linear head.
struct Net {
    wte: nn::Embedding,
    head: nn::Linear,
}

impl Net {
    fn new(seed: u64) -> Net {
        let mut g = Generator::new(seed);
        Net {
            wte: nn::Embedding::with_padding(10, 4, -1, &mut g).unwrap(),
            head: nn::Linear::new(12, 3, &mut g).unwrap(),
        }
    }
}

impl Module for Net {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let e = self.wte.forward(x)?;
        let n = e.shape().dims()[0] as i64;
        self.head.forward(&nn::reshape(&e, &[n, -1])?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![child("wte", &self.wte), child("head", &self.head)]
    }
}

fn tokens() -> Tensor {
    Tensor::from_i32([4, 3], vec![1, 9, 3, 0, 9, 2, 5, 5, 9, 7, 8, 1]).unwrap()
}

#[test]
fn the_module_has_pytorchs_defaults_and_display() {
    let net = Net::new(1);
    assert_eq!(net.wte.to_string(), "Embedding(10, 4, padding_idx=9)");
    let plain = nn::Embedding::new(65, 128, &mut Generator::new(2)).unwrap();
    assert_eq!(plain.to_string(), "Embedding(65, 128)");
    let w = plain.weight().as_f32().unwrap();
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / w.len() as f32;
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
        "N(0, 1): {mean} {var}"
    );
    assert!(
        net.wte.weight().as_f32().unwrap()[36..40]
            .iter()
            .all(|&v| v == 0.0)
    );
    let error = nn::Embedding::with_padding(10, 4, 10, &mut Generator::new(3))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("padding_idx has to be within -10..10, but is 10"),
        "{error}"
    );
}

#[test]
fn the_compiled_forward_equals_the_eager_calls() {
    let eager = Net::new(4);
    let model = nn::Traced::new(Net::new(4));
    let want = eager.forward(&Var::new(tokens())).unwrap();
    let got = model
        .forward_with(&tokens(), &mut Generator::new(0))
        .unwrap();
    let (a, b) = (
        want.tensor().unwrap().as_f32().unwrap(),
        got.as_f32().unwrap(),
    );
    for (a, b) in a.iter().zip(b) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    }
    let bad = Tensor::from_i32([1, 3], vec![1, 10, 2]).unwrap();
    let error = model
        .forward_with(&bad, &mut Generator::new(0))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "embedding wte: index 10 at position 1 is outside 0..10"
    );
}

#[test]
fn training_moves_the_rows_it_reads_and_never_the_padding_row() {
    let mut model = nn::Traced::new(Net::new(5));
    let mut opt = Sgd::new(&model, 0.5).unwrap().momentum(0.9).unwrap();
    let targets = Tensor::from_i32([4], vec![0, 1, 2, 1]).unwrap();
    let before = model.parameter("wte.weight").unwrap().clone();
    let mut losses = Vec::new();
    for _ in 0..15 {
        let loss = model
            .train_step_with(
                &tokens(),
                &targets,
                Loss::CrossEntropy,
                &mut opt,
                &mut Generator::new(6),
            )
            .unwrap();
        losses.push(loss);
    }
    assert!(losses[14] < 0.3 * losses[0], "{losses:?}");
    let (before, after) = (
        before.as_f32().unwrap(),
        model
            .parameter("wte.weight")
            .unwrap()
            .as_f32()
            .unwrap()
            .to_vec(),
    );
    for row in 0..10 {
        let moved = before[row * 4..row * 4 + 4] != after[row * 4..row * 4 + 4];
        // Rows 4 and 6 are never read; 9 is the padding row.
        let read = ![4, 6, 9].contains(&row);
        assert_eq!(moved, read, "row {row}");
    }
    assert!(after[36..40].iter().all(|&v| v == 0.0));
}
