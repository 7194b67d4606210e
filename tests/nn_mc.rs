//! Monte Carlo dropout through `Traced::mc_predict`: every sample is the Monte Carlo forward at
//! its own step, bit for bit, the model's flags are left alone, and the generator moves by N.

use std::collections::BTreeMap;

use dropjit::models::SimpleNet;
use dropjit::nn::{Traced, trace, trace_mc};
use dropjit::{Compiler, Error, Gemm, Generator, Mode, Tensor, interp};

fn model(p: f64, compiler: Compiler) -> (Traced<SimpleNet>, Tensor) {
    let mut generator = Generator::new(5);
    let net = SimpleNet::new(64, [32, 16], 10, p, &mut generator).unwrap();
    let x = generator.normal([6, 64], 0.0, 1.0).unwrap();
    (Traced::with_compiler(net, compiler), x)
}

/// The interpreter's Monte Carlo forward of `model` on `x` at `step`.
fn reference(model: &Traced<SimpleNet>, x: &Tensor, seed: u64, step: u32) -> Tensor {
    let graph = trace_mc(model.model(), &x.ty()).unwrap();
    let mut values = BTreeMap::from([("x".to_string(), x.clone())]);
    values.extend((model.parameters().iter()).map(|(k, v)| (k.to_string(), v.clone())));
    let mut generator = Generator::new(seed).with_step(step);
    let mut out = interp::run(&graph, Mode::Train, &mut generator, &values).unwrap();
    out.pop().unwrap().1
}

#[test]
fn each_sample_is_the_monte_carlo_forward_at_its_step() {
    let (mut model, x) = model(0.5, Compiler::new().gemm(Gemm::Reference));
    model.eval();
    let mut generator = Generator::new(11).with_step(40);
    let prediction = model.mc_predict(&x, 4, &mut generator).unwrap();
    assert_eq!(generator.step(), 44, "the call claims one step per sample");
    assert_eq!(prediction.first_step, 40);
    assert_eq!(prediction.samples.shape().dims(), [4, 6, 10]);
    assert!(!model.is_training(), "the model's flags are not touched");
    let samples = prediction.samples.as_f32().unwrap();
    for (s, sample) in samples.chunks_exact(60).enumerate() {
        let expected = reference(&model, &x, 11, 40 + s as u32);
        assert_eq!(sample, expected.as_f32().unwrap(), "sample {s}");
        // And the compiled single-sample call at that step.
        let mut at_step = Generator::new(11).with_step(40 + s as u32);
        let single = model.mc_forward(&x, &mut at_step).unwrap();
        assert_eq!(sample, single.as_f32().unwrap(), "sample {s}");
        assert_eq!(at_step.step(), 41 + s as u64);
    }
    assert_ne!(
        samples[..60],
        samples[60..120],
        "samples draw different masks"
    );
    // The eval-mode forward traces no dropout; the Monte Carlo one traces both.
    let eval_graph = trace(model.model(), &x.ty()).unwrap();
    let mc_graph = trace_mc(model.model(), &x.ty()).unwrap();
    let dropouts = |g: &dropjit::Graph| g.node_ids().filter(|&id| g[id].op.is_dropout()).count();
    assert_eq!((dropouts(&eval_graph), dropouts(&mc_graph)), (0, 2));
}

#[test]
fn the_default_gemm_draws_the_same_masks() {
    // With the blocked GEMM values differ from the interpreter's in the last bits only, and
    // the zeros (the dropped units, through the next layer) are where the masks put them.
    let (model, x) = model(0.5, Compiler::new());
    let prediction = model.mc_predict(&x, 3, &mut Generator::new(2)).unwrap();
    let samples = prediction.samples.as_f32().unwrap();
    for (s, sample) in samples.chunks_exact(60).enumerate() {
        let expected = reference(&model, &x, 2, s as u32);
        for (a, b) in sample.iter().zip(expected.as_f32().unwrap()) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "sample {s}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn with_p_zero_every_sample_is_the_eval_forward() {
    let (mut model, x) = model(0.0, Compiler::new());
    model.eval();
    let eval = model.forward_with(&x, &mut Generator::new(0)).unwrap();
    let mut generator = Generator::new(9);
    let prediction = model.mc_predict(&x, 3, &mut generator).unwrap();
    assert_eq!(generator.step(), 3, "one step per sample, drawn or not");
    for sample in prediction.samples.as_f32().unwrap().chunks_exact(60) {
        assert_eq!(sample, eval.as_f32().unwrap());
    }
    assert!(
        prediction
            .variance
            .as_f32()
            .unwrap()
            .iter()
            .all(|&v| v == 0.0)
    );
    assert_eq!(prediction.mean, eval);
    let mi = prediction.classification().mutual_information;
    assert!(mi.as_f32().unwrap().iter().all(|v| v.abs() < 1e-6));
}

#[test]
fn bad_sample_counts_and_exhausted_generators_are_typed_errors() {
    let (model, x) = model(0.5, Compiler::new());
    let err = model.mc_predict(&x, 0, &mut Generator::new(1)).unwrap_err();
    assert!(matches!(err, Error::McSamples { samples: 0 }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Monte Carlo dropout needs at least 1 sample, but got 0"
    );
    // 2^32 samples from step 1 would pass the last step: refused before anything is
    // compiled (or allocated).
    let mut generator = Generator::new(1).with_step(1);
    let err = (model.mc_predict(&x, 1 << 32, &mut generator)).unwrap_err();
    assert!(matches!(err, Error::StepsExhausted { seed: 1 }), "{err:?}");
    let mut generator = Generator::new(1).with_step(u32::MAX - 1);
    let err = model.mc_predict(&x, 3, &mut generator).unwrap_err();
    assert!(matches!(err, Error::StepsExhausted { seed: 1 }), "{err:?}");
    assert_eq!(generator.step(), u64::from(u32::MAX - 1), "nothing claimed");
    // The last two steps are still there.
    model.mc_predict(&x, 2, &mut generator).unwrap();
    assert_eq!(generator.step(), 1 << 32);
}
