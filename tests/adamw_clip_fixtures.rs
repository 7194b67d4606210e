//! nanoGPT's optimizer set-up against real PyTorch: AdamW in two parameter groups (no weight
//! decay below rank 2) with `clip_grad_norm_` before every step, three training steps of a
//! small token model (embedding, layer norm, linear head, cross-entropy), from
//! `tests/fixtures/adamw_clip/steps.txt` (torch 2.15.0, `make_fixtures.py` beside it; the test
//! never needs torch). Every step clips (the gradients' norm is about 0.85 against a
//! `max_norm` of 0.5). Losses and parameters agree within 2e-5 (scaled by `1 + |value|`):
//! PyTorch sums norms and the layer norm's moments in its own order.

mod common;

use common::compare::{Agreement, compare};
use common::fixtures;
use dropjit::nn::{self, Module, Var, child};
use dropjit::optim::{AdamW, Optimizer};
use dropjit::train::Loss;
use dropjit::{Generator, Tensor};

struct Net {
    wte: nn::Embedding,
    ln: nn::LayerNorm,
    head: nn::Linear,
}

impl Module for Net {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let logits = self
            .head
            .forward(&self.ln.forward(&self.wte.forward(x)?)?)?;
        nn::reshape(&logits, &[-1, 11])
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("wte", &self.wte),
            child("ln", &self.ln),
            child("head", &self.head),
        ]
    }
}

#[test]
fn three_clipped_adamw_steps_match_pytorch() {
    let cases = fixtures::read(include_str!("fixtures/adamw_clip/steps.txt"));
    let case = &cases[0];
    let net = Net {
        wte: nn::Embedding::from_weight(case.tensor("init.wte.weight").clone(), None).unwrap(),
        ln: nn::LayerNorm::new(&[8]).unwrap(),
        head: nn::Linear::from_parameters(
            case.tensor("init.head.weight").clone(),
            case.tensor("init.head.bias").clone(),
        )
        .unwrap(),
    };
    let mut model = nn::Traced::new(net);
    let names = [
        "wte.weight",
        "ln.weight",
        "ln.bias",
        "head.weight",
        "head.bias",
    ];
    for name in names {
        compare(
            case.tensor(&format!("init.{name}")),
            model.parameter(name).unwrap(),
            Agreement::Bits,
        )
        .unwrap_or_else(|m| panic!("init {name}: {m}"));
    }
    let mut opt = AdamW::new(&model, 1e-2)
        .unwrap()
        .betas(0.9, 0.99)
        .unwrap()
        .weight_decay(0.1)
        .unwrap()
        .no_weight_decay(&["ln.weight", "ln.bias", "head.bias"])
        .unwrap();
    opt.set_max_grad_norm(Some(0.5)).unwrap();
    assert_eq!(
        opt.describe(),
        "AdamW(lr=0.01, betas=(0.9, 0.99), eps=1e-08, weight_decay=0.1, amsgrad=False, \
         weight_decay=0.0 for [head.bias, ln.bias, ln.weight])"
    );
    let tokens = case.tensor("indices").clone();
    let targets: Vec<i32> = (case.tensor("t").as_f32().unwrap().iter())
        .map(|&t| t as i32)
        .collect();
    let targets = Tensor::from_i32([15], targets).unwrap();
    for k in 1..=3 {
        let loss = model
            .train_step_with(
                &tokens,
                &targets,
                Loss::CrossEntropy,
                &mut opt,
                &mut Generator::new(0),
            )
            .unwrap();
        let want = case.tensor(&format!("loss{k}")).as_f32().unwrap()[0];
        assert!(
            (loss - want).abs() <= 2e-5 * (1.0 + want.abs()),
            "loss {k}: {loss} vs {want}"
        );
        for name in names {
            compare(
                case.tensor(&format!("step{k}.{name}")),
                model.parameter(name).unwrap(),
                Agreement::Within(2e-5),
            )
            .unwrap_or_else(|m| panic!("step {k} {name}: {m}"));
        }
    }
    // Without the groups the decayed parameters move differently: the groups matter.
    assert!(opt.step_structure().contains("no_decay:ln.weight"));
}

/// Clipping only rescales: with a `max_norm` far above the gradients' norm the steps equal
/// unclipped ones bit for bit (the coefficient clamps to exactly 1).
#[test]
fn a_large_max_norm_leaves_the_steps_unchanged() {
    let cases = fixtures::read(include_str!("fixtures/adamw_clip/steps.txt"));
    let case = &cases[0];
    let build = || {
        nn::Traced::new(Net {
            wte: nn::Embedding::from_weight(case.tensor("init.wte.weight").clone(), None).unwrap(),
            ln: nn::LayerNorm::new(&[8]).unwrap(),
            head: nn::Linear::from_parameters(
                case.tensor("init.head.weight").clone(),
                case.tensor("init.head.bias").clone(),
            )
            .unwrap(),
        })
    };
    let tokens = case.tensor("indices").clone();
    let targets = Tensor::from_i32([15], vec![1; 15]).unwrap();
    let (mut plain, mut clipped) = (build(), build());
    let mut opt_plain = AdamW::new(&plain, 1e-2).unwrap();
    let mut opt_clipped = AdamW::new(&clipped, 1e-2).unwrap();
    opt_clipped.set_max_grad_norm(Some(1e6)).unwrap();
    for _ in 0..2 {
        let a = plain
            .train_step_with(
                &tokens,
                &targets,
                Loss::CrossEntropy,
                &mut opt_plain,
                &mut Generator::new(0),
            )
            .unwrap();
        let b = clipped
            .train_step_with(
                &tokens,
                &targets,
                Loss::CrossEntropy,
                &mut opt_clipped,
                &mut Generator::new(0),
            )
            .unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
    }
    for (name, value) in plain.parameters().iter() {
        assert_eq!(value, clipped.parameter(name).unwrap(), "{name}");
    }
    let error = opt_clipped.set_max_grad_norm(Some(-1.0)).unwrap_err();
    assert_eq!(error.to_string(), "Invalid max_norm value: -1.0");
}
