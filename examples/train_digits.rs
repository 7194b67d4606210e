//! A training loop written by hand, the way a PyTorch user would: SimpleNet on the embedded
//! digits, SGD with momentum, train mode for steps and eval mode to measure. `dropjit train`
//! runs the same thing with flags, tables and a plot (the command line's experiment runner,
//! `src/cli/experiment/`).
//!
//! `cargo run --release --example train_digits`

use dropjit::Generator;
use dropjit::data::{self, Batches, CLASSES, FEATURES, Split, epoch_stream};
use dropjit::models::SimpleNet;
use dropjit::nn;
use dropjit::optim;
use dropjit::train::{Loss, metrics};

fn main() -> anyhow::Result<()> {
    let seed = 0;
    let mut generator = Generator::new(seed);
    let digits = data::digits()?;
    let split = Split::stratified(&digits, 300, &mut generator)?;
    let net = SimpleNet::new(FEATURES, [256, 128], CLASSES, 0.5, &mut generator)?;
    println!("{net}");
    let mut model = nn::Traced::new(net);
    let mut opt = optim::Sgd::new(&model, 0.01)?.momentum(0.9)?;
    let (test_x, test_y) = split.test.tensors();
    for epoch in 0..100 {
        model.train();
        for (x, y) in Batches::shuffled(&split.train, 32, epoch_stream(seed, epoch))? {
            model.train_step_with(&x, &y, Loss::CrossEntropy, &mut opt, &mut generator)?;
        }
        if (epoch + 1) % 20 == 0 {
            model.eval();
            let test = metrics(&model.forward_with(&test_x, &mut generator)?, &test_y);
            println!(
                "epoch {:>3}: test loss {:.4}, test accuracy {:.1}%",
                epoch + 1,
                test.loss,
                100.0 * test.accuracy
            );
        }
    }
    Ok(())
}
