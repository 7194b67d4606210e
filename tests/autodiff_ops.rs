//! Every op's gradient: `autodiff::gradients` on a small graph per op (loss = sum(y * w) for
//! random weights w), checked against central differences on the f64 interpreter (masks held
//! fixed by evaluating every run at the same seed and step), and the compiled gradient graph
//! against the interpreter, bit for bit (with the reference GEMM).
//!
//! Tolerance: `1e-6 * (1 + |gradient|)` with a step of `1e-6` in f64, far above the
//! differences' own error (~1e-10) and far below any real mistake (a wrong term is O(1)).

mod common;

use common::compare::Agreement;
use common::gradcheck::{
    check_finite_differences, check_finite_differences_in, check_jit, check_jit_in, f32_leaves,
    weighted_loss, with_gradients,
};
use dropjit::{Gemm, Mode, text};

/// One case: graph lines defining `%y` (and whatever it needs).
struct Case {
    name: &'static str,
    body: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "neg",
        body: "%x: f32[3, 4] = input\n%y: f32[3, 4] = neg %x",
    },
    Case {
        name: "relu",
        body: "%x: f32[3, 4] = input\n%y: f32[3, 4] = relu %x",
    },
    Case {
        name: "selu",
        body: "%x: f32[3, 4] = input\n%y: f32[3, 4] = selu %x",
    },
    Case {
        name: "exp_log",
        body: "%x: f32[3, 4] = input\n%e: f32[3, 4] = exp %x\n%y: f32[3, 4] = log %e",
    },
    Case {
        name: "log",
        body: "%x: f32[3, 4] = input\n%a: f32[3, 4] = mul %x, %x\n%c: f32[] = constant 0.5\n%b: f32[3, 4] = add %a, %c\n%y: f32[3, 4] = log %b",
    },
    Case {
        name: "sqrt",
        body: "%x: f32[5] = input\n%e: f32[5] = exp %x\n%y: f32[5] = sqrt %e",
    },
    Case {
        name: "tanh",
        body: "%x: f32[3, 4] = input\n%y: f32[3, 4] = tanh %x",
    },
    Case {
        name: "sigmoid",
        body: "%x: f32[3, 4] = input\n%y: f32[3, 4] = sigmoid %x",
    },
    Case {
        name: "gelu",
        body: "%x: f32[3, 4] = input\n%y: f32[3, 4] = gelu %x",
    },
    Case {
        name: "gelu_tanh",
        body: "%x: f32[3, 4] = input\n%y: f32[3, 4] = gelu %x {approximate = tanh}",
    },
    Case {
        name: "add_broadcast",
        body: "%a: f32[2, 3, 4] = input\n%b: f32[3, 1] = input\n%y: f32[2, 3, 4] = add %a, %b",
    },
    Case {
        name: "sub_broadcast",
        body: "%a: f32[4] = input\n%b: f32[2, 3, 4] = input\n%y: f32[2, 3, 4] = sub %a, %b",
    },
    Case {
        name: "mul_scalar",
        body: "%a: f32[3, 4] = input\n%b: f32[] = input\n%y: f32[3, 4] = mul %a, %b",
    },
    Case {
        name: "mul_same",
        body: "%a: f32[3, 4] = input\n%y: f32[3, 4] = mul %a, %a",
    },
    Case {
        name: "div_broadcast",
        body: "%a: f32[2, 3] = input\n%c: f32[1, 3] = input\n%b: f32[1, 3] = exp %c\n%y: f32[2, 3] = div %a, %b",
    },
    Case {
        name: "maximum",
        body: "%a: f32[3, 4] = input\n%b: f32[4] = input\n%y: f32[3, 4] = maximum %a, %b",
    },
    Case {
        name: "expand",
        body: "%a: f32[3, 1] = input\n%y: f32[2, 3, 4] = expand %a {shape = [2, 3, 4]}",
    },
    Case {
        name: "matmul",
        body: "%a: f32[3, 4] = input\n%b: f32[4, 5] = input\n%y: f32[3, 5] = matmul %a, %b",
    },
    Case {
        name: "matmul_batched_broadcast",
        body: "%a: f32[2, 1, 3, 4] = input\n%b: f32[5, 4, 2] = input\n%y: f32[2, 5, 3, 2] = matmul %a, %b",
    },
    Case {
        name: "matmul_transposed_operands",
        body: "%a: f32[4, 3] = input\n%b: f32[5, 4] = input\n%y: f32[3, 5] = matmul %a, %b {transpose_a = true, transpose_b = true}",
    },
    Case {
        name: "matmul_transposed_batched_broadcast",
        body: "%a: f32[2, 1, 4, 3] = input\n%b: f32[5, 4, 2] = input\n%y: f32[2, 5, 3, 2] = matmul %a, %b {transpose_a = true}",
    },
    Case {
        name: "matmul_transposed_right",
        body: "%a: f32[3, 4] = input\n%b: f32[2, 5, 4] = input\n%y: f32[2, 3, 5] = matmul %a, %b {transpose_b = true}",
    },
    Case {
        name: "linear",
        body: "%x: f32[2, 3, 4] = input\n%w: f32[5, 4] = parameter\n%b: f32[5] = parameter\n%y: f32[2, 3, 5] = linear %x, %w, %b",
    },
    Case {
        name: "linear_vector_no_bias",
        body: "%x: f32[4] = input\n%w: f32[3, 4] = parameter\n%y: f32[3] = linear %x, %w",
    },
    Case {
        name: "reshape_transpose",
        body: "%x: f32[2, 3, 4] = input\n%r: f32[6, 4] = reshape %x {shape = [-1, 4]}\n%y: f32[4, 6] = transpose %r {perm = [1, 0]}",
    },
    Case {
        name: "transpose3",
        body: "%x: f32[2, 3, 4] = input\n%y: f32[4, 2, 3] = transpose %x {perm = [2, 0, 1]}",
    },
    Case {
        name: "sum_keepdim_negative_axis",
        body: "%x: f32[2, 3, 4] = input\n%y: f32[2, 3, 1] = sum %x {axes = [-1], keepdim = true}",
    },
    Case {
        name: "sum_all",
        body: "%x: f32[2, 3] = input\n%y: f32[] = sum %x",
    },
    Case {
        name: "mean_axes",
        body: "%x: f32[2, 3, 4] = input\n%y: f32[3] = mean %x {axes = [0, -1]}",
    },
    Case {
        name: "amax_keepdim",
        body: "%x: f32[2, 3, 4] = input\n%y: f32[2, 1, 4] = amax %x {axes = [-2], keepdim = true}",
    },
    Case {
        name: "amax_all",
        body: "%x: f32[3, 4] = input\n%y: f32[] = amax %x",
    },
    Case {
        name: "softmax",
        body: "%x: f32[3, 5] = input\n%y: f32[3, 5] = softmax %x {axis = 0}",
    },
    Case {
        name: "log_softmax",
        body: "%x: f32[2, 3, 5] = input\n%y: f32[2, 3, 5] = log_softmax %x {axis = -1}",
    },
    Case {
        name: "cross_entropy",
        body: "%x: f32[6, 5] = input\n%t: i32[6] = input\n%y: f32[] = cross_entropy %x, %t",
    },
    Case {
        name: "cross_entropy_vector",
        body: "%x: f32[5] = input\n%t: i32[] = input\n%y: f32[] = cross_entropy %x, %t",
    },
    Case {
        name: "dropout",
        body: "%x: f32[4, 5, 6] = input\n%y: f32[4, 5, 6] = dropout %x {p = 0.3, stream = 2}",
    },
    Case {
        name: "locked_dropout",
        body: "%x: f32[4, 5, 6] = input\n%y: f32[4, 5, 6] = dropout %x {p = 0.5, broadcast_dims = [0], stream = 0}",
    },
    Case {
        name: "drop_path",
        body: "%x: f32[4, 3, 2, 2] = input\n%y: f32[4, 3, 2, 2] = dropout %x {p = 0.5, broadcast_dims = [1, 2, 3]}",
    },
    Case {
        name: "dropout1d",
        body: "%x: f32[2, 6, 4] = input\n%y: f32[2, 6, 4] = dropout1d %x {p = 0.5}",
    },
    Case {
        name: "dropout2d",
        body: "%x: f32[2, 6, 2, 2] = input\n%y: f32[2, 6, 2, 2] = dropout2d %x {p = 0.4}",
    },
    Case {
        name: "dropout3d",
        body: "%x: f32[6, 2, 2, 2] = input\n%y: f32[6, 2, 2, 2] = dropout3d %x {p = 0.5}",
    },
    Case {
        name: "alpha_dropout",
        body: "%x: f32[4, 8] = input\n%y: f32[4, 8] = alpha_dropout %x {p = 0.2}",
    },
    Case {
        name: "alpha_dropout_broadcast",
        body: "%x: f32[4, 8] = input\n%y: f32[4, 8] = alpha_dropout %x {p = 0.5, broadcast_dims = [1]}",
    },
    Case {
        name: "feature_alpha_dropout",
        body: "%x: f32[3, 4, 5] = input\n%y: f32[3, 4, 5] = feature_alpha_dropout %x {p = 0.5}",
    },
    Case {
        name: "dropout_p1_p0",
        body: "%x: f32[3, 4] = input\n%a: f32[3, 4] = dropout %x {p = 1}\n%b: f32[3, 4] = alpha_dropout %x {p = 0}\n%y: f32[3, 4] = add %a, %b",
    },
    Case {
        name: "dropout_with_mask",
        body: "%x: f32[4, 6] = input\n%m: bool[4, 6] = dropout_mask %x {p = 0.5, stream = 0}\n%y: f32[4, 6] = dropout %x {p = 0.5, stream = 0}",
    },
    Case {
        name: "relu_grad_of_g",
        body: "%g: f32[3, 4] = input\n%x: f32[3, 4] = input\n%y: f32[3, 4] = relu_grad %g, %x",
    },
    Case {
        name: "selu_grad_of_g",
        body: "%g: f32[3, 4] = input\n%x: f32[4] = constant [0.5, -1, 2, -0.25]\n%y: f32[3, 4] = selu_grad %g, %x",
    },
    Case {
        name: "dropout_grad_of_g",
        body: "%g: f32[4, 5] = input\n%y: f32[4, 5] = alpha_dropout_grad %g {p = 0.5, stream = 3}",
    },
    Case {
        name: "piecewise_constant",
        body: "%a: f32[3, 4] = input\n%b: f32[3, 4] = input\n%e: f32[3, 4] = equal %a, %b\n%w: f32[3, 4] = maximum_weight %a, %b\n%s: f32[3, 4] = add %e, %w\n%y: f32[3, 4] = mul %s, %a",
    },
    Case {
        name: "i32_targets_through_layout",
        body: "%x: f32[2, 3, 10] = input\n%t: i32[2, 3] = input\n%tr: i32[6] = reshape %t {shape = [6]}\n%xr: f32[6, 10] = reshape %x {shape = [6, 10]}\n%y: f32[] = cross_entropy %xr, %tr",
    },
    Case {
        name: "conv2d",
        body: "%x: f32[2, 4, 5, 6] = input\n%w: f32[6, 2, 3, 2] = parameter\n%b: f32[6] = parameter\n%y: f32[2, 6, 2, 5] = conv2d %x, %w, %b {stride = [2, 1], padding = [1, 0], padding_end = [0, 1], dilation = [1, 2], groups = 2}",
    },
    Case {
        name: "conv1d_unbatched",
        body: "%x: f32[3, 7] = input\n%w: f32[2, 3, 3] = parameter\n%y: f32[2, 4] = conv1d %x, %w {stride = [2], padding = [1]}",
    },
    Case {
        name: "conv3d",
        body: "%x: f32[1, 2, 3, 4, 3] = input\n%w: f32[2, 2, 2, 2, 2] = parameter\n%b: f32[2] = parameter\n%y: f32[1, 2, 2, 3, 2] = conv3d %x, %w, %b",
    },
    Case {
        name: "max_pool2d",
        body: "%x: f32[2, 3, 5, 5] = input\n%y: f32[2, 3, 3, 3] = max_pool2d %x {kernel = [3, 3], stride = [2, 2], padding = [1, 1]}",
    },
    Case {
        name: "max_pool1d_dilated_ceil",
        body: "%x: f32[2, 9] = input\n%y: f32[2, 4] = max_pool1d %x {kernel = [3], stride = [2], padding = [1], dilation = [2], ceil_mode = true}",
    },
    Case {
        name: "avg_pool2d",
        body: "%x: f32[2, 2, 5, 6] = input\n%y: f32[2, 2, 3, 4] = avg_pool2d %x {kernel = [3, 2], stride = [2, 2], padding = [1, 1], ceil_mode = true, count_include_pad = false}",
    },
    Case {
        name: "adaptive_avg_pool2d",
        body: "%x: f32[2, 3, 7, 5] = input\n%y: f32[2, 3, 3, 2] = adaptive_avg_pool2d %x {output = [3, 2]}",
    },
    Case {
        name: "batch_norm2d",
        body: "%x: f32[3, 2, 2, 3] = input\n%rm: f32[2] = input\n%rv: f32[2] = input\n%w: f32[2] = parameter\n%b: f32[2] = parameter\n%y: f32[3, 2, 2, 3] = batch_norm %x, %rm, %rv, %w, %b",
    },
    Case {
        name: "batch_norm1d_without_affine",
        body: "%x: f32[4, 3, 2] = input\n%rm: f32[3] = parameter\n%rv: f32[3] = parameter\n%y: f32[4, 3, 2] = batch_norm %x, %rm, %rv {eps = 0.001}",
    },
    Case {
        name: "batch_norm_features",
        body: "%x: f32[5, 3] = input\n%rm: f32[3] = input\n%rv: f32[3] = input\n%w: f32[3] = input\n%b: f32[3] = input\n%y: f32[5, 3] = batch_norm %x, %rm, %rv, %w, %b",
    },
    Case {
        name: "batch_norm3d_twice",
        body: "%x: f32[2, 2, 2, 1, 3] = input\n%rm: f32[2] = input\n%rv: f32[2] = input\n%w: f32[2] = parameter\n%b: f32[2] = parameter\n%a: f32[2, 2, 2, 1, 3] = batch_norm %x, %rm, %rv, %w, %b\n%t: f32[2, 2, 2, 1, 3] = tanh %a\n%y: f32[2, 2, 2, 1, 3] = batch_norm %t, %rm, %rv, %w, %b",
    },
    Case {
        name: "layer_norm",
        body: "%x: f32[3, 2, 5] = input\n%w: f32[5] = parameter\n%b: f32[5] = parameter\n%y: f32[3, 2, 5] = layer_norm %x, %w, %b {normalized_shape = [5]}",
    },
    Case {
        name: "layer_norm_two_dims_weight_only",
        body: "%x: f32[2, 3, 4] = input\n%w: f32[3, 4] = parameter\n%y: f32[2, 3, 4] = layer_norm %x, %w {normalized_shape = [3, 4], eps = 0.001}",
    },
    Case {
        name: "layer_norm_one_row",
        body: "%x: f32[6] = input\n%w: f32[6] = parameter\n%b: f32[6] = parameter\n%y: f32[6] = layer_norm %x, %w, %b {normalized_shape = [6]}",
    },
    Case {
        name: "layer_norm_plain_twice",
        body: "%x: f32[4, 3] = input\n%w: f32[3] = parameter\n%a: f32[4, 3] = layer_norm %x {normalized_shape = [3]}\n%t: f32[4, 3] = tanh %a\n%u: f32[4, 3] = mul %t, %w\n%y: f32[4, 3] = layer_norm %u, %w {normalized_shape = [3]}",
    },
    Case {
        name: "embedding",
        body: "%i: i32[2, 3] = input\n%w: f32[5, 4] = parameter\n%e: f32[2, 3, 4] = embedding %i, %w\n%y: f32[2, 3, 4] = tanh %e",
    },
    Case {
        // Repeated rows sum; the padding row (2, unused: its zero gradient is PyTorch's rule,
        // not the derivative, and tests/embedding.rs checks it) leaves the others alone.
        name: "embedding_padding_repeated",
        body: "%i: i32[7] = constant [1, 0, 1, 0, 0, 1, 1]\n%w: f32[3, 2] = parameter\n%e: f32[7, 2] = embedding %i, %w {padding_idx = -1}\n%y: f32[7, 2] = mul %e, %e",
    },
    Case {
        name: "where_broadcast",
        body: "%c: bool[3, 1] = input\n%a: f32[2, 3, 4] = input\n%b: f32[4] = parameter\n%y: f32[2, 3, 4] = where %c, %a, %b",
    },
    Case {
        name: "where_causal_softmax",
        body: "%s: f32[2, 3, 3] = input\n%m: bool[3, 3] = tril\n%n: f32[] = constant -inf\n%w: f32[2, 3, 3] = where %m, %s, %n\n%y: f32[2, 3, 3] = softmax %w {axis = -1}",
    },
    Case {
        name: "diamond",
        body: "%x: f32[3, 4] = input\n%a: f32[3, 4] = relu %x\n%b: f32[3, 4] = exp %x\n%c: f32[3, 4] = mul %a, %b\n%d: f32[4] = sum %c {axes = [0]}\n%y: f32[3, 4] = sub %c, %d",
    },
];

fn graph(case: &Case) -> dropjit::Graph {
    let source = format!("graph {} {{\n{}\noutput y = %y\n}}\n", case.name, case.body);
    let parsed = text::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    weighted_loss(parsed, "y")
}

#[test]
fn every_op_matches_central_differences() {
    for (k, case) in CASES.iter().enumerate() {
        let graph = graph(case);
        let leaves = f32_leaves(&graph);
        let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
        check_finite_differences(&graph, &wrt, 11 + k as u64, 12, 1e-6)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
}

#[test]
fn every_op_compiles_to_the_interpreters_gradients() {
    for (k, case) in CASES.iter().enumerate() {
        let graph = graph(case);
        let leaves = f32_leaves(&graph);
        let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
        let (grads, _) = with_gradients(&graph, &wrt);
        check_jit(&grads, 21 + k as u64, Gemm::Reference, Agreement::Bits)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
}

/// Batch norm in eval mode (and Monte Carlo mode, which normalizes alike): the gradient of the
/// affine map with the running statistics, which are constants here (they get no gradient,
/// as in PyTorch, and the output depends on them).
const EVAL_CASES: &[Case] = &[
    Case {
        name: "batch_norm2d_eval",
        body: "%x: f32[3, 2, 2, 3] = input\n%rm: f32[2] = constant [0.5, -1]\n%rv: f32[2] = constant [2, 0.25]\n%w: f32[2] = parameter\n%b: f32[2] = parameter\n%y: f32[3, 2, 2, 3] = batch_norm %x, %rm, %rv, %w, %b",
    },
    Case {
        name: "batch_norm1d_eval_without_affine",
        body: "%x: f32[1, 3, 2] = input\n%rm: f32[3] = constant [0, 1, -2]\n%rv: f32[3] = constant [1, 3, 0.5]\n%y: f32[1, 3, 2] = batch_norm %x, %rm, %rv {eps = 0.01}",
    },
];

#[test]
fn batch_norm_in_eval_and_mc_mode_matches_central_differences_and_compiles_alike() {
    for (k, case) in EVAL_CASES.iter().enumerate() {
        let graph = graph(case);
        let leaves = f32_leaves(&graph);
        let wrt: Vec<&str> = leaves.iter().map(String::as_str).collect();
        for mode in [Mode::Eval, Mode::Mc] {
            check_finite_differences_in(mode, &graph, &wrt, 31 + k as u64, 12, 1e-6)
                .unwrap_or_else(|e| panic!("{} {mode:?}: {e}", case.name));
            let (grads, _) = with_gradients(&graph, &wrt);
            check_jit_in(
                mode,
                &grads,
                41 + k as u64,
                Gemm::Reference,
                Agreement::Bits,
            )
            .unwrap_or_else(|e| panic!("{} {mode:?}: {e}", case.name));
        }
    }
}
