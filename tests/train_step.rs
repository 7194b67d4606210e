//! The compiled training step on both engines: the JIT's step equals the interpreter's run of
//! the same step graph, losses fall on small problems, backward's masks are the forward's,
//! one generator step per run, batch sizes, and typed errors.

use std::collections::BTreeMap;

use dropjit::nn;
use dropjit::optim::{self, Adam, Optimizer, Sgd};
use dropjit::rng::mask::{MaskSource, keep_mask};
use dropjit::train::Loss;
use dropjit::{Compiler, Error, Gemm, Generator, Mode, Tensor, interp};

/// Linear(inputs, hidden), ReLU, Dropout(p), Linear(hidden, classes); parameters `0.weight`,
/// `0.bias`, `3.weight`, `3.bias`.
fn mlp(inputs: usize, hidden: usize, classes: usize, p: f64, seed: u64) -> nn::Sequential {
    let mut g = Generator::new(seed);
    nn::Sequential::new(vec![
        Box::new(nn::Linear::new(inputs, hidden, &mut g).unwrap()),
        Box::new(nn::ReLU),
        Box::new(nn::Dropout::new(p).expect("valid p")),
        Box::new(nn::Linear::new(hidden, classes, &mut g).unwrap()),
    ])
}

/// `n` points in `classes` well separated blobs in 4-D, with their classes.
fn blobs(n: usize, classes: usize, seed: u64) -> (Tensor, Tensor) {
    let mut g = Generator::new(seed);
    let noise = g.normal([n, 4], 0.0, 0.5).unwrap();
    let labels: Vec<i32> = (0..n).map(|i| (i % classes) as i32).collect();
    let mut x = noise.as_f32().unwrap().to_vec();
    for (i, &c) in labels.iter().enumerate() {
        x[i * 4 + c as usize] += 3.0;
    }
    (
        Tensor::from_f32([n, 4], x).unwrap(),
        Tensor::from_i32([n], labels).unwrap(),
    )
}

fn rows(t: &Tensor, range: std::ops::Range<usize>) -> Tensor {
    let width: usize = t.shape().dims()[1..].iter().product();
    let dims: Vec<usize> = std::iter::once(range.len())
        .chain(t.shape().dims()[1..].iter().copied())
        .collect();
    match t.as_f32() {
        Some(v) => Tensor::from_f32(dims, v[range.start * width..range.end * width].to_vec()),
        None => Tensor::from_i32(
            dims,
            t.as_i32().unwrap()[range.start * width..range.end * width].to_vec(),
        ),
    }
    .unwrap()
}

#[test]
fn jit_step_equals_the_interpreters_run_of_the_step_graph() {
    for gemm in [Gemm::Reference, Gemm::Blocked] {
        let compiler = Compiler::new().gemm(gemm).verify(true);
        let mut model = nn::Traced::with_compiler(mlp(12, 16, 4, 0.5, 1), compiler);
        let mut opt = Adam::new(&model, 0.01)
            .unwrap()
            .amsgrad(true)
            .weight_decay(0.1)
            .unwrap();
        let (x, targets) = {
            let mut g = Generator::new(2);
            (
                g.normal([8, 12], 0.0, 1.0).unwrap(),
                g.randint([8], 0, 4).unwrap(),
            )
        };
        // Two steps, so the second starts from nonzero optimizer state.
        for step in 0..2u32 {
            let built = model
                .train_step_graph(&x.ty(), &targets.ty(), Loss::CrossEntropy, &opt)
                .unwrap();
            assert_eq!(
                built.updated.len(),
                4 * 4,
                "4 parameters, each with 3 state entries"
            );
            let mut values: BTreeMap<String, Tensor> = BTreeMap::from([
                ("x".to_string(), x.clone()),
                ("targets".to_string(), targets.clone()),
            ]);
            values.extend(optim::scalar_inputs(&opt));
            for update in &built.updated {
                // Optimizer state is zeros before the first step (a parameter node of the graph).
                let node = built.graph.lookup(&update.entry).unwrap();
                let value = (model.parameter(&update.entry).cloned())
                    .unwrap_or_else(|| Tensor::zeros(&built.graph[node].ty).unwrap());
                values.insert(update.entry.clone(), value);
            }
            let mut g = Generator::new(9).with_step(step);
            let expected = interp::run(&built.graph, Mode::Train, &mut g, &values).unwrap();
            let mut g = Generator::new(9).with_step(step);
            let loss = model
                .train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt, &mut g)
                .unwrap();
            assert_eq!(g.step(), u64::from(step) + 1, "one generator step per run");
            let tolerance = if gemm == Gemm::Reference { 0.0 } else { 1e-5 };
            assert_eq!(expected[0].0, "loss");
            let want = expected[0].1.as_f32().unwrap()[0];
            assert!(
                (loss - want).abs() <= tolerance * want.abs(),
                "loss {loss} vs {want}"
            );
            for (update, (name, want)) in built.updated.iter().zip(&expected[1..]) {
                assert_eq!(&update.output, name);
                let got = model.parameter(&update.entry).unwrap();
                for (a, b) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()) {
                    assert!(
                        (a - b).abs() <= tolerance * (1.0 + b.abs()),
                        "{gemm:?} step {step} {}: {a} vs {b}",
                        update.entry
                    );
                }
            }
        }
        assert_eq!(opt.steps(), 2);
    }
}

#[test]
fn backward_drops_exactly_the_units_the_forward_dropped() {
    let mut model = nn::Traced::new(mlp(6, 64, 3, 0.5, 3));
    let mut opt = Sgd::new(&model, 0.1).unwrap();
    let x = Generator::new(4).normal([1, 6], 0.0, 1.0).unwrap();
    let targets = Tensor::from_i32([1], vec![2]).unwrap();
    let before: BTreeMap<String, Tensor> = (model.named_parameters().into_iter())
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    let mut generator = Generator::new(5).with_step(3);
    model
        .train_step_with(&x, &targets, Loss::CrossEntropy, &mut opt, &mut generator)
        .unwrap();
    assert_eq!(generator.step(), 4, "the step claims one generator step");
    // The forward's mask: the traced model's one dropout draws stream 0 at the step.
    let keep = keep_mask(
        MaskSource {
            seed: 5,
            stream: 0,
            step: 3,
        },
        0.5,
        64,
    );
    let changed = |name: &str, index: usize| {
        model.parameter(name).unwrap().as_f32().unwrap()[index].to_bits()
            != before[name].as_f32().unwrap()[index].to_bits()
    };
    let mut kept_and_changed = 0;
    for (j, &kept) in keep.iter().enumerate() {
        let row_changed = (0..6).any(|i| changed("0.weight", j * 6 + i)) || changed("0.bias", j);
        let column_changed = (0..3).any(|c| changed("3.weight", c * 64 + j));
        if kept {
            // Kept: both sides see the unit, or neither (ReLU gave 0).
            assert_eq!(row_changed, column_changed, "unit {j}");
            kept_and_changed += usize::from(row_changed);
        } else {
            assert!(
                !row_changed && !column_changed,
                "unit {j} was dropped in the forward"
            );
        }
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    assert!(
        dropped > 10 && kept_and_changed > 5,
        "{dropped} dropped, {kept_and_changed} kept"
    );
}

/// Builds an optimizer for a model.
type MakeOptimizer = Box<dyn Fn(&nn::Traced<nn::Sequential>) -> Box<dyn Optimizer>>;

#[test]
fn losses_fall_on_a_separable_problem() {
    let (x, targets) = blobs(64, 3, 6);
    let optimizers: Vec<MakeOptimizer> = vec![
        Box::new(|m| Box::new(Sgd::new(m, 0.05).unwrap().momentum(0.9).unwrap())),
        Box::new(|m| Box::new(Sgd::new(m, 0.1).unwrap())),
        Box::new(|m| Box::new(Adam::new(m, 0.01).unwrap())),
        Box::new(|m| Box::new(optim::AdamW::new(m, 0.01).unwrap())),
    ];
    for make in &optimizers {
        let mut model = nn::Traced::new(mlp(4, 32, 3, 0.2, 7));
        let mut opt = make(&model);
        let mut generator = Generator::new(8);
        model.train();
        let mut epoch_losses = Vec::new();
        for _ in 0..8 {
            let mut total = 0.0;
            for b in 0..4 {
                let (xb, tb) = (
                    rows(&x, b * 16..b * 16 + 16),
                    rows(&targets, b * 16..b * 16 + 16),
                );
                total += model
                    .train_step_with(&xb, &tb, Loss::CrossEntropy, opt.as_mut(), &mut generator)
                    .unwrap();
            }
            epoch_losses.push(total / 4.0);
        }
        let (first, last) = (epoch_losses[0], epoch_losses[7]);
        assert!(last < 0.5 * first, "{}: {epoch_losses:?}", opt.describe());
        model.eval();
        let logits = model.forward(&x).unwrap();
        let logits = logits.as_f32().unwrap();
        let correct = (0..64)
            .filter(|&i| {
                let row = &logits[i * 3..i * 3 + 3];
                let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                best as i32 == targets.as_i32().unwrap()[i]
            })
            .count();
        assert!(correct >= 60, "{}: {correct}/64 correct", opt.describe());
    }
}

#[test]
fn mse_regression_converges() {
    let mut g = Generator::new(10);
    let x = g.normal([32, 4], 0.0, 1.0).unwrap();
    let w = [0.5f32, -1.0, 2.0, 0.25];
    let y: Vec<f32> = (0..32)
        .map(|i| {
            (0..4)
                .map(|k| x.as_f32().unwrap()[i * 4 + k] * w[k])
                .sum::<f32>()
                + 0.1
        })
        .collect();
    let y = Tensor::from_f32([32, 1], y).unwrap();
    let mut model = nn::Traced::new(nn::Sequential::new(vec![Box::new(
        nn::Linear::new(4, 1, &mut g).unwrap(),
    )]));
    let mut opt = Adam::new(&model, 0.05).unwrap();
    let first = model
        .train_step_with(&x, &y, Loss::Mse, &mut opt, &mut g)
        .unwrap();
    let mut last = first;
    for _ in 0..150 {
        last = model
            .train_step_with(&x, &y, Loss::Mse, &mut opt, &mut g)
            .unwrap();
    }
    assert!(last < 1e-3 * first, "mse {first} -> {last}");
}

#[test]
fn partial_batches_and_whole_split_evaluation_compile_once_each() {
    let (x, targets) = blobs(50, 3, 11);
    let mut model = nn::Traced::new(mlp(4, 16, 3, 0.5, 12));
    let mut opt = Sgd::new(&model, 0.05).unwrap().momentum(0.9).unwrap();
    let mut generator = Generator::new(13);
    for epoch in 0..2 {
        model.train();
        for start in (0..50).step_by(16) {
            let range = start..(start + 16).min(50); // 16, 16, 16, then 2
            let (xb, tb) = (rows(&x, range.clone()), rows(&targets, range));
            model
                .train_step_with(&xb, &tb, Loss::CrossEntropy, &mut opt, &mut generator)
                .unwrap();
        }
        model.eval();
        let logits = model.forward(&x).unwrap(); // the whole split at once
        assert_eq!(logits.shape().dims(), [50, 3]);
        // Batch sizes 16 and 2 for training, 50 for evaluation: three compilations, made
        // in the first epoch and reused in the second.
        assert_eq!(model.compilations(), 3, "epoch {epoch}");
    }
    assert_eq!(opt.steps(), 8);
    assert_eq!(generator.step(), 8);
}

#[test]
fn targets_that_do_not_fit_are_typed_errors_and_change_nothing() {
    let mut model = nn::Traced::new(mlp(4, 8, 3, 0.5, 14));
    let mut opt = Sgd::new(&model, 0.1).unwrap().momentum(0.5).unwrap();
    let mut g = Generator::new(15);
    let x = g.normal([4, 4], 0.0, 1.0).unwrap();
    let before = model.parameter("0.weight").unwrap().clone();

    let float_targets = Tensor::from_f32([4], vec![0.0; 4]).unwrap();
    let err = model.train_step_with(&x, &float_targets, Loss::CrossEntropy, &mut opt, &mut g);
    assert_eq!(
        err.unwrap_err().to_string(),
        "cross_entropy loss: operand 1 has to be i32, but is f32"
    );
    let short = Tensor::from_i32([3], vec![0; 3]).unwrap();
    let err = model.train_step_with(&x, &short, Loss::CrossEntropy, &mut opt, &mut g);
    assert!(
        matches!(err, Err(Error::Type { ref node, .. }) if node == "loss"),
        "{err:?}"
    );
    let wide = Tensor::from_f32([4, 5], vec![0.0; 20]).unwrap();
    let err = model.train_step_with(&x, &wide, Loss::Mse, &mut opt, &mut g);
    assert!(matches!(err, Err(Error::Type { .. })), "{err:?}");
    let out_of_range = Tensor::from_i32([4], vec![0, 1, 3, 2]).unwrap();
    let err = model.train_step_with(&x, &out_of_range, Loss::CrossEntropy, &mut opt, &mut g);
    assert!(
        matches!(
            err,
            Err(Error::TargetOutOfRange {
                target: 3,
                index: 2,
                ..
            })
        ),
        "{err:?}"
    );
    let wrong_input = g.normal([4, 5], 0.0, 1.0).unwrap();
    let ok_targets = Tensor::from_i32([4], vec![0, 1, 2, 0]).unwrap();
    let err = model.train_step_with(
        &wrong_input,
        &ok_targets,
        Loss::CrossEntropy,
        &mut opt,
        &mut g,
    );
    assert!(matches!(err, Err(Error::Type { .. })), "{err:?}");

    assert_eq!(model.parameter("0.weight").unwrap(), &before);
    assert_eq!(opt.steps(), 0);
    model
        .train_step_with(&x, &ok_targets, Loss::CrossEntropy, &mut opt, &mut g)
        .unwrap();
    assert_ne!(model.parameter("0.weight").unwrap(), &before);
    assert_eq!(opt.steps(), 1);
}
