//! SimpleNet's training graph (`autodiff::gradients` of its cross-entropy loss): gradients
//! against central differences, the JIT against the interpreter, the committed IR program,
//! and the compiled memory plan (no mask buffer).

mod common;

use common::compare::Agreement;
use common::gradcheck::{check_finite_differences, check_jit};
use common::training::{simple_net_grad, simple_net_loss};
use dropjit::Gemm;

#[test]
fn gradients_match_central_differences_in_f64() {
    let graph = simple_net_loss();
    let wrt = [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "fc3.weight",
        "fc3.bias",
    ];
    // f64 throughout, h = 1e-6: truncation error ~1e-12, rounding ~1e-10; a relu kink
    // within h of a sample would show as an O(1) error.
    check_finite_differences(&graph, &wrt, 3, 6, 1e-6).unwrap();
}

#[test]
fn jit_gradients_equal_the_interpreter() {
    let graph = simple_net_grad();
    check_jit(&graph, 5, Gemm::Reference, Agreement::Bits).unwrap();
    // sgemm sums in its own order.
    check_jit(&graph, 5, Gemm::Blocked, Agreement::Within(1e-5)).unwrap();
}
