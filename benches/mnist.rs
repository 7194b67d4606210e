//! The PyTorch MNIST example network (`models::MnistNet`: conv 1->32, conv 32->64, max pool,
//! Dropout2d(0.25), Linear 9216->128, Dropout(0.5), Linear 128->10), measured as
//! `../shared/peers/bench_models_*.py` time it: the whole training step (forward,
//! cross-entropy, backward, SGD lr 0.01 momentum 0.9) at batch 64, the eval-mode forward at
//! batch 1000, each on 1 and 2 threads, and compiling the training step.
//!
//! `cargo bench --bench mnist` runs all; `cargo bench --bench mnist -- step/b64/1t` one. It
//! prints the machine, the products' GFLOP per call and the same-run FMA peak first, so a
//! time reads as a share of the peak. Compare with the peers only in the same session on
//! the same machine.

#[allow(dead_code)] // the bit-plane reference is for the dropout bench
mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use dropjit::gemm::peak::fma_peak;
use dropjit::isa::Isa;
use dropjit::models::MnistNet;
use dropjit::nn::Traced;
use dropjit::optim::Sgd;
use dropjit::train::Loss;
use dropjit::{Compiler, Generator, Tensor};

/// Multiply-adds of one image's forward products: conv1 (32 maps of 26 x 26, 9 taps), conv2
/// (64 maps of 24 x 24, 32 x 9 taps), fc1 and fc2.
const FORWARD_MACS: usize = 32 * 676 * 9 + 64 * 576 * 288 + 9216 * 128 + 128 * 10;

/// A training step's: the forward, every input gradient but conv1's (its input is the
/// batch) and every weight gradient, each as many as its forward product.
const STEP_MACS: usize = 3 * FORWARD_MACS - 32 * 676 * 9;

/// The network from seed 0, traced and compiled for `threads`, with a batch of `batch` random
/// images and targets (as the peers draw theirs: standard normal pixels, classes uniform).
fn setup(batch: usize, threads: usize) -> (Traced<MnistNet>, Generator, Tensor, Tensor) {
    let mut generator = Generator::new(0);
    let net = MnistNet::new(&mut generator);
    let model = Traced::with_compiler(net, Compiler::new().threads(threads));
    let x = generator.normal([batch, 1, 28, 28], 0.0, 1.0).unwrap();
    let y = generator
        .randint([batch], 0, 10)
        .expect("0..10 is not empty");
    (model, generator, x, y)
}

fn steps(c: &mut Criterion) {
    for threads in [1, 2] {
        let (mut model, mut generator, x, y) = setup(64, threads);
        let sgd = Sgd::new(&model, 0.01).expect("lr 0.01 is valid");
        let mut opt = sgd.momentum(0.9).expect("momentum 0.9 is valid");
        model.train();
        c.bench_function(&format!("step/b64/{threads}t"), |b| {
            b.iter(|| {
                (model.train_step_with(&x, &y, Loss::CrossEntropy, &mut opt, &mut generator))
                    .expect("a training step runs")
            })
        });
    }
}

fn forwards_eval(c: &mut Criterion) {
    for threads in [1, 2] {
        let (mut model, mut generator, x, _) = setup(1000, threads);
        model.eval();
        c.bench_function(&format!("forward_eval/b1000/{threads}t"), |b| {
            b.iter(|| {
                model
                    .forward_with(&x, &mut generator)
                    .expect("a forward runs")
            })
        });
    }
}

fn compile_step(c: &mut Criterion) {
    c.bench_function("compile_step/b64", |b| {
        b.iter_with_setup(
            || setup(64, 1),
            |(mut model, mut generator, x, y)| {
                let sgd = Sgd::new(&model, 0.01).expect("lr 0.01 is valid");
                let mut opt = sgd.momentum(0.9).expect("momentum 0.9 is valid");
                model.train();
                // The first step compiles (the step itself adds about 0.1 of it).
                (model.train_step_with(&x, &y, Loss::CrossEntropy, &mut opt, &mut generator))
                    .expect("a training step runs")
            },
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(8)).sample_size(20);
    targets = steps, forwards_eval, compile_step
}

/// `criterion_main!`, after the machine, the work per call and the FMA peak.
fn main() {
    println!("{}", support::machine());
    let isa = Isa::best();
    println!(
        "products: {:.3} GFLOP per training step at batch 64, {:.3} per eval forward at batch 1000",
        (2 * STEP_MACS * 64) as f64 / 1e9,
        (2 * FORWARD_MACS * 1000) as f64 / 1e9,
    );
    println!(
        "FMA peak ({}): {:.1} GFLOP/s on 1 thread, {:.1} on 2",
        isa.name(),
        fma_peak(isa, 1, 5),
        fma_peak(isa, 2, 5)
    );
    benches();
    Criterion::default().configure_from_args().final_summary();
}
