//! Monte Carlo batching (`passes::batch_samples`): sample `s` of a graph of N samples run at
//! step `t` is the original graph run at step `t + s`, bit for bit on the interpreter and,
//! with the reference GEMM, on the JIT; the prefix before the first dropout runs once; what a
//! sample dimension cannot pass is a typed error naming the node.

mod common;

use common::compare::Agreement;
use common::differential::{self, BIT_EXACT, ONE_TWO_THREE};
use dropjit::passes::{self, PipelineOptions, batch_samples};
use dropjit::{Error, Generator, Graph, Mode, Tensor, init, interp, text};

/// Sample `s` of every output of `batched` (`[n, ...]`).
fn sample(t: &Tensor, s: usize, n: usize) -> Tensor {
    let dims = &t.shape().dims()[1..];
    if let Some(values) = t.as_f32() {
        let size = values.len() / n;
        Tensor::from_f32(dims.to_vec(), values[s * size..(s + 1) * size].to_vec()).unwrap()
    } else {
        let values = t.as_bool().expect("outputs are f32 or bool");
        let size = values.len() / n;
        Tensor::from_bool(dims.to_vec(), values[s * size..(s + 1) * size].to_vec()).unwrap()
    }
}

/// Runs `graph` as N samples at step `t` and alone at steps `t..t+n` on the interpreter and
/// requires every sample to be its single run, bit for bit; then the JIT against the
/// interpreter on the batched graph. `Ok(false)` if the interpreter fails (a bad target) the
/// same way both times.
fn check_samples(graph: &Graph, n: usize, seed: u64) -> Result<bool, String> {
    let batched = batch_samples(graph, n).map_err(|e| e.to_string())?.graph;
    let values = init::random_values(graph, seed).unwrap();
    let t = 7;
    let mut generator = Generator::new(seed).with_step(t);
    let together = match interp::run(&batched, Mode::Mc, &mut generator, &values) {
        Ok(outputs) => outputs,
        Err(error) => {
            let mut at_step = Generator::new(seed).with_step(t);
            return match interp::run(graph, Mode::Mc, &mut at_step, &values) {
                Err(alone) if alone.to_string() == error.to_string() => Ok(false),
                alone => Err(format!("batched: {error}; alone: {:?}", alone.err())),
            };
        }
    };
    let draws = dropjit::graph::steps_per_run(&batched);
    if generator.step() != u64::from(t) + draws as u64 {
        return Err(format!("claimed {} steps", generator.step() - u64::from(t)));
    }
    for s in 0..n {
        let mut at_step = Generator::new(seed).with_step(t + s as u32);
        let alone = interp::run(graph, Mode::Mc, &mut at_step, &values).unwrap();
        for ((name, all), (_, one)) in together.iter().zip(&alone) {
            common::compare::compare(one, &sample(all, s, n), Agreement::Bits)
                .map_err(|m| format!("sample {s} of output {name}: {m}"))?;
        }
    }
    differential::check(
        &batched,
        Mode::Mc,
        BIT_EXACT[0],
        Agreement::Bits,
        seed,
        &ONE_TWO_THREE,
    )?;
    differential::check(
        &batched,
        Mode::Mc,
        BIT_EXACT[3],
        Agreement::Bits,
        seed,
        &ONE_TWO_THREE[..1],
    )?;
    Ok(true)
}

/// Every op a sample dimension passes: products against shared weights of several ranks,
/// broadcasting both ways, layout ops, reductions, softmax, channel and alpha dropout, a mask,
/// an output computed before any dropout, and widths that are no multiple of a mask group.
const EVERY_KIND: &str = "
graph every_kind {
  %x: f32[3, 5] = input
  %w: f32[6, 5] = parameter
  %b: f32[6] = parameter
  %v: f32[2, 6, 4] = parameter
  %row: f32[6] = parameter
  %h: f32[3, 6] = linear %x, %w, %b
  %r: f32[3, 6] = relu %h
  %d: f32[3, 6] = dropout %r {p = 0.5}
  %dm: bool[3, 6] = dropout_mask %r {p = 0.5, stream = 0}
  %mm: f32[2, 3, 4] = matmul %d, %v
  %t: f32[2, 4, 3] = transpose %mm {perm = [0, 2, 1]}
  %img: f32[2, 4, 3, 1] = reshape %t {shape = [2, 4, 3, -1]}
  %c: f32[2, 4, 3, 1] = dropout2d %img {p = 0.25}
  %flat: f32[2, 12] = reshape %c {shape = [2, -1]}
  %sm: f32[2, 12] = softmax %flat {axis = -1}
  %m: f32[2, 1] = mean %sm {axes = [-1], keepdim = true}
  %s: f32[] = sum %c
  %rowd: f32[6] = alpha_dropout %row {p = 0.2}
  %bcast: f32[3, 6] = add %r, %rowd
  %e: f32[4, 3, 6] = expand %rowd {shape = [4, 3, 6]}
  output hidden = %h
  output mask = %dm
  output probs = %sm
  output means = %m
  output total = %s
  output shifted = %bcast
  output expanded = %e
}
";

#[test]
fn every_kind_of_node_gives_each_sample_its_single_run() {
    let graph = text::parse(EVERY_KIND).unwrap();
    for n in [1, 2, 5] {
        assert_eq!(check_samples(&graph, n, 3), Ok(true), "{n} samples");
    }
}

#[test]
fn the_prefix_before_the_first_dropout_runs_once() {
    let graph = text::parse(EVERY_KIND).unwrap();
    let batched = batch_samples(&graph, 5).unwrap();
    let g = &batched.graph;
    let ty = |name: &str| g[g.lookup(name).unwrap()].ty.to_string();
    // The linear and relu keep their shapes: computed once.
    assert_eq!(ty("h"), "f32[3, 6]");
    assert_eq!(ty("r"), "f32[3, 6]");
    // The dropout reads the expansion at the boundary and draws per sample.
    assert_eq!(ty("r.samples"), "f32[5, 3, 6]");
    assert_eq!(ty("d"), "f32[5, 3, 6]");
    assert_eq!(ty("mm"), "f32[5, 2, 3, 4]");
    // An output from the prefix is handed out per sample too.
    let hidden = g.outputs().iter().find(|o| o.name == "hidden").unwrap();
    assert_eq!(g[hidden.node].ty.to_string(), "f32[5, 3, 6]");
    assert_eq!(
        (batched.shared, batched.per_sample),
        (7, graph.len() - 7),
        "x, w, b, v, row, h and r are shared"
    );
}

#[test]
fn random_graphs_give_each_sample_its_single_run() {
    let mut checked = 0;
    for seed in 0..24 {
        let graph = common::without_inplace(&common::random_graph(seed));
        match check_samples(&graph, 3, seed) {
            Ok(true) => checked += 1,
            Ok(false) => {}
            // A node the samples cannot pass (a loss after a dropout) is refused by name.
            Err(message) if message.starts_with("cannot batch Monte Carlo samples through %") => {}
            Err(message) => panic!("seed {seed}: {message}\n{graph}"),
        }
    }
    assert!(checked >= 12, "only {checked} of 24 random graphs batched");
}

#[test]
fn nodes_the_samples_cannot_pass_are_named() {
    let drop_connect = text::parse(
        "graph g {
  %x: f32[2, 3] = input
  %w: f32[4, 3] = parameter
  %dw: f32[4, 3] = dropout %w {p = 0.5}
  %y: f32[2, 4] = linear %x, %dw
  output y = %y
}",
    )
    .unwrap();
    let err = batch_samples(&drop_connect, 4).unwrap_err();
    assert!(matches!(err, Error::SampleBatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot batch Monte Carlo samples through %y (linear): its weight and bias cannot vary by sample"
    );
    let loss = text::parse(
        "graph g {
  %x: f32[2, 3] = input
  %t: i32[2] = input
  %d: f32[2, 3] = dropout %x {p = 0.5}
  %l: f32[] = cross_entropy %d, %t
  output l = %l
}",
    )
    .unwrap();
    let err = batch_samples(&loss, 4).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot batch Monte Carlo samples through %l (cross_entropy)"),
        "{err}"
    );
}

#[test]
fn a_run_of_n_samples_claims_n_steps_and_stops_before_two_to_the_32() {
    let graph = text::parse(EVERY_KIND).unwrap();
    let batched = batch_samples(&graph, 4).unwrap().graph;
    let values = init::random_values(&graph, 1).unwrap();
    let compiled = dropjit::Compiler::new()
        .mode(Mode::Mc)
        .compile(&batched)
        .unwrap();
    let (inputs, params) = dropjit::ParameterStore::split(&batched, values.clone());
    let mut generator = Generator::new(1).with_step(u32::MAX - 4);
    compiled.run(&mut generator, &inputs, &params).unwrap();
    assert_eq!(generator.step(), u64::from(u32::MAX));
    let err = compiled.run(&mut generator, &inputs, &params).unwrap_err();
    assert!(matches!(err, Error::StepsExhausted { seed: 1 }), "{err:?}");
    assert_eq!(generator.step(), u64::from(u32::MAX), "nothing claimed");
    let err = interp::run(&batched, Mode::Mc, &mut generator, &values).unwrap_err();
    assert!(matches!(err, Error::StepsExhausted { seed: 1 }), "{err:?}");
    // The last step is still there for one sample.
    let single = batch_samples(&graph, 1).unwrap().graph;
    interp::run(&single, Mode::Mc, &mut generator, &values).unwrap();
    assert_eq!(generator.step(), 1 << 32);
}

#[test]
fn the_pipeline_dump_shows_the_hoisted_prefix() {
    let graph = text::parse(&std::fs::read_to_string("ir/simple_net.ir").unwrap()).unwrap();
    let options = PipelineOptions {
        samples: Some(30),
        record_dumps: true,
        ..PipelineOptions::new(Mode::Mc)
    };
    let optimized = passes::run_pipeline(&graph, &options).unwrap();
    let record = &optimized.report.passes[0];
    assert_eq!(record.name, "batch_samples");
    insta::assert_snapshot!(record.dump.as_deref().unwrap());
}

/// A classifier whose per-sample values fill whole mask groups, at a batch whose samples take
/// a few chunks (the last one short): the tiled run.
const TILED: &str = "
graph tiled {
  %x: f32[64, 32] = input
  %w1: f32[256, 32] = parameter
  %b1: f32[256] = parameter
  %w2: f32[128, 256] = parameter
  %b2: f32[128] = parameter
  %w3: f32[16, 128] = parameter
  %h1: f32[64, 256] = linear %x, %w1, %b1
  %r1: f32[64, 256] = relu %h1
  %d1: f32[64, 256] = dropout %r1 {p = 0.5}
  %h2: f32[64, 128] = linear %d1, %w2, %b2
  %r2: f32[64, 128] = relu %h2
  %d2: f32[64, 128] = alpha_dropout %r2 {p = 0.1}
  %logits: f32[64, 16] = linear %d2, %w3
  %probs: f32[64, 16] = softmax %logits {axis = -1}
  %top: f32[64] = amax %probs {axes = [1]}
  output probs = %probs
  output top = %top
}
";

#[test]
fn tiled_samples_run_a_chunk_at_a_time_with_the_same_bits() {
    let graph = text::parse(TILED).unwrap();
    let batched = batch_samples(&graph, 10).unwrap().graph;
    let compiled = dropjit::Compiler::new()
        .mode(Mode::Mc)
        .compile(&batched)
        .unwrap();
    let tiling = compiled.tiling().expect("the per-sample part is separable");
    assert_eq!(tiling.samples, 10);
    assert!(
        (2..10).contains(&tiling.chunk) && 10 % tiling.chunk != 0,
        "a few chunks, the last one short: {tiling}"
    );
    assert_eq!(check_samples(&graph, 10, 4), Ok(true));
    // Every setup: traced (every value an output), fused or not, 1 to 3 threads.
    for setup in BIT_EXACT {
        let result = differential::check(
            &batched,
            Mode::Mc,
            setup,
            Agreement::Bits,
            4,
            &ONE_TWO_THREE,
        );
        assert_eq!(result, Ok(()), "{setup:?}");
    }
}

#[test]
fn the_blocked_gemm_gives_each_sample_its_single_call_bits() {
    // Each element of the blocked GEMM is one chain of fused multiply-adds over k, whatever
    // the rows, so batching samples changes no bit of them.
    let graph = text::parse(TILED).unwrap();
    let n = 6;
    let batched = batch_samples(&graph, n).unwrap().graph;
    let values = init::random_values(&graph, 9).unwrap();
    let (inputs, params) = dropjit::ParameterStore::split(&graph, values);
    for threads in [1, 2] {
        let compiler = dropjit::Compiler::new().mode(Mode::Mc).threads(threads);
        let together = compiler.compile(&batched).unwrap();
        let alone = compiler.compile(&graph).unwrap();
        let mut generator = Generator::new(9).with_step(100);
        let all = together.run(&mut generator, &inputs, &params).unwrap();
        assert_eq!(generator.step(), 100 + n as u64);
        for s in 0..n {
            let mut at_step = Generator::new(9).with_step(100 + s as u32);
            let one = alone.run(&mut at_step, &inputs, &params).unwrap();
            for ((name, all), (_, one)) in all.iter().zip(&one) {
                let got = sample(all, s, n);
                let same = common::compare::compare(one, &got, Agreement::Bits);
                assert_eq!(same, Ok(()), "{threads} threads, sample {s} of {name}");
            }
        }
    }
}

#[test]
fn sample_steps_on_edge_shapes_agree_on_both_engines() {
    // Empty samples, no samples, one sample, samples that straddle mask groups, channel-wise
    // and broadcast masks: the interpreter is the definition, the JIT has to agree.
    let source = "
graph edges {
  %a: f32[3, 0] = input
  %b: f32[0, 5] = input
  %c: f32[1, 130] = input
  %d: f32[4, 33] = input
  %e: f32[3, 2, 4, 5, 5] = input
  %f: f32[5, 7, 6] = input
  %da: f32[3, 0] = dropout %a {p = 0.5, sample_steps = true}
  %db: f32[0, 5] = dropout %b {p = 0.5, sample_steps = true}
  %dc: f32[1, 130] = dropout %c {p = 0.3, sample_steps = true}
  %dd: f32[4, 33] = alpha_dropout %d {p = 0.6, sample_steps = true}
  %de: f32[3, 2, 4, 5, 5] = dropout2d %e {p = 0.5, sample_steps = true}
  %df: f32[5, 7, 6] = dropout %f {p = 0.5, broadcast_dims = [0], sample_steps = true}
  %mf: bool[5, 1, 6] = dropout_mask %f {p = 0.5, broadcast_dims = [0], sample_steps = true, stream = 5}
  output da = %da
  output db = %db
  output dc = %dc
  output dd = %dd
  output de = %de
  output df = %df
  output mf = %mf
}";
    let graph = text::parse(source).unwrap();
    for setup in BIT_EXACT {
        let result =
            differential::check(&graph, Mode::Mc, setup, Agreement::Bits, 2, &ONE_TWO_THREE);
        assert_eq!(result, Ok(()), "{setup:?}");
    }
    // Sample s of each is the dropout on that slice at step t + s.
    let values = init::random_values(&graph, 2).unwrap();
    let mut generator = Generator::new(2).with_step(10);
    let together = interp::run(&graph, Mode::Mc, &mut generator, &values).unwrap();
    assert_eq!(generator.step(), 15, "the most samples (5) are claimed");
    let (x, y) = (&values["d"], &together[3].1);
    let x = x.as_f32().unwrap();
    for s in 0..4 {
        let slice = Tensor::from_f32([33], x[s * 33..(s + 1) * 33].to_vec()).unwrap();
        let single = text::parse(
            "graph one {\n  %x: f32[33] = input\n  %y: f32[33] = alpha_dropout %x {p = 0.6, stream = 3}\n  output y = %y\n}",
        )
        .unwrap();
        let inputs = std::collections::BTreeMap::from([("x".to_string(), slice)]);
        let mut at_step = Generator::new(2).with_step(10 + s as u32);
        let one = interp::run(&single, Mode::Mc, &mut at_step, &inputs).unwrap();
        assert_eq!(one[0].1, sample(y, s, 4), "sample {s}");
    }
    // A scalar has no dimension of samples.
    let err = text::parse(
        "graph g {\n  %x: f32[] = input\n  %y: f32[] = dropout %x {p = 0.5, sample_steps = true}\n  output y = %y\n}",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "dropout with sample_steps needs a dimension of samples, but got a scalar input"
        ),
        "{err}"
    );
}
