//! `Traced::forward` finds its compilation by (input type, mode) without retracing: the
//! mode still selects the graph (train draws masks, eval is the identity), each pair compiles
//! once, and switching back returns the same compiled graph.

use std::sync::Arc;

use dropjit::nn::{self, Traced};
use dropjit::{Generator, Tensor};

#[test]
fn forward_compiles_once_per_input_type_and_mode_and_switching_back_reuses_it() {
    let mut generator = Generator::new(3);
    let net = nn::Sequential::new(vec![
        Box::new(nn::Linear::new(6, 8, &mut generator).unwrap()),
        Box::new(nn::Dropout::new(0.5).expect("p = 0.5 is valid")),
    ]);
    let mut model = Traced::new(net);
    let x = Tensor::from_f32([4, 6], (0..24).map(|i| i as f32 * 0.1).collect()).expect("24 values");
    model.eval();
    let eval = model.forward_with(&x, &mut generator).expect("runs");
    let eval_graph = model.compile(&x.ty()).expect("compiles");
    assert_eq!(model.compilations(), 1);
    model.train();
    let train = model.forward_with(&x, &mut generator).expect("runs");
    let zeros = |t: &Tensor| {
        t.as_f32()
            .expect("f32")
            .iter()
            .filter(|v| **v == 0.0)
            .count()
    };
    assert!(zeros(&train) > zeros(&eval), "train mode drops elements");
    assert_eq!(model.compilations(), 2, "train mode is another compilation");
    model.eval();
    assert!(Arc::ptr_eq(
        &eval_graph,
        &model.compile(&x.ty()).expect("compiles")
    ));
    let again = model.forward_with(&x, &mut generator).expect("runs");
    assert_eq!(again.as_f32(), eval.as_f32());
    let wider = Tensor::from_f32([5, 6], vec![1.0; 30]).expect("30 values");
    model.forward_with(&wider, &mut generator).expect("runs");
    assert_eq!(
        model.compilations(),
        3,
        "another batch size is another compilation"
    );
    model.forward_with(&x, &mut generator).expect("runs");
    assert_eq!(model.compilations(), 3);
}
