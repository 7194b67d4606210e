//! The module API: getters, display, train/eval, parameters, in-place calls, tracing (one
//! graph, names, streams), and eager vs traced agreement. Error messages: `nn_errors.rs`.

mod nn_support;

use std::collections::BTreeMap;

use dropjit::graph::Approximate;
use dropjit::models::SimpleNet;
use dropjit::nn::{self, Module, Var, relu};
use dropjit::{Generator, Mode, Op, Tensor, TensorType};
use nn_support::Twice;

fn x_784(batch: usize) -> Tensor {
    Generator::new(11).normal([batch, 784], 0.0, 1.0).unwrap()
}

#[test]
fn display_is_pytorch_style_and_nested() {
    assert_eq!(
        nn::Dropout::new(0.5).unwrap().to_string(),
        "Dropout(p=0.5, inplace=false)"
    );
    assert_eq!(
        nn::FeatureAlphaDropout::with_inplace(0.0, true)
            .unwrap()
            .to_string(),
        "FeatureAlphaDropout(p=0.0, inplace=true)"
    );
    let mut g = Generator::new(0);
    let seq = nn::Sequential::new(vec![])
        .with(nn::Linear::new(4, 8, &mut g).unwrap())
        .with(nn::ReLU)
        .with(nn::Sequential::new(vec![]).with(nn::Dropout2d::new(0.2).unwrap()))
        .with(nn::SELU)
        .with(nn::GELU::default())
        .with(nn::GELU::new(Approximate::Tanh));
    let expected = "\
Sequential(
  (0): Linear(in_features=4, out_features=8, bias=true)
  (1): ReLU()
  (2): Sequential(
    (0): Dropout2d(p=0.2, inplace=false)
  )
  (3): SELU()
  (4): GELU(approximate='none')
  (5): GELU(approximate='tanh')
)";
    assert_eq!(seq.to_string(), expected);
    let net = SimpleNet::mnist(&mut g);
    let expected = "\
SimpleNet(
  (fc1): Linear(in_features=784, out_features=256, bias=true)
  (dropout1): Dropout(p=0.5, inplace=false)
  (fc2): Linear(in_features=256, out_features=128, bias=true)
  (dropout2): Dropout(p=0.5, inplace=false)
  (fc3): Linear(in_features=128, out_features=10, bias=true)
)";
    assert_eq!(net.display().to_string(), expected);
}

#[test]
fn train_eval_recurse_and_parameters_are_named_by_path() {
    let mut net = SimpleNet::mnist(&mut Generator::new(5));
    assert!(net.is_training());
    net.eval();
    assert!(!net.is_training() && !net.dropout1.is_training() && !net.dropout2.is_training());
    net.train();
    assert!(net.dropout2.is_training());
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
    assert_eq!(net.parameters().len(), 6);
    // PyTorch's default init: uniform in ±1/sqrt(in_features), weight and bias.
    let bound = 1.0 / 784f32.sqrt();
    for t in [net.fc1.weight(), net.fc1.bias()] {
        let v = t.as_f32().unwrap();
        assert!(v.iter().all(|x| x.abs() <= bound));
        assert!(v.iter().any(|x| x.abs() > 0.9 * bound), "spans the range");
    }
    assert_eq!(net.fc1.weight().shape().dims(), [256, 784]);
    assert_eq!((net.fc2.in_features(), net.fc2.out_features()), (256, 128));
}

#[test]
fn eager_dropout_draws_one_step_per_train_call_and_none_in_eval() {
    let mut dropout = nn::Dropout::new(0.5).unwrap();
    let x = Var::new(Generator::new(1).normal([64, 64], 0.0, 1.0).unwrap());
    let mut g = Generator::new(9);
    let a = dropout.forward_with(&x, &mut g).unwrap();
    let b = dropout.forward_with(&x, &mut g).unwrap();
    assert_eq!(g.step(), 2);
    assert_ne!(
        a.tensor().unwrap(),
        b.tensor().unwrap(),
        "each call a new mask"
    );
    let replay = dropout.forward_with(&x, &mut Generator::new(9)).unwrap();
    assert_eq!(
        replay.tensor().unwrap(),
        a.tensor().unwrap(),
        "same step, same mask"
    );
    dropout.eval();
    let e = dropout.forward_with(&x, &mut g).unwrap();
    assert_eq!(g.step(), 2, "eval draws nothing");
    assert_eq!(e.tensor().unwrap(), x.tensor().unwrap());
}

#[test]
fn default_generator_is_thread_local_and_seeded() {
    let dropout = nn::Dropout::new(0.5).unwrap();
    let run = || {
        dropjit::manual_seed(21);
        let x = dropjit::randn([8, 32]).unwrap();
        let y = dropout.forward(&x).unwrap();
        (x.into_tensor().unwrap(), y.into_tensor().unwrap())
    };
    let first = run();
    assert_eq!(run(), first, "manual_seed makes eager calls reproducible");
    assert_eq!(nn::default_generator().step(), 1);
    // with_generator lends an explicit generator to every eager call inside.
    let x = Var::new(first.0.clone());
    let mut g = Generator::new(4);
    let inside = nn::with_generator(&mut g, || dropout.forward(&x)).unwrap();
    assert_eq!(g.step(), 1);
    assert_eq!(
        nn::default_generator().step(),
        1,
        "the default is untouched"
    );
    let direct = dropout.forward_with(&x, &mut Generator::new(4)).unwrap();
    assert_eq!(inside.tensor().unwrap(), direct.tensor().unwrap());
    let other = std::thread::spawn(nn::default_generator).join().unwrap();
    assert_eq!(other, Generator::new(nn::DEFAULT_SEED));
}

#[test]
fn in_place_calls_are_visible_in_types_and_refuse_shared_values() {
    let dropout = nn::Dropout::with_inplace(0.5, true).unwrap();
    let data = Generator::new(2).normal([16, 16], 0.0, 1.0).unwrap();
    let mut x = Var::new(data.clone());
    dropout
        .forward_mut_with(&mut x, &mut Generator::new(3))
        .unwrap();
    let expected = dropout
        .forward_with(&Var::new(data.clone()), &mut Generator::new(3))
        .unwrap();
    assert_eq!(x.tensor().unwrap(), expected.tensor().unwrap());

    let mut shared = Var::new(data.clone());
    let keep = shared.clone();
    let err = dropout.forward_mut(&mut shared).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Dropout(p=0.5, inplace=true) writes into its input in place, but the input value is \
         shared with another handle; call forward(&x) for a new value instead"
    );
    assert_eq!(
        shared.tensor().unwrap(),
        &data,
        "a refused call changes nothing"
    );
    let err = dropout.forward_owned(keep.clone()).unwrap_err();
    assert!(matches!(err, dropjit::Error::UnsafeInplace { .. }));
    // forward(&x) never writes; Sequential writes only into its own intermediates.
    let y = dropout.forward(&keep).unwrap();
    assert_eq!(keep.tensor().unwrap(), &data);
    assert_eq!(y.shape(), keep.shape());
    let seq = nn::Sequential::new(vec![])
        .with(nn::ReLU)
        .with(dropout.clone());
    seq.forward(&keep).unwrap();
    assert_eq!(keep.tensor().unwrap(), &data);
}

#[test]
fn traced_simple_net_is_one_graph_named_by_paths_with_a_stream_per_dropout() {
    let net = SimpleNet::mnist(&mut Generator::new(0));
    let traced = nn::Traced::new(net);
    let compiled = traced.compile(&TensorType::f32([32, 784])).unwrap();
    assert_eq!(compiled.mode(), Mode::Train);
    let graph = compiled.graph();
    let dropouts: Vec<(String, u32, String)> = graph
        .topo_order()
        .into_iter()
        .filter_map(|id| {
            let d = graph[id].op.as_dropout()?;
            let operand = graph.operands(id).unwrap()[0];
            let producer = graph.operands(operand).unwrap()[0];
            assert!(matches!(graph[operand].op, Op::Unary(_)));
            Some((
                graph[id].name.clone(),
                d.stream,
                graph[producer].name.clone(),
            ))
        })
        .collect();
    assert_eq!(
        dropouts,
        [
            ("dropout1".to_string(), 0, "fc1".to_string()),
            ("dropout2".to_string(), 1, "fc2".to_string())
        ]
    );
    let linears = (graph.node_ids())
        .filter(|&id| matches!(graph[id].op, Op::Linear { .. }))
        .count();
    assert_eq!(linears, 3);
    assert_eq!(graph.parameters().len(), 6);
    // The traced graph prints as valid textual IR (what `dropjit dump` reads).
    let reparsed = dropjit::text::parse(
        &traced
            .graph(&TensorType::f32([32, 784]))
            .unwrap()
            .to_string(),
    );
    assert!(reparsed.is_ok());
}

/// Element-wise fusion makes each bias + relu + dropout one loop right after its product.
#[test]
fn traced_simple_net_fuses_each_dropout_into_the_loop_after_its_linear() {
    let traced = nn::Traced::new(SimpleNet::mnist(&mut Generator::new(0)));
    let compiled = traced.compile(&TensorType::f32([32, 784])).unwrap();
    let schedule = compiled.schedule().display(compiled.graph()).to_string();
    assert!(
        schedule.contains(": %fc1.gemm -> %fc1.gemm\n"),
        "{schedule}"
    );
    assert!(
        schedule.contains(": %fc1, %fc1.relu, %dropout1 -> %dropout1\n"),
        "{schedule}"
    );
    assert!(
        schedule.contains(": %fc2, %fc2.relu, %dropout2 -> %dropout2\n"),
        "{schedule}"
    );
    assert_eq!(compiled.schedule().kernels.len(), 5, "{schedule}");
}

#[test]
fn traced_models_compile_once_per_shape_and_mode_and_share_parameters() {
    let mut traced = nn::Traced::new(SimpleNet::mnist(&mut Generator::new(0)));
    let mut g = Generator::new(1);
    let x = x_784(4);
    let a = traced.forward_with(&x, &mut g).unwrap();
    let b = traced.forward_with(&x, &mut g).unwrap();
    assert_ne!(a, b, "each run draws new masks");
    assert_eq!((traced.compilations(), g.step()), (1, 2));
    traced.eval();
    let e1 = traced.forward_with(&x, &mut g).unwrap();
    let e2 = traced.forward_with(&x, &mut g).unwrap();
    assert_eq!(e1, e2);
    assert_eq!(
        (traced.compilations(), g.step()),
        (2, 2),
        "eval draws nothing"
    );
    traced.forward_with(&x_784(3), &mut g).unwrap();
    assert_eq!(traced.compilations(), 3);
    assert_eq!(traced.parameters().len(), 6);
    assert_eq!(
        traced.parameters().get("fc2.bias").unwrap(),
        traced.model().fc2.bias()
    );
}

#[test]
fn a_module_called_twice_draws_two_masks() {
    let model = Twice {
        d: nn::Dropout::new(0.5).unwrap(),
    };
    let graph = nn::trace(&model, &TensorType::f32([64, 64])).unwrap();
    let streams: Vec<(String, u32)> = graph
        .topo_order()
        .into_iter()
        .filter_map(|id| Some((graph[id].name.clone(), graph[id].op.as_dropout()?.stream)))
        .collect();
    assert_eq!(streams, [("d".to_string(), 0), ("d.call2".to_string(), 1)]);
    let all = graph.with_every_node_as_output();
    let x = Generator::new(3).normal([64, 64], 0.0, 1.0).unwrap();
    let values = BTreeMap::from([("x".to_string(), x)]);
    let out =
        dropjit::interp::run_traced(&all, Mode::Train, &mut Generator::new(8), &values).unwrap();
    assert_ne!(out.values["d"], out.values["d.call2"]);
}

#[test]
fn eager_and_traced_agree_as_documented() {
    // An eager call at step s is a traced one-dropout model at step s, for every variant.
    let cases: [(Box<dyn Module>, Vec<usize>); 8] = [
        (Box::new(nn::Dropout::new(0.3).unwrap()), vec![8, 40]),
        (Box::new(nn::Dropout1d::new(0.3).unwrap()), vec![4, 6, 10]),
        (Box::new(nn::Dropout2d::new(0.3).unwrap()), vec![4, 6, 5, 5]),
        (
            Box::new(nn::Dropout3d::new(0.3).unwrap()),
            vec![2, 6, 3, 4, 5],
        ),
        (Box::new(nn::AlphaDropout::new(0.3).unwrap()), vec![8, 40]),
        (
            Box::new(nn::FeatureAlphaDropout::new(0.3).unwrap()),
            vec![4, 6, 7],
        ),
        // And the activations without randomness.
        (Box::new(nn::GELU::default()), vec![8, 40]),
        (Box::new(nn::GELU::new(Approximate::Tanh)), vec![3, 7]),
    ];
    for (module, shape) in cases {
        let x = Generator::new(6).normal(shape, 0.0, 1.0).unwrap();
        let mut g = Generator::new(12).with_step(5);
        let eager = nn::with_generator(&mut g, || module.forward(&Var::new(x.clone()))).unwrap();
        let traced = nn::Traced::new(nn::Sequential::new(vec![module]));
        let mut g = Generator::new(12).with_step(5);
        let y = traced.forward_with(&x, &mut g).unwrap();
        assert_eq!(&y, eager.tensor().unwrap(), "{traced}");
    }

    // Eval mode: eager and traced SimpleNet agree bit for bit.
    let mut net = SimpleNet::mnist(&mut Generator::new(0));
    net.eval();
    let x = x_784(8);
    let eager = net.forward(&Var::new(x.clone())).unwrap();
    let traced = nn::Traced::new(net);
    assert_eq!(&traced.forward(&x).unwrap(), eager.tensor().unwrap());

    // Train mode: the first call site at step s is the eager dropout1 at step s.
    let mut net = traced.into_model();
    net.train();
    let graph = nn::trace(&net, &x.ty())
        .unwrap()
        .with_every_node_as_output();
    let compiled = dropjit::Compiler::new().compile(&graph).unwrap();
    let inputs = BTreeMap::from([("x".to_string(), x.clone())]);
    let store: dropjit::ParameterStore = (net.named_parameters().into_iter())
        .map(|(n, t)| (n, t.clone()))
        .collect();
    let outputs = compiled
        .run(&mut Generator::new(30).with_step(2), &inputs, &store)
        .unwrap();
    let traced_d1 = &outputs.iter().find(|(n, _)| n == "dropout1").unwrap().1;
    let h = relu(&net.fc1.forward(&Var::new(x)).unwrap()).unwrap();
    let eager_d1 = net
        .dropout1
        .forward_with(&h, &mut Generator::new(30).with_step(2))
        .unwrap();
    assert_eq!(traced_d1, eager_d1.tensor().unwrap());
}
