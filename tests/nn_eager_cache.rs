//! Eager calls compile one graph per (op, shape, mode) and reuse it. One test in its own
//! binary, because the eager cache is process-wide and other tests would race its count.

use dropjit::nn::{self, Module, Var};
use dropjit::{Generator, Tensor};

#[test]
fn eager_calls_compile_once_per_op_shape_and_mode() {
    let count = nn::eager_compilations;
    let x = Var::new(Tensor::from_f32([3, 5], vec![1.0; 15]).unwrap());
    let mut dropout = nn::Dropout::new(0.5).unwrap();
    assert_eq!(count(), 0);
    dropout.forward(&x).unwrap();
    dropout.forward(&x).unwrap();
    assert_eq!(count(), 1, "the second call reuses the compiled graph");
    nn::Dropout::new(0.5).unwrap().forward(&x).unwrap();
    assert_eq!(count(), 1, "an equal module shares it too");
    dropout.eval();
    dropout.forward(&x).unwrap();
    dropout.forward(&x).unwrap();
    assert_eq!(count(), 2, "eval mode is another compilation");
    let wide = Var::new(Tensor::from_f32([3, 6], vec![1.0; 18]).unwrap());
    dropout.forward(&wide).unwrap();
    assert_eq!(count(), 3, "so is another shape");
    let linear = nn::Linear::new(5, 2, &mut Generator::new(0)).unwrap();
    linear.forward(&x).unwrap();
    linear.forward(&x).unwrap();
    nn::relu(&x).unwrap();
    nn::relu(&x).unwrap();
    assert_eq!(count(), 5);
}
