//! Optimizer updates against torch.optim's single-tensor formulas: the fixtures in
//! `tests/fixtures/optim/updates.txt` come from `make_fixtures.py` beside them (a literal
//! transcription of `_single_tensor_sgd` and `_single_tensor_adam`, every op rounded to
//! float32). Each case runs four steps with the gradients fed as graph inputs, on the JIT and
//! on the interpreter (the same update graph).
//!
//! Tolerance: none. Both sides round every op once to f32 in the same order, so every value
//! after every step is equal as an f32 (`==`, so the first momentum buffer's `+0.0` for a
//! `-0.0` gradient would pass; see `Sgd`). PyTorch's own vectorized kernels may contract
//! `a + alpha * b` into an FMA and differ from both in the last bit.

use std::collections::BTreeMap;
use std::sync::Arc;

use dropjit::optim::{self, Adam, AdamW, Optimizer, Sgd};
use dropjit::train::CompiledStep;
use dropjit::{Compiler, Generator, Graph, Mode, Op, ParameterStore, Tensor, TensorType, interp};

struct Case {
    name: String,
    optimizer: String,
    config: BTreeMap<String, f64>,
    init: Vec<f32>,
    grads: Vec<Vec<f32>>,
    /// (step, entry) -> expected values after that step.
    after: BTreeMap<(usize, String), Vec<f32>>,
}

fn floats(words: &[&str]) -> Vec<f32> {
    (words.iter())
        .map(|w| f32::from_bits(u32::from_str_radix(w, 16).expect("hex bits")))
        .collect()
}

fn cases() -> Vec<Case> {
    let text = include_str!("fixtures/optim/updates.txt");
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "case" => cases.push(Case {
                name: words[1].to_string(),
                optimizer: words[2].to_string(),
                config: (words[3..].iter())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("key=value");
                        (k.to_string(), v.parse().expect("number"))
                    })
                    .collect(),
                init: Vec::new(),
                grads: Vec::new(),
                after: BTreeMap::new(),
            }),
            "init" => cases.last_mut().expect("a case").init = floats(&words[2..]),
            "grad" => cases
                .last_mut()
                .expect("a case")
                .grads
                .push(floats(&words[2..])),
            "after" => {
                let step: usize = words[1].parse().expect("step");
                let case = cases.last_mut().expect("a case");
                case.after
                    .insert((step, words[2].to_string()), floats(&words[3..]));
            }
            other => panic!("unknown fixture line {other}"),
        }
    }
    cases
}

fn optimizer(case: &Case) -> Box<dyn Optimizer> {
    let c = |k: &str| case.config[k];
    let names = ["w".to_string()];
    match case.optimizer.as_str() {
        "sgd" => Box::new(
            Sgd::new(&names[..], c("lr"))
                .and_then(|o| o.momentum(c("momentum")))
                .and_then(|o| o.dampening(c("dampening")))
                .and_then(|o| o.nesterov(c("nesterov") != 0.0))
                .and_then(|o| o.weight_decay(c("weight_decay")))
                .expect("valid sgd"),
        ),
        kind @ ("adam" | "adamw") => {
            let base = if kind == "adam" {
                Adam::new(&names[..], c("lr"))
            } else {
                AdamW::new(&names[..], c("lr"))
            };
            Box::new(
                base.and_then(|o| o.betas(c("beta1"), c("beta2")))
                    .and_then(|o| o.eps(c("eps")))
                    .and_then(|o| o.weight_decay(c("weight_decay")))
                    .map(|o| o.amsgrad(c("amsgrad") != 0.0))
                    .expect("valid adam"),
            )
        }
        other => panic!("unknown optimizer {other}"),
    }
}

/// `w` and its gradient as an input, and the optimizer's update.
fn update_graph(optimizer: &dyn Optimizer, n: usize) -> (Graph, Vec<optim::Updated>) {
    let mut graph = Graph::new("update");
    let w = graph
        .add("w", Op::Parameter(TensorType::f32([n])), &[])
        .unwrap();
    let g = graph
        .add("w.grad", Op::Input(TensorType::f32([n])), &[])
        .unwrap();
    let updated = optim::add_updates(&mut graph, optimizer, &[(w, g)]).unwrap();
    (graph, updated)
}

fn check(case: &Case, step: usize, entry: &str, got: &Tensor, engine: &str) {
    let want = &case.after[&(step, entry.to_string())];
    let got = got.as_f32().expect("f32");
    assert_eq!(got.len(), want.len(), "{}: {entry} length", case.name);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "{} ({engine}) step {step} {entry}[{i}]: got {g:e} ({:08x}), torch.optim formula {w:e} ({:08x})",
            case.name,
            g.to_bits(),
            w.to_bits()
        );
    }
}

#[test]
fn jit_updates_match_the_torch_optim_formulas() {
    let cases = cases();
    assert_eq!(cases.len(), 11);
    for case in &cases {
        let mut opt = optimizer(case);
        let n = case.init.len();
        let (graph, updated) = update_graph(opt.as_ref(), n);
        let compiled = Compiler::new()
            .mode(Mode::Eval)
            .verify(true)
            .compile(&graph)
            .unwrap();
        let mut step = CompiledStep::new(Arc::new(compiled), updated).unwrap();
        let mut store = ParameterStore::new();
        store.insert("w", Tensor::from_f32([n], case.init.clone()).unwrap());
        optim::init_state(opt.as_ref(), &mut store).unwrap();
        let mut generator = Generator::new(0);
        for (k, grad) in case.grads.iter().enumerate() {
            let grad = Tensor::from_f32([n], grad.clone()).unwrap();
            let results = step
                .run(
                    &mut generator,
                    &mut store,
                    opt.as_mut(),
                    &[("w.grad", &grad)],
                )
                .unwrap();
            assert!(results.is_empty());
            check(case, k + 1, "param", store.get("w").unwrap(), "jit");
            for s in opt.state_names() {
                check(case, k + 1, s, store.get(&format!("w.{s}")).unwrap(), "jit");
            }
        }
        assert_eq!(opt.steps(), 4);
    }
}

#[test]
fn interpreter_updates_match_the_torch_optim_formulas() {
    for case in &cases() {
        let mut opt = optimizer(case);
        let n = case.init.len();
        let (graph, updated) = update_graph(opt.as_ref(), n);
        let mut values = BTreeMap::from([(
            "w".to_string(),
            Tensor::from_f32([n], case.init.clone()).unwrap(),
        )]);
        for s in opt.state_names() {
            values.insert(
                format!("w.{s}"),
                Tensor::zeros(&TensorType::f32([n])).unwrap(),
            );
        }
        for (k, grad) in case.grads.iter().enumerate() {
            values.insert(
                "w.grad".into(),
                Tensor::from_f32([n], grad.clone()).unwrap(),
            );
            values.extend(optim::scalar_inputs(opt.as_ref()));
            let outputs = interp::run(&graph, Mode::Eval, &mut Generator::new(0), &values).unwrap();
            for ((output, value), update) in outputs.into_iter().zip(&updated) {
                assert_eq!(output, update.output);
                values.insert(update.entry.clone(), value);
            }
            opt.set_steps(opt.steps() + 1);
            check(case, k + 1, "param", &values["w"], "interp");
            for s in opt.state_names() {
                check(case, k + 1, s, &values[&format!("w.{s}")], "interp");
            }
        }
    }
}
