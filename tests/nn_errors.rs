//! Every user-facing error of the module API, with its message: probabilities, ranks, unsafe
//! in-place calls, shape mismatches (eager and traced), and misuse while tracing.

use dropjit::models::SimpleNet;
use dropjit::nn::{self, Module, Var, child, relu};
use dropjit::{Generator, Tensor, TensorType};

#[test]
fn constructors_validate_p_and_getters_read_back() {
    let message = "dropout probability has to be between 0 and 1, but got 1.5";
    assert_eq!(nn::Dropout::new(1.5).unwrap_err().to_string(), message);
    assert_eq!(nn::Dropout1d::new(1.5).unwrap_err().to_string(), message);
    assert_eq!(nn::Dropout2d::new(1.5).unwrap_err().to_string(), message);
    assert_eq!(nn::Dropout3d::new(1.5).unwrap_err().to_string(), message);
    assert_eq!(nn::AlphaDropout::new(1.5).unwrap_err().to_string(), message);
    let err = nn::FeatureAlphaDropout::with_inplace(1.5, true).unwrap_err();
    assert_eq!(err.to_string(), message);
    assert_eq!(
        nn::Dropout::new(-0.1).unwrap_err().to_string(),
        "dropout probability has to be between 0 and 1, but got -0.1"
    );
    assert_eq!(
        nn::Dropout::new(f64::NAN).unwrap_err().to_string(),
        "dropout probability has to be between 0 and 1, but got NaN"
    );
    let x = Var::new(Tensor::from_f32([2], vec![1.0, 2.0]).unwrap());
    let err = nn::functional::dropout(&x, 2.0, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dropout probability has to be between 0 and 1, but got 2"
    );

    let d = nn::Dropout2d::with_inplace(0.25, true).unwrap();
    assert_eq!((d.p(), d.inplace()), (0.25, true));
    assert_eq!(d.kind(), dropjit::DropoutKind::Dropout2d);
    assert!(d.is_training(), "modules start in train mode");
    let d = nn::Dropout::default();
    assert_eq!((d.p(), d.inplace()), (0.5, false));
    for p in [0.0, 1.0] {
        nn::AlphaDropout::new(p).unwrap();
    }
}

/// A model that keeps a second handle to a value it then overwrites in place.
struct Residual {
    d: nn::Dropout,
}

impl Module for Residual {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let h = relu(x)?;
        let mut dropped = h.clone();
        self.d.forward_mut(&mut dropped)?;
        Ok(dropped)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![child("d", &self.d)]
    }
}

#[test]
fn traced_in_place_emits_inplace_nodes_and_refuses_shared_handles() {
    let seq = nn::Sequential::new(vec![])
        .with(nn::ReLU)
        .with(nn::Dropout::with_inplace(0.3, true).unwrap());
    let graph = nn::trace(&seq, &TensorType::f32([4, 8])).unwrap();
    let text = graph.to_string();
    assert!(
        text.contains("%1: f32[4, 8] = dropout %x.relu {p = 0.3, inplace = true, stream = 0}"),
        "{text}"
    );
    let err = nn::trace(
        &Residual {
            d: nn::Dropout::new(0.3).unwrap(),
        },
        &TensorType::f32([4, 8]),
    )
    .unwrap_err();
    assert!(matches!(err, dropjit::Error::UnsafeInplace { .. }), "{err}");
}

#[test]
fn rank_errors_name_the_module_or_node_and_the_variant_that_fits() {
    let x = Var::new(Tensor::from_f32([4, 8], vec![1.0; 32]).unwrap());
    let err = nn::Dropout2d::new(0.5).unwrap().forward(&x).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Dropout2d(p=0.5, inplace=false): dropout2d expects a 3-D (C, H, W) or 4-D (N, C, H, W) \
         input, but got a 2-D input; use dropout1d"
    );
    let y = Var::new(Tensor::from_f32([8], vec![1.0; 8]).unwrap());
    let err = nn::FeatureAlphaDropout::new(0.5)
        .unwrap()
        .forward(&y)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "FeatureAlphaDropout(p=0.5, inplace=false): feature_alpha_dropout expects an input of \
         rank 2 or more, (N, C, ...), but got a 1-D input; use alpha_dropout for element-wise masks"
    );
    // Traced, in train and in eval mode: the node is named after the module's path.
    let mut seq = nn::Sequential::new(vec![]).with(nn::Dropout3d::new(0.5).unwrap());
    for _ in 0..2 {
        let err = nn::trace(&seq, &TensorType::f32([4, 8])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dropout3d 0: dropout3d expects a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, but \
             got a 2-D input; use dropout1d"
        );
        seq.eval();
    }
}

#[test]
fn shape_mismatches_name_the_layer() {
    let net = SimpleNet::mnist(&mut Generator::new(0));
    let x = Var::new(Tensor::from_f32([2, 100], vec![0.5; 200]).unwrap());
    let err = net.forward(&x).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Linear(in_features=784, out_features=256, bias=true): input has 100 features but weight expects 784"
    );
    let err = nn::Linear::from_parameters(
        Tensor::from_f32([2, 3], vec![0.0; 6]).unwrap(),
        Tensor::from_f32([3], vec![0.0; 3]).unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Linear: bias has shape [3] but the weight has 2 output features"
    );
    let traced = nn::Traced::new(net);
    let err = traced.forward(x.tensor().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "linear fc1: input has 100 features but weight expects 784"
    );
}

/// A model that reads a traced value as if it were concrete.
struct Peeks;

impl Module for Peeks {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let mean = x.tensor()?.mean();
        Ok(Var::new(Tensor::scalar(mean as f32)))
    }
}

/// A model whose Linear is not listed in children().
struct Hidden {
    fc: nn::Linear,
}

impl Module for Hidden {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        self.fc.forward(x)
    }
}

#[test]
fn tracing_errors_say_what_to_do() {
    let ty = TensorType::f32([2, 3]);
    let err = nn::trace(&Peeks, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "value %x is traced (a node of the graph being built), not a concrete tensor; run the \
         traced model to get values"
    );
    let hidden = Hidden {
        fc: nn::Linear::new(3, 2, &mut Generator::new(0)).unwrap(),
    };
    let err = nn::trace(&hidden, &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Linear(in_features=3, out_features=2, bias=true) is called in forward but not listed by \
         its parent's children(), so its parameters have no name"
    );
    // Eagerly the same model works: names only matter to traces.
    hidden
        .forward(&Var::new(Tensor::from_f32([2, 3], vec![1.0; 6]).unwrap()))
        .unwrap();
}
