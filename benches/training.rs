//! SimpleNet training, measured: one training step of the seed's SimpleNet (784-256-128-10,
//! two Dropout(0.5), cross-entropy, plain SGD at lr 0.01) and the eval-mode forward, at batch
//! 32 and 256 on 1 and 2 threads (the settings `../shared/peers/bench_jax.py --parts mlp`
//! times), and compiling the training step (tracing, autodiff, the optimizer's update, the
//! passes and Cranelift).
//!
//! `cargo bench --bench training` runs all; `cargo bench --bench training -- step/b32` one.
//! Compare with the peers only in the same session on the same machine (the README's table).

#[allow(dead_code)] // the bit-plane reference is for the dropout bench
mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use dropjit::models::SimpleNet;
use dropjit::nn::Traced;
use dropjit::optim::Sgd;
use dropjit::train::Loss;
use dropjit::{Compiler, Generator, Tensor};

/// The settings (batch, threads), as `../shared/peers/bench_jax.py --parts mlp` times
/// them.
const SETTINGS: [(usize, usize); 4] = [(32, 1), (256, 1), (32, 2), (256, 2)];

/// SimpleNet from seed 0, traced and compiled for `threads`, with a batch of inputs and targets.
fn setup(batch: usize, threads: usize) -> (Traced<SimpleNet>, Generator, Tensor, Tensor) {
    let mut generator = Generator::new(0);
    let net = SimpleNet::mnist(&mut generator);
    let model = Traced::with_compiler(net, Compiler::new().threads(threads));
    let x = generator.normal([batch, 784], 0.0, 1.0).unwrap();
    let y = generator
        .randint([batch], 0, 10)
        .expect("0..10 is not empty");
    (model, generator, x, y)
}

fn step(c: &mut Criterion, batch: usize, threads: usize) {
    let (mut model, mut generator, x, y) = setup(batch, threads);
    let mut opt = Sgd::new(&model, 0.01).expect("lr 0.01 is valid");
    model.train();
    c.bench_function(&format!("step/b{batch}/{threads}t"), |b| {
        b.iter(|| {
            (model.train_step_with(&x, &y, Loss::CrossEntropy, &mut opt, &mut generator))
                .expect("a training step runs")
        })
    });
}

fn steps(c: &mut Criterion) {
    for (batch, threads) in SETTINGS {
        step(c, batch, threads);
    }
}

fn forwards_eval(c: &mut Criterion) {
    for (batch, threads) in SETTINGS {
        forward_eval(c, batch, threads);
    }
}

fn forward_eval(c: &mut Criterion, batch: usize, threads: usize) {
    let (mut model, mut generator, x, _) = setup(batch, threads);
    model.eval();
    c.bench_function(&format!("forward_eval/b{batch}/{threads}t"), |b| {
        b.iter(|| {
            model
                .forward_with(&x, &mut generator)
                .expect("a forward runs")
        })
    });
}

fn compile_step(c: &mut Criterion) {
    c.bench_function("compile_step/b32", |b| {
        b.iter_with_setup(
            || setup(32, 1),
            |(mut model, mut generator, x, y)| {
                let mut opt = Sgd::new(&model, 0.01).expect("lr 0.01 is valid");
                model.train();
                // The first step compiles (the step itself adds about 0.1 ms).
                (model.train_step_with(&x, &y, Loss::CrossEntropy, &mut opt, &mut generator))
                    .expect("a training step runs")
            },
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(50);
    targets = steps, forwards_eval, compile_step
}
/// `criterion_main!`, after the line naming the machine.
fn main() {
    println!("{}", support::machine());
    benches();
    Criterion::default().configure_from_args().final_summary();
}
