//! `models::CausalSelfAttention` (nanoGPT's attention from `nn` modules and functional ops):
//! against real PyTorch (`tests/fixtures/attention`, torch 2.15.0: the output within 1e-5,
//! the gradients of the input and of every projection within 1e-4), causal (no position
//! reads a later one), the traced graph on the JIT equal to the interpreter bit for bit on 1
//! and 2 threads, eager calls equal to the compiled forward, and weight tying through
//! `Embedding::attend` in a training step.

mod common;

use std::collections::BTreeMap;

use common::compare::{Agreement, compare};
use common::differential::ONE_TWO_THREE;
use common::fixtures::{self, FixtureCase};
use dropjit::models::CausalSelfAttention;
use dropjit::nn::{self, Module, Var, child};
use dropjit::optim::Sgd;
use dropjit::train::Loss;
use dropjit::{Compiler, Gemm, Generator, Mode, ParameterStore, Tensor, interp};

const LAYERS: [&str; 4] = ["q", "k", "v", "c_proj"];

fn fixture() -> FixtureCase {
    fixtures::read(include_str!("fixtures/attention/forward.txt")).remove(0)
}

fn attention(case: &FixtureCase) -> CausalSelfAttention {
    let layer = |name: &str| {
        nn::Linear::from_parameters(
            case.tensor(&format!("{name}.weight")).clone(),
            case.tensor(&format!("{name}.bias")).clone(),
        )
        .unwrap()
    };
    CausalSelfAttention::from_layers(LAYERS.map(layer), 2, 0.1).unwrap()
}

#[test]
fn the_output_and_every_gradient_match_pytorch_on_both_engines() {
    let case = fixture();
    let mut model =
        nn::Traced::with_compiler(attention(&case), Compiler::new().gemm(Gemm::Reference));
    model.eval();
    let x = case.tensor("x");
    let mut graph = model.graph(&x.ty()).unwrap();
    let y = graph.outputs()[0].node;
    let mut wrt = vec![("x".to_string(), "gx".to_string())];
    for layer in LAYERS {
        for what in ["weight", "bias"] {
            wrt.push((format!("{layer}.{what}"), format!("g{layer}.{what}")));
        }
    }
    let pairs: Vec<(&str, &str)> = wrt.iter().map(|(l, g)| (l.as_str(), g.as_str())).collect();
    fixtures::add_vjp_outputs(&mut graph, y, case.tensor("gy").ty(), &pairs);
    let mut values: BTreeMap<String, Tensor> = BTreeMap::new();
    values.insert("x".into(), x.clone());
    values.insert("gy".into(), case.tensor("gy").clone());
    for (name, t) in model.parameters().iter() {
        values.insert(name.to_string(), t.clone());
    }
    let got: BTreeMap<String, Tensor> =
        interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values)
            .unwrap()
            .into_iter()
            .collect();
    let first_output = graph.outputs()[0].name.clone();
    compare(
        case.tensor("y"),
        &got[&first_output],
        Agreement::Within(1e-5),
    )
    .unwrap();
    for (_, grad) in &wrt {
        compare(case.tensor(grad), &got[grad], Agreement::Within(1e-4))
            .unwrap_or_else(|m| panic!("{grad}: {m}"));
    }
    let (inputs, params) = ParameterStore::split(&graph, values);
    for spread in &ONE_TWO_THREE[..2] {
        let compiled = Compiler::new()
            .mode(Mode::Eval)
            .gemm(Gemm::Reference)
            .threads(spread.threads)
            .compile(&graph)
            .unwrap();
        for (name, t) in compiled
            .run(&mut Generator::new(0), &inputs, &params)
            .unwrap()
        {
            compare(&got[&name], &t, Agreement::Bits)
                .unwrap_or_else(|m| panic!("{name}, {} threads: {m}", spread.threads));
        }
    }
}

#[test]
fn no_position_reads_a_later_one() {
    let case = fixture();
    let mut model = nn::Traced::new(attention(&case));
    model.eval();
    let x = case.tensor("x").clone();
    let base = model.forward_with(&x, &mut Generator::new(0)).unwrap();
    // Change token 3 of every sequence: positions 0..3 keep their outputs exactly.
    let mut changed = x.as_f32().unwrap().to_vec();
    for b in 0..2 {
        for c in 0..8 {
            changed[(b * 5 + 3) * 8 + c] += 10.0;
        }
    }
    let changed = Tensor::from_f32([2, 5, 8], changed).unwrap();
    let after = model
        .forward_with(&changed, &mut Generator::new(0))
        .unwrap();
    let (a, b) = (base.as_f32().unwrap(), after.as_f32().unwrap());
    for seq in 0..2 {
        for t in 0..5 {
            let span = (seq * 5 + t) * 8..(seq * 5 + t + 1) * 8;
            let same = a[span.clone()] == b[span];
            assert_eq!(same, t < 3, "sequence {seq}, position {t}");
        }
    }
}

#[test]
fn eager_calls_equal_the_compiled_forward() {
    let case = fixture();
    let mut eager = attention(&case);
    eager.eval();
    let mut model = nn::Traced::new(attention(&case));
    model.eval();
    let x = case.tensor("x");
    let want = eager.forward(&Var::new(x.clone())).unwrap();
    let got = model.forward_with(x, &mut Generator::new(0)).unwrap();
    compare(want.tensor().unwrap(), &got, Agreement::Within(1e-5)).unwrap();
    compare(case.tensor("y"), &got, Agreement::Within(1e-5)).unwrap();
}

/// A token model whose output layer is its embedding table (`attend`): one parameter, used
/// twice, trained by the sum of both gradients.
struct Tied {
    wte: nn::Embedding,
    attn: CausalSelfAttention,
}

impl Module for Tied {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let h = self.attn.forward(&self.wte.forward(x)?)?;
        nn::reshape(&self.wte.attend(&h)?, &[-1, 7])
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![child("wte", &self.wte), child("attn", &self.attn)]
    }
}

#[test]
fn a_tied_table_is_one_parameter_trained_through_both_uses() {
    let mut g = Generator::new(3);
    let tied = Tied {
        wte: nn::Embedding::new(7, 8, &mut g).unwrap(),
        attn: CausalSelfAttention::new(8, 2, 0.1, &mut g).unwrap(),
    };
    let mut model = nn::Traced::new(tied);
    let names: Vec<String> = model
        .parameters()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("wte")).count(),
        1,
        "{names:?}"
    );
    let tokens = Tensor::from_i32([2, 4], vec![0, 1, 2, 1, 3, 0, 1, 2]).unwrap();
    let targets = Tensor::from_i32([8], vec![1, 2, 1, 3, 0, 1, 2, 0]).unwrap();
    let graph = model.graph(&tokens.ty()).unwrap();
    let printed = graph.to_string();
    // One parameter node for the table, read by the lookup and by the output layer.
    assert_eq!(printed.matches("= parameter").count(), names.len());
    assert_eq!(printed.matches("%wte.weight").count(), 3, "{printed}");
    assert!(printed.contains("= embedding %x, %wte.weight"), "{printed}");
    let before = model.parameter("wte.weight").unwrap().clone();
    let mut opt = Sgd::new(&model, 0.5).unwrap();
    let mut losses = Vec::new();
    for step in 0..25 {
        let loss = model
            .train_step_with(
                &tokens,
                &targets,
                Loss::CrossEntropy,
                &mut opt,
                &mut Generator::new(step),
            )
            .unwrap();
        losses.push(loss);
    }
    assert!(losses[24] < 0.5 * losses[0], "{losses:?}");
    // Rows 4..7 are never looked up: only the tied output layer's gradient moves them.
    let (a, b) = (
        before.as_f32().unwrap(),
        model.parameter("wte.weight").unwrap().as_f32().unwrap(),
    );
    assert_ne!(a[32..56], b[32..56]);
}
