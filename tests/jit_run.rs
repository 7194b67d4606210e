//! Running compiled graphs: run-time errors through the ABI, binding errors that mirror the
//! interpreter's, preallocated outputs, a parameter store shared by a train and an eval
//! compilation, generator steps, and sharing one compiled graph between threads.

use std::collections::BTreeMap;

use dropjit::{
    CompiledGraph, Compiler, Error, Generator, Graph, Mode, ParameterStore, Tensor, interp, text,
};

const NET: &str = "graph net {
  %x: f32[2, 3] = input
  %w: f32[4, 3] = parameter
  %h: f32[2, 4] = linear %x, %w
  %d: f32[2, 4] = dropout %h {p = 0.5}
  %targets: i32[2] = input
  %loss: f32[] = cross_entropy %d, %targets
  %flat: f32[8] = reshape %d {shape = [8]}
  output loss = %loss
  output flat = %flat
  output h = %h
  output again = %h
  output x = %x
}
";

fn net() -> Graph {
    text::parse(NET).unwrap()
}

fn compile(graph: &Graph, mode: Mode) -> CompiledGraph {
    Compiler::new()
        .mode(mode)
        .verify(true)
        .compile(graph)
        .unwrap()
}

fn inputs(targets: [i32; 2]) -> BTreeMap<String, Tensor> {
    BTreeMap::from([
        (
            "x".to_string(),
            Tensor::from_f32([2, 3], vec![1.0, -2.0, 0.5, 3.0, 0.25, -1.0]).unwrap(),
        ),
        (
            "targets".to_string(),
            Tensor::from_i32([2], targets.to_vec()).unwrap(),
        ),
    ])
}

fn store() -> ParameterStore {
    let w: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.5).collect();
    ParameterStore::from_iter([("w".to_string(), Tensor::from_f32([4, 3], w).unwrap())])
}

/// The interpreter's view: inputs and parameters in one map.
fn all_values(targets: [i32; 2], params: &ParameterStore) -> BTreeMap<String, Tensor> {
    let mut values = inputs(targets);
    for (name, value) in params.iter() {
        values.insert(name.to_string(), value.clone());
    }
    values
}

#[test]
fn out_of_range_targets_are_typed_errors_naming_node_index_and_target() {
    let graph = net();
    let compiled = compile(&graph, Mode::Train);
    for targets in [[1, 4], [-1, 0], [0, 7]] {
        let mut rng = Generator::new(3);
        let err = compiled
            .run(&mut rng, &inputs(targets), &store())
            .unwrap_err();
        let mut interp_rng = Generator::new(3);
        let expected = interp::run(
            &graph,
            Mode::Train,
            &mut interp_rng,
            &all_values(targets, &store()),
        )
        .unwrap_err();
        assert!(matches!(err, Error::TargetOutOfRange { .. }), "{err}");
        assert_eq!(err.to_string(), expected.to_string());
        // Like the interpreter, the failed run had claimed its step.
        assert_eq!(rng.step(), interp_rng.step());
    }
    let err = compiled
        .run(&mut Generator::new(3), &inputs([1, 4]), &store())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cross_entropy loss: target 4 at batch index 1 is outside 0..4"
    );
}

#[test]
fn binding_errors_match_the_interpreter_and_claim_no_step() {
    let graph = net();
    let compiled = compile(&graph, Mode::Train);
    let mut rng = Generator::new(1);
    let mut missing = inputs([0, 1]);
    missing.remove("targets");
    let err = compiled.run(&mut rng, &missing, &store()).unwrap_err();
    assert_eq!(err.to_string(), "no value was given for input targets");
    let err = compiled
        .run(&mut rng, &inputs([0, 1]), &ParameterStore::new())
        .unwrap_err();
    assert_eq!(err.to_string(), "no value was given for parameter w");
    let mut wrong = inputs([0, 1]);
    wrong.insert("x".into(), Tensor::from_f32([3, 2], vec![0.0; 6]).unwrap());
    let err = compiled.run(&mut rng, &wrong, &store()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input x expects f32[2, 3], but got f32[3, 2]"
    );
    let mut extra = inputs([0, 1]);
    extra.insert("h".into(), Tensor::scalar(0.0));
    let err = compiled.run(&mut rng, &extra, &store()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "linear h is not an input or parameter, so it takes no value"
    );
    extra.remove("h");
    extra.insert("nope".into(), Tensor::scalar(0.0));
    let err = compiled.run(&mut rng, &extra, &store()).unwrap_err();
    assert_eq!(err.to_string(), "no node is named nope");
    let mut as_input = inputs([0, 1]);
    as_input.insert("w".into(), store().get("w").unwrap().clone());
    let err = compiled.run(&mut rng, &as_input, &store()).unwrap_err();
    assert!(matches!(err, Error::ParameterAsInput { .. }), "{err}");
    assert_eq!(rng.step(), 0, "rejected runs claim no step");
    // A store may hold parameters of other graphs.
    let mut shared = store();
    shared.insert("other.weight", Tensor::scalar(1.0));
    compiled.run(&mut rng, &inputs([0, 1]), &shared).unwrap();
    assert_eq!(rng.step(), 1);
}

#[test]
fn outputs_cover_leaves_aliases_and_duplicates() {
    let graph = net();
    let compiled = compile(&graph, Mode::Train);
    let outputs = compiled
        .run(&mut Generator::new(9), &inputs([0, 3]), &store())
        .unwrap();
    let expected = interp::run(
        &graph,
        Mode::Train,
        &mut Generator::new(9),
        &all_values([0, 3], &store()),
    )
    .unwrap();
    let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["loss", "flat", "h", "again", "x"]);
    for ((name, got), (_, want)) in outputs.iter().zip(&expected) {
        assert_eq!(got.shape(), want.shape(), "{name}");
        let (got, want) = (got.as_f32().unwrap(), want.as_f32().unwrap());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{name}: {g} vs {w}"
            );
        }
    }
    assert_eq!(outputs[2].1.as_f32(), outputs[3].1.as_f32());
}

#[test]
fn preallocated_outputs_are_overwritten_and_checked() {
    let graph = net();
    let compiled = compile(&graph, Mode::Train);
    let mut outputs = compiled
        .run(&mut Generator::new(5), &inputs([0, 3]), &store())
        .unwrap();
    let fresh = compiled
        .run(
            &mut Generator::new(5).with_step(1),
            &inputs([2, 1]),
            &store(),
        )
        .unwrap();
    let mut rng = Generator::new(5).with_step(1);
    compiled
        .run_into(&mut rng, &inputs([2, 1]), &store(), &mut outputs)
        .unwrap();
    assert_eq!(rng.step(), 2);
    for ((_, a), (_, b)) in outputs.iter().zip(&fresh) {
        assert_eq!(a.to_le_bytes(), b.to_le_bytes());
    }
    outputs[1].1 = Tensor::from_f32([2, 4], vec![0.0; 8]).unwrap();
    let err = compiled
        .run_into(&mut rng, &inputs([2, 1]), &store(), &mut outputs)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "output 1 has to be flat: f32[8], but got flat: f32[2, 4]"
    );
    outputs.truncate(4);
    let err = compiled
        .run_into(&mut rng, &inputs([2, 1]), &store(), &mut outputs[..])
        .unwrap_err();
    assert!(
        matches!(err, Error::OutputMismatch { index: 1, .. }),
        "{err}"
    );
    assert_eq!(rng.step(), 2, "rejected runs claim no step");
}

#[test]
fn train_and_eval_compilations_share_one_parameter_store() {
    let graph = net();
    let train = compile(&graph, Mode::Train);
    let eval = compile(&graph, Mode::Eval);
    assert_eq!((train.mode(), eval.mode()), (Mode::Train, Mode::Eval));
    assert!(
        eval.graph().find("d").is_none(),
        "eval mode removes dropout"
    );
    let mut params = store();
    let mut rng = Generator::new(11);
    let before = eval.run(&mut rng, &inputs([0, 1]), &params).unwrap();
    assert_eq!(rng.step(), 0, "eval runs claim no step");
    train.run(&mut rng, &inputs([0, 1]), &params).unwrap();
    assert_eq!(rng.step(), 1);
    // A training step updates the shared buffers in place; both compilations see it.
    for w in params.get_mut("w").unwrap().as_f32_mut().unwrap() {
        *w *= 2.0;
    }
    let after = eval.run(&mut rng, &inputs([0, 1]), &params).unwrap();
    let h_before = before[2].1.as_f32().unwrap();
    let h_after = after[2].1.as_f32().unwrap();
    for (b, a) in h_before.iter().zip(h_after) {
        assert_eq!(b * 2.0, *a);
    }
}

#[test]
fn train_runs_end_at_the_last_step_like_the_interpreter() {
    let compiled = compile(&net(), Mode::Train);
    let mut rng = Generator::new(2).with_step(u32::MAX);
    compiled.run(&mut rng, &inputs([0, 1]), &store()).unwrap();
    let err = compiled
        .run(&mut rng, &inputs([0, 1]), &store())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the generator with seed 2 has used all 2^32 steps; reseed it"
    );
}

#[test]
fn a_compiled_graph_records_its_contract_and_clif_and_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledGraph>();
    let compiled = compile(&net(), Mode::Train);
    assert_eq!(compiled.contract_version(), dropjit::rng::CONTRACT_VERSION);
    assert!(
        compiled.clif().starts_with("; phase 0: kernel 0 (")
            && compiled.clif().contains("\nfunction "),
        "{}",
        compiled.clif()
    );
    let expected = compiled
        .run(&mut Generator::new(4), &inputs([1, 2]), &store())
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let got = compiled
                    .run(&mut Generator::new(4), &inputs([1, 2]), &store())
                    .unwrap();
                for ((_, a), (_, b)) in got.iter().zip(&expected) {
                    assert_eq!(a.to_le_bytes(), b.to_le_bytes());
                }
            });
        }
    });
}
