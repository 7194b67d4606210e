//! Every example of the seed page (`torch.nn.Dropout`), nearly verbatim in Rust, printing what
//! the page promises: about half the elements zeroed in train mode, the identity in eval mode,
//! SimpleNet built and run (eagerly and traced into one compiled graph), light (0.2) and heavy
//! (0.7) dropout, and three different masks from three calls. The page's SimpleNet ("dropout
//! in deep network to prevent overfitting") is the library's [`dropjit::models::SimpleNet`].
//!
//! Run with `cargo run --release --example seed_examples`.

use dropjit::models::SimpleNet;
use dropjit::nn::{self, Module};
use dropjit::{Generator, Mode, Tensor};

fn main() -> anyhow::Result<()> {
    dropjit::manual_seed(0);
    basic()?;
    simple_net()?;
    light_and_heavy()?;
    ensemble()?;
    Ok(())
}

/// Basic dropout in fully connected network.
fn basic() -> anyhow::Result<()> {
    println!("== Basic dropout in a fully connected network");
    let mut dropout = nn::Dropout::new(0.5)?;
    let x = dropjit::randn([32, 256])?; // Batch of 256-dim vectors
    // During training
    dropout.train();
    let train_out = dropout.forward(&x)?; // ~50% elements zeroed
    // During inference
    dropout.eval();
    let test_out = dropout.forward(&x)?; // No dropout, returns x
    println!("{dropout}");
    println!(
        "train: share of zeros {:.4} (p = 0.5), kept values doubled: {}",
        train_out.tensor()?.zero_share(),
        kept_values_scaled(x.tensor()?, train_out.tensor()?, 2.0)
    );
    println!("eval: identity: {}", test_out.tensor()? == x.tensor()?);
    Ok(())
}

/// SimpleNet built, run eagerly and traced into one compiled graph.
fn simple_net() -> anyhow::Result<()> {
    println!("\n== Dropout in a deep network (SimpleNet)");
    let model = SimpleNet::mnist(&mut Generator::new(0));
    println!("{}", model.display());
    let x = dropjit::randn([32, 784])?;
    let logits = model.forward(&x)?; // eager: one compiled kernel per layer call
    summary("eager train", logits.tensor()?);

    let mut model = nn::Traced::new(model); // traced: one graph, compiled as a unit
    let logits = model.forward(x.tensor()?)?;
    summary("traced train", &logits);
    let compiled = model.compile(&x.ty())?;
    println!(
        "traced graph ({:?} mode), {} parameters in one shared store; after the passes:",
        compiled.mode(),
        model.parameters().len()
    );
    print!("{}", compiled.graph());
    print!("{}", compiled.schedule().display(compiled.graph()));
    let file = std::env::temp_dir().join("simple_net_traced.ir");
    std::fs::write(&file, model.graph(&x.ty())?.to_string())?;
    println!(
        "(saved; `cargo run --release -- dump {} --stage optimized` shows it)",
        file.display()
    );

    model.eval();
    let traced = model.forward(x.tensor()?)?;
    let eager = model.model().forward(&x)?;
    summary("traced eval", &traced);
    summary("eager eval", eager.tensor()?);
    println!(
        "eval: eager and traced agree bit for bit: {}; compilations: {} (train and eval)",
        &traced == eager.tensor()?,
        model.compilations()
    );
    assert_eq!(model.compile(&x.ty())?.mode(), Mode::Eval);
    Ok(())
}

/// Dropout with lower probability for simpler models.
fn light_and_heavy() -> anyhow::Result<()> {
    println!("\n== Light and heavy dropout");
    let light_dropout = nn::Dropout::new(0.2)?; // Only 20% dropout
    let heavy_dropout = nn::Dropout::new(0.7)?; // Aggressive 70% dropout
    let x = dropjit::randn([32, 256])?;
    for (dropout, scale) in [(&light_dropout, 1.25), (&heavy_dropout, 1.0 / 0.3)] {
        let y = dropout.forward(&x)?;
        println!(
            "{dropout}: share of zeros {:.4}, kept values scaled by {:.4}: {}",
            y.tensor()?.zero_share(),
            scale,
            kept_values_scaled(x.tensor()?, y.tensor()?, scale as f32)
        );
    }
    Ok(())
}

/// Ensemble interpretation: dropout creates model averaging.
fn ensemble() -> anyhow::Result<()> {
    println!("\n== Ensemble interpretation: a different sub-network per call");
    let mut dropout = nn::Dropout::new(0.5)?;
    let x = dropjit::randn([1, 100])?;
    // Each forward pass with different mask ~ different sub-network
    dropout.train();
    let out1 = dropout.forward(&x)?; // Different random mask
    let out2 = dropout.forward(&x)?; // Different random mask
    let out3 = dropout.forward(&x)?; // Different random mask
    // Training averages over these different configurations
    let masks: Vec<String> = [&out1, &out2, &out3]
        .iter()
        .map(|out| mask(out.tensor()))
        .collect::<dropjit::Result<_>>()?;
    for (i, m) in masks.iter().enumerate() {
        println!("mask {}: {m}", i + 1);
    }
    let different = masks[0] != masks[1] && masks[1] != masks[2] && masks[0] != masks[2];
    println!("three different masks: {different}");
    Ok(())
}

/// The keep mask of a dropout output as `1`/`0` characters.
fn mask(out: dropjit::Result<&Tensor>) -> dropjit::Result<String> {
    let out = out?;
    let values = out.as_f32().unwrap_or_default();
    Ok(values
        .iter()
        .map(|&v| if v == 0.0 { '0' } else { '1' })
        .collect())
}

/// True if every element of `y` is `+0.0` or exactly `x * scale`.
fn kept_values_scaled(x: &Tensor, y: &Tensor, scale: f32) -> bool {
    let (Some(x), Some(y)) = (x.as_f32(), y.as_f32()) else {
        return false;
    };
    x.iter()
        .zip(y)
        .all(|(&x, &y)| y.to_bits() == 0 || y == x * scale)
}

fn summary(what: &str, logits: &Tensor) {
    println!(
        "{what}: logits {} mean {:+.5} fingerprint {:016x}",
        logits.ty(),
        logits.mean(),
        logits.fnv1a64()
    );
}
