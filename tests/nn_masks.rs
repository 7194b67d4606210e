//! `dropout_with_mask` in the module API: eager and traced, train and eval, every variant's
//! mask shape, agreement with `forward` and between the two ways of running.

use dropjit::nn::{self, Module, Var, child, functional};
use dropjit::{Generator, Shape, Tensor, TensorType};

/// A model whose output is the mask of its one dropout (a module's forward returns one value).
struct MaskOf<M> {
    dropout: M,
}

impl Module for MaskOf<nn::Dropout2d> {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let (_, mask) = self.dropout.dropout_with_mask(x)?;
        Ok(mask)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![child("dropout", &self.dropout)]
    }
}

/// A `dropout_with_mask` call of some module.
type WithMask = dyn Fn(&Var) -> dropjit::Result<(Var, Var)>;

/// `x` of this shape with no zeros, so a dropped element shows as `+0.0`.
fn nonzero(shape: impl Into<Shape>) -> Tensor {
    let shape = shape.into();
    let data = (0..shape.numel()).map(|i| 1.0 + (i % 13) as f32).collect();
    Tensor::from_f32(shape, data).unwrap()
}

#[test]
fn eager_masks_are_the_masks_forward_draws() {
    let dropout = nn::Dropout::new(0.5).unwrap();
    let x = Var::new(nonzero([16, 40]));
    let mut g = Generator::new(4).with_step(3);
    let (y, mask) = dropout.dropout_with_mask_with(&x, &mut g).unwrap();
    assert_eq!(g.step(), 4, "one step per train-mode call");
    let forward = dropout
        .forward_with(&x, &mut Generator::new(4).with_step(3))
        .unwrap();
    assert_eq!(y.tensor().unwrap(), forward.tensor().unwrap());
    let mask = mask.tensor().unwrap();
    assert_eq!(mask.ty(), TensorType::bool([16, 40]));
    let (x, y) = (x.tensor().unwrap(), y.tensor().unwrap());
    let values = x.as_f32().unwrap().iter().zip(y.as_f32().unwrap());
    for ((&v, &out), &kept) in values.zip(mask.as_bool().unwrap()) {
        let expected = if kept { v * 2.0 } else { 0.0 };
        assert_eq!(out.to_bits(), expected.to_bits());
    }
    assert!(
        (mask.mean() - 0.5).abs() < 0.1,
        "keep share {}",
        mask.mean()
    );
}

#[test]
fn channel_wise_masks_have_one_value_per_channel() {
    let x = Var::new(nonzero([8, 3, 5, 5]));
    let (y, mask) = nn::Dropout2d::new(0.5)
        .unwrap()
        .dropout_with_mask_with(&x, &mut Generator::new(1))
        .unwrap();
    let mask = mask.tensor().unwrap();
    assert_eq!(mask.ty(), TensorType::bool([8, 3, 1, 1]));
    let y = y.tensor().unwrap().as_f32().unwrap();
    for (channel, &kept) in y.chunks(25).zip(mask.as_bool().unwrap()) {
        assert!(channel.iter().all(|&v| (v != 0.0) == kept));
    }
    let cases: [(Box<WithMask>, Shape); 4] = [
        (
            Box::new(|x| nn::Dropout1d::new(0.5)?.dropout_with_mask(x)),
            Shape::new([4, 6, 1]),
        ),
        (
            // A 4-D input is unbatched (C, D, H, W) for Dropout3d: one value per C.
            Box::new(|x| nn::Dropout3d::new(0.5)?.dropout_with_mask(x)),
            Shape::new([4, 1, 1, 1]),
        ),
        (
            Box::new(|x| nn::AlphaDropout::new(0.5)?.dropout_with_mask(x)),
            Shape::new([4, 6, 7, 2]),
        ),
        (
            Box::new(|x| nn::FeatureAlphaDropout::new(0.5)?.dropout_with_mask(x)),
            Shape::new([4, 6, 1, 1]),
        ),
    ];
    // Dropout1d takes (N, C, L): a 4-D input is an error naming the variant that fits.
    let x = Var::new(nonzero([4, 6, 7, 2]));
    let x1 = Var::new(nonzero([4, 6, 7]));
    for (call, shape) in cases {
        let input = if shape.rank() == 3 { &x1 } else { &x };
        let (_, mask) = call(input).unwrap();
        assert_eq!(mask.shape(), shape);
    }
    let err = nn::Dropout1d::new(0.5)
        .unwrap()
        .dropout_with_mask(&x)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Dropout1d(p=0.5, inplace=false): dropout1d expects a 2-D (C, L) or 3-D (N, C, L) input, \
         but got a 4-D input; use dropout2d"
    );
}

#[test]
fn eval_mode_returns_the_input_and_an_all_true_mask_without_a_step() {
    let mut dropout = nn::Dropout2d::with_inplace(0.5, true).unwrap();
    dropout.eval();
    let x = Var::new(nonzero([2, 3, 4, 4]));
    let mut g = Generator::new(2);
    let (y, mask) = dropout.dropout_with_mask_with(&x, &mut g).unwrap();
    assert_eq!(g.step(), 0);
    assert_eq!(y.tensor().unwrap(), x.tensor().unwrap());
    assert_eq!(
        mask.tensor().unwrap(),
        &Tensor::full_bool([2, 3, 1, 1], true).unwrap()
    );
    // p = 0 in train mode keeps everything too; p = 1 drops everything.
    let (_, all) = nn::Dropout::new(0.0)
        .unwrap()
        .dropout_with_mask(&x)
        .unwrap();
    assert_eq!(all.tensor().unwrap().zero_share(), 0.0);
    let (y, none) = nn::Dropout::new(1.0)
        .unwrap()
        .dropout_with_mask(&x)
        .unwrap();
    assert_eq!(none.tensor().unwrap().mean(), 0.0);
    assert_eq!(y.tensor().unwrap().zero_share(), 1.0);
}

#[test]
fn traced_masks_are_nodes_on_the_dropouts_stream_and_match_eager_ones() {
    let mut model = MaskOf {
        dropout: nn::Dropout2d::new(0.3).unwrap(),
    };
    let ty = TensorType::f32([4, 6, 3, 3]);
    let graph = nn::trace(&model, &ty).unwrap();
    assert_eq!(
        graph.to_string(),
        "graph MaskOf {\n  %x: f32[4, 6, 3, 3] = input\n  \
         %dropout: f32[4, 6, 3, 3] = dropout2d %x {p = 0.3, stream = 0}\n  \
         %dropout.mask: bool[4, 6, 1, 1] = dropout2d_mask %x {p = 0.3, stream = 0}\n  \
         output y = %dropout.mask\n}\n"
    );
    // The first call site at step s draws what an eager call at step s draws.
    let x = nonzero([4, 6, 3, 3]);
    let eager = model
        .dropout
        .dropout_with_mask_with(&Var::new(x.clone()), &mut Generator::new(8).with_step(6))
        .unwrap()
        .1;
    let traced = nn::Traced::new(model);
    let mut g = Generator::new(8).with_step(6);
    let mask = traced.forward_with(&x, &mut g).unwrap();
    assert_eq!(&mask, eager.tensor().unwrap());
    assert_eq!(g.step(), 7);

    // Eval mode: no dropout, an all-true constant, and no step.
    model = traced.into_model();
    model.eval();
    let graph = nn::trace(&model, &ty).unwrap();
    assert!(graph.node_ids().all(|id| !graph[id].op.is_dropout()));
    let traced = nn::Traced::new(model);
    let mut g = Generator::new(8);
    let mask = traced.forward_with(&x, &mut g).unwrap();
    assert_eq!(mask, Tensor::full_bool([4, 6, 1, 1], true).unwrap());
    assert_eq!(g.step(), 0);
}

#[test]
fn functional_dropout_with_mask_is_native_dropout() {
    let x = Var::new(nonzero([5, 9]));
    let mut g = Generator::new(3);
    let (y, mask) =
        nn::with_generator(&mut g, || functional::dropout_with_mask(&x, 0.25, true)).unwrap();
    let scale = (1.0f64 / 0.75) as f32;
    let values =
        (x.tensor().unwrap().as_f32().unwrap().iter()).zip(y.tensor().unwrap().as_f32().unwrap());
    for ((&v, &out), &kept) in values.zip(mask.tensor().unwrap().as_bool().unwrap()) {
        assert_eq!(out.to_bits(), if kept { v * scale } else { 0.0 }.to_bits());
    }
    let (y, mask) = functional::dropout_with_mask(&x, 0.25, false).unwrap();
    assert_eq!(y.tensor().unwrap(), x.tensor().unwrap());
    assert_eq!(mask.tensor().unwrap().zero_share(), 0.0);
    let err = functional::dropout_with_mask(&x, 1.5, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dropout probability has to be between 0 and 1, but got 1.5"
    );
}
