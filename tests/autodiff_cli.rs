//! `dropjit dump --grad OUTPUT` and `dump --stage optimized` of the training program: the
//! fused backward kernels and the planned bytes, with no mask buffer.

mod common;

use common::cli::dropjit;

#[test]
fn dump_grad_differentiates_a_forward_program() {
    let output = dropjit(&[
        "dump",
        "ir/train_loss.ir",
        "--grad",
        "loss",
        "--stage",
        "parsed",
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(
            "%logits.grad: f32[16, 5] = cross_entropy_grad %logits, %targets, %loss.grad"
        ),
        "{text}"
    );
    assert!(
        text.contains("output w.grad = %w.grad\n  output b.grad = %b.grad\n"),
        "{text}"
    );
    let refused = dropjit(&["dump", "ir/simple_net.ir", "--grad", "logits"]);
    assert!(!refused.status.success());
    let error = String::from_utf8(refused.stderr).unwrap();
    assert!(
        error.contains("cannot differentiate linear fc3: a loss has to be an f32 scalar f32[], but it is f32[32, 10]"),
        "{error}"
    );
}

#[test]
fn the_optimized_training_step_plans_no_mask_buffer() {
    let output = dropjit(&["dump", "ir/simple_net_grad.ir", "--stage", "optimized"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    // The dropout gradient fuses with the relu gradient after it.
    assert!(
        text.contains("# kernel 10: %h2.grad, %fc2.grad -> %fc2.grad\n"),
        "{text}"
    );
    // The weight gradients read the transposed gradient in place: no transpose runs.
    assert!(
        text.contains(
            "%fc1.weight.grad: f32[256, 784] = matmul %fc1.grad, %x {transpose_a = true}"
        ),
        "{text}"
    );
    assert!(!text.contains("transpose %"), "{text}");
    assert!(text.contains("# memory: "), "{text}");
    assert!(!text.contains("bool"), "{text}");
    assert!(!text.contains("_mask"), "{text}");
    // The vector kernels make each group's keep bits in registers: no keep bytes at all.
    assert!(!text.contains("keep bytes of"), "{text}");
}
