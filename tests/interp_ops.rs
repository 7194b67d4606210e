//! The interpreter's arithmetic against values worked out by hand: every non-dropout op, the
//! IEEE edge cases the op docs promise, broadcasting, and the errors a caller can cause.
//! (Dropout has its own file, `interp_dropout.rs`.)

use std::collections::BTreeMap;

use dropjit::graph::{
    Approximate, BatchNorm, BinaryOp, LayerNorm, ReduceOp, Running, Stat, UnaryOp,
};
use dropjit::interp;
use dropjit::{Generator, Graph, Mode, NodeId, Op, Tensor, TensorType};

const NAN: f32 = f32::NAN;
const INF: f32 = f32::INFINITY;

fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
    g.add(name, Op::Input(TensorType::f32(shape.to_vec())), &[])
        .unwrap()
}

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), data.to_vec()).unwrap()
}

fn bind(values: Vec<(&str, Tensor)>) -> BTreeMap<String, Tensor> {
    values
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

/// Runs in eval mode and returns the single output.
fn eval1(g: &Graph, values: Vec<(&str, Tensor)>) -> Tensor {
    let mut rng = Generator::new(1);
    let out = interp::run(g, Mode::Eval, &mut rng, &bind(values)).unwrap();
    out.into_iter().next().unwrap().1
}

/// A graph `y = op(x)` for one op on one input.
fn one_op(op: Op, shape: &[usize]) -> Graph {
    let mut g = Graph::new("one");
    let x = input(&mut g, "x", shape);
    let y = g.add("y", op, &[x]).unwrap();
    g.add_output("y", y).unwrap();
    g
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Bit-exact comparison (NaN equals any NaN).
fn assert_exact(got: &Tensor, shape: &[usize], want: &[f32]) {
    assert_eq!(got.shape().dims(), shape, "{got}");
    let norm = |v: &[f32]| -> Vec<u32> {
        v.iter()
            .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
            .collect()
    };
    assert_eq!(norm(got.as_f32().unwrap()), norm(want), "{got}");
}

fn assert_close(got: &Tensor, want: &[f32], tol: f32) {
    let got_data = got.as_f32().unwrap();
    assert_eq!(got_data.len(), want.len(), "{got}");
    for (g, w) in got_data.iter().zip(want) {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol;
        assert!(ok, "got {got}, want {want:?}");
    }
}

#[test]
fn unary_ops_on_edge_values() {
    let x = [-2.0, -0.0, 0.0, 1.0, NAN, INF, -INF];
    let run = |op| eval1(&one_op(Op::Unary(op), &[7]), vec![("x", t(&[7], &x))]);
    let neg = [2.0, 0.0, -0.0, -1.0, NAN, -INF, INF];
    assert_exact(&run(UnaryOp::Neg), &[7], &neg);
    let relu = [0.0, 0.0, 0.0, 1.0, NAN, INF, 0.0];
    assert_exact(&run(UnaryOp::Relu), &[7], &relu);
    let exp = run(UnaryOp::Exp);
    assert_close(
        &exp,
        &[0.135_335_28, 1.0, 1.0, std::f32::consts::E, NAN, INF, 0.0],
        1e-7,
    );
    let selu = run(UnaryOp::Selu);
    // selu(-2) = 1.0507 * 1.67326 * (e^-2 - 1); selu(-inf) = -1.0507 * 1.67326.
    let want = [-1.520_166_5, 0.0, 0.0, 1.050_701, NAN, INF, -1.758_099_3];
    assert_close(&selu, &want, 1e-6);
    assert_eq!(selu.as_f32().unwrap()[1].to_bits(), 0.0f32.to_bits());

    let y = [0.0, -0.0, 1.0, -1.0, 4.0, INF, NAN];
    let run = |op| eval1(&one_op(Op::Unary(op), &[7]), vec![("x", t(&[7], &y))]);
    let log = [-INF, -INF, 0.0, NAN, 1.386_294_4, INF, NAN];
    assert_close(&run(UnaryOp::Log), &log, 1e-7);
    let sqrt = [0.0, -0.0, 1.0, NAN, 2.0, INF, NAN];
    assert_exact(&run(UnaryOp::Sqrt), &[7], &sqrt);
}

#[test]
fn tanh_keeps_signed_zeros_and_saturates() {
    // tanh(-2) and tanh(1) to f32; tanh(20) rounds to 1; a subnormal passes unchanged.
    let x = [-2.0, -0.0, 0.0, 1.0, NAN, INF, -INF, 20.0, -20.0, 1e-40];
    let y = eval1(
        &one_op(Op::Unary(UnaryOp::Tanh), &[10]),
        vec![("x", t(&[10], &x))],
    );
    let want = [
        -0.964_027_6,
        -0.0,
        0.0,
        0.761_594_2,
        NAN,
        1.0,
        -1.0,
        1.0,
        -1.0,
        1e-40,
    ];
    assert_close(&y, &want, 1e-7);
    let got = y.as_f32().unwrap();
    assert_eq!(bits(&got[1..3]), bits(&[-0.0, 0.0]), "the sign of zero");
    assert_eq!(
        bits(&got[5..10]),
        bits(&want[5..10]),
        "saturated and subnormal exactly"
    );
}

#[test]
fn gelu_follows_both_of_pytorchs_formulas_at_the_edges() {
    // Exact values from mpmath; f32 keeps 1 + erf (or 1 + tanh) to 2^-24, so far left the
    // result is x/2 times a multiple of that (gelu(-5.5) is -1.04e-7 exactly, 0 or -1.6e-7
    // in f32): the tolerance is |x| * 2^-23. gelu(inf) = inf (PyTorch's scalar path; its
    // vectorized erf gives NaN), gelu(-inf) = -inf * 0 = NaN, and zeros keep their sign.
    let x = [
        0.0, -0.0, INF, -INF, NAN, 1.0, -1.0, 3.0, -3.0, -10.0, 1e-30, -5.5,
    ];
    let cases = [
        (
            Approximate::None,
            [
                0.0,
                -0.0,
                INF,
                NAN,
                NAN,
                0.841_344_7,
                -0.158_655_25,
                2.995_950_3,
                -0.004_049_694,
                -0.0,
                5e-31,
                -1.044_425_9e-7,
            ],
        ),
        (
            Approximate::Tanh,
            [
                0.0,
                -0.0,
                INF,
                NAN,
                NAN,
                0.841_192,
                -0.158_808,
                2.996_362_6,
                -0.003_637_392,
                -0.0,
                5e-31,
                -5.927_64e-9,
            ],
        ),
    ];
    for (approximate, want) in cases {
        let op = Op::Unary(UnaryOp::Gelu(approximate));
        let y = eval1(&one_op(op, &[12]), vec![("x", t(&[12], &x))]);
        let got = y.as_f32().unwrap();
        for ((&g, &w), &x) in got.iter().zip(&want).zip(&x) {
            let tolerance = (x.abs() * f32::EPSILON * 2.0).max(w.abs() * 3e-7);
            let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tolerance;
            assert!(ok, "{approximate:?} at {x}: {g}, want {w}");
        }
        let exact = [0, 1, 2, 9].map(|i| got[i]);
        assert_eq!(
            bits(&exact),
            bits(&[0.0, -0.0, INF, -0.0]),
            "{approximate:?}"
        );
    }
}

#[test]
fn sigmoid_is_one_over_one_plus_exp_of_minus_x() {
    // exp(88.8) overflows f32, so sigmoid(-88.8) is +0.0 exactly, as in PyTorch; sigmoid(-87)
    // is tiny but still normal; sigmoid(20) rounds to 1.
    let x = [
        0.0, -0.0, 1.0, -2.0, NAN, INF, -INF, 20.0, -20.0, -87.0, -88.8,
    ];
    let y = eval1(
        &one_op(Op::Unary(UnaryOp::Sigmoid), &[11]),
        vec![("x", t(&[11], &x))],
    );
    let want = [
        0.5,
        0.5,
        0.731_058_6,
        0.119_202_92,
        NAN,
        1.0,
        0.0,
        1.0,
        2.061_153_6e-9,
        1.645_811_4e-38,
        0.0,
    ];
    assert_close(&y, &want, 1e-7);
    let got = y.as_f32().unwrap();
    let exact = [0.5, 0.5, 1.0, 0.0, 1.0, 0.0];
    let at = [0, 1, 5, 6, 7, 10];
    assert_eq!(
        bits(&at.map(|i| got[i])),
        bits(&exact),
        "exact where it saturates"
    );
    for i in [8, 9] {
        assert!(
            (got[i] / want[i] - 1.0).abs() < 1e-6,
            "{} vs {}",
            got[i],
            want[i]
        );
    }
}

fn binary_graph(op: BinaryOp, a: &[usize], b: &[usize]) -> Graph {
    let mut g = Graph::new("binary");
    let x = input(&mut g, "a", a);
    let y = input(&mut g, "b", b);
    let z = g.add("z", Op::Binary(op), &[x, y]).unwrap();
    g.add_output("z", z).unwrap();
    g
}

#[test]
fn binary_ops_broadcast_rows_columns_and_scalars() {
    let a = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let row = t(&[3], &[10.0, 20.0, 30.0]);
    let run = |op, b: &Tensor| {
        let g = binary_graph(op, &[2, 3], b.shape().dims());
        eval1(&g, vec![("a", a.clone()), ("b", b.clone())])
    };
    let add = [11.0, 22.0, 33.0, 14.0, 25.0, 36.0];
    assert_exact(&run(BinaryOp::Add, &row), &[2, 3], &add);
    let sub = [-9.0, -18.0, -27.0, -6.0, -15.0, -24.0];
    assert_exact(&run(BinaryOp::Sub, &row), &[2, 3], &sub);
    let column = t(&[2, 1], &[2.0, -1.0]);
    let mul = [2.0, 4.0, 6.0, -4.0, -5.0, -6.0];
    assert_exact(&run(BinaryOp::Mul, &column), &[2, 3], &mul);
    let div = [0.5, 1.0, 1.5, -4.0, -5.0, -6.0];
    assert_exact(&run(BinaryOp::Div, &column), &[2, 3], &div);
    let scalar = t(&[], &[3.5]);
    let max = [3.5, 3.5, 3.5, 4.0, 5.0, 6.0];
    assert_exact(&run(BinaryOp::Max, &scalar), &[2, 3], &max);

    // Both operands stretch: [2, 1] + [1, 3] -> [2, 3].
    let g = binary_graph(BinaryOp::Add, &[2, 1], &[1, 3]);
    let got = eval1(
        &g,
        vec![
            ("a", t(&[2, 1], &[0.0, 100.0])),
            ("b", t(&[1, 3], &[1.0, 2.0, 3.0])),
        ],
    );
    assert_exact(&got, &[2, 3], &[1.0, 2.0, 3.0, 101.0, 102.0, 103.0]);
}

#[test]
fn maximum_and_division_edge_cases() {
    let a = [NAN, 1.0, -0.0, 0.0, -0.0, -INF];
    let b = [1.0, NAN, 0.0, -0.0, -0.0, -INF];
    let g = binary_graph(BinaryOp::Max, &[6], &[6]);
    let got = eval1(&g, vec![("a", t(&[6], &a)), ("b", t(&[6], &b))]);
    assert_exact(&got, &[6], &[NAN, NAN, 0.0, 0.0, -0.0, -INF]);
    assert_eq!(bits(&got.as_f32().unwrap()[2..4]), bits(&[0.0, 0.0]));

    let g = binary_graph(BinaryOp::Div, &[3], &[3]);
    let got = eval1(
        &g,
        vec![
            ("a", t(&[3], &[1.0, -1.0, 0.0])),
            ("b", t(&[3], &[0.0, 0.0, 0.0])),
        ],
    );
    assert_exact(&got, &[3], &[INF, -INF, NAN]);
}

fn matmul_graph(a: &[usize], b: &[usize]) -> Graph {
    let mut g = Graph::new("mm");
    let x = input(&mut g, "a", a);
    let y = input(&mut g, "b", b);
    let z = g.add("z", Op::MATMUL, &[x, y]).unwrap();
    g.add_output("z", z).unwrap();
    g
}

#[test]
fn matmul_multiplies_matrices() {
    // [[1, 2, 3], [4, 5, 6]] @ [[7, 8], [9, 10], [11, 12]] = [[58, 64], [139, 154]].
    let g = matmul_graph(&[2, 3], &[3, 2]);
    let a = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = t(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    let got = eval1(&g, vec![("a", a), ("b", b)]);
    assert_exact(&got, &[2, 2], &[58.0, 64.0, 139.0, 154.0]);
}

#[test]
fn batched_matmul_broadcasts_batch_dimensions() {
    // a: [2, 1, 2, 2] holds A0 = I and A1 = [[0, 1], [1, 0]] (a swap of rows);
    // b: [3, 2, 2] holds B0, B1, B2. out[i][j] = A_i @ B_j, shape [2, 3, 2, 2].
    let a = t(&[2, 1, 2, 2], &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
    let bs: [[f32; 4]; 3] = [
        [1.0, 2.0, 3.0, 4.0],
        [5.0, 6.0, 7.0, 8.0],
        [9.0, 10.0, 11.0, 12.0],
    ];
    let b = t(&[3, 2, 2], &bs.concat());
    let got = eval1(
        &matmul_graph(&[2, 1, 2, 2], &[3, 2, 2]),
        vec![("a", a), ("b", b)],
    );
    let swapped = |m: [f32; 4]| [m[2], m[3], m[0], m[1]];
    let mut want = Vec::new();
    want.extend(bs.iter().flat_map(|m| *m));
    want.extend(bs.iter().flat_map(|m| swapped(*m)));
    assert_exact(&got, &[2, 3, 2, 2], &want);
}

#[test]
fn matmul_sums_from_zero_in_k_order() {
    // (0 + 1e8 * 1) + 1 * 1 = 1e8 in f32, then + (-1e8 * 1) = 0: the order is observable.
    let g = matmul_graph(&[1, 3], &[3, 1]);
    let a = t(&[1, 3], &[1e8, 1.0, -1e8]);
    let b = t(&[3, 1], &[1.0, 1.0, 1.0]);
    assert_exact(&eval1(&g, vec![("a", a), ("b", b)]), &[1, 1], &[0.0]);
    // All products -0.0: the sum starts at +0.0, so the result is +0.0.
    let a = t(&[1, 2], &[-0.0, -1.0]);
    let b = t(&[2, 1], &[1.0, 0.0]);
    let got = eval1(&matmul_graph(&[1, 2], &[2, 1]), vec![("a", a), ("b", b)]);
    assert_eq!(bits(got.as_f32().unwrap()), bits(&[0.0]));
}

#[test]
fn matmul_flags_read_operands_transposed_with_the_sums_of_explicit_transposes() {
    // aᵀ @ bᵀ by flags against transpose nodes, batched and broadcast: the same bits.
    let text = |flags: &str, a_t: &str, b_t: &str| {
        format!(
            "graph g {{\n %a: f32[2, 1, 5, 3] = input\n %b: f32[4, 2, 5] = input\n{a_t}{b_t} %z: f32[2, 4, 3, 2] = matmul {flags}\n output z = %z\n}}"
        )
    };
    let flagged = text("%a, %b {transpose_a = true, transpose_b = true}", "", "");
    let explicit = text(
        "%at, %bt",
        " %at: f32[2, 1, 3, 5] = transpose %a {perm = [0, 1, 3, 2]}\n",
        " %bt: f32[4, 5, 2] = transpose %b {perm = [0, 2, 1]}\n",
    );
    let a: Vec<f32> = (0..30).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
    let b: Vec<f32> = (0..40).map(|i| (i as f32 * 0.11).cos() / 7.0).collect();
    let run = |source: &str| {
        let g = dropjit::text::parse(source).unwrap();
        let values = vec![("a", t(&[2, 1, 5, 3], &a)), ("b", t(&[4, 2, 5], &b))];
        eval1(&g, values)
    };
    let (flagged, explicit) = (run(&flagged), run(&explicit));
    assert_eq!(
        bits(flagged.as_f32().unwrap()),
        bits(explicit.as_f32().unwrap())
    );
}

fn linear_graph(x: &[usize], out: usize, bias: bool) -> Graph {
    let mut g = Graph::new("linear");
    let xi = input(&mut g, "x", x);
    let inf = x[x.len() - 1];
    let w = g
        .add("w", Op::Parameter(TensorType::f32([out, inf])), &[])
        .unwrap();
    let mut operands = vec![xi, w];
    if bias {
        let b = g
            .add("b", Op::Parameter(TensorType::f32([out])), &[])
            .unwrap();
        operands.push(b);
    }
    let y = g.add("y", Op::Linear { bias }, &operands).unwrap();
    g.add_output("y", y).unwrap();
    g
}

#[test]
fn linear_with_and_without_bias() {
    // x = [[1, 2, 3], [4, 5, 6]], W = [[1, 0, -1], [0.5, 0.5, 0.5]]:
    // x Wᵀ = [[-2, 3], [-2, 7.5]]; with b = [10, -1]: [[8, 2], [8, 6.5]].
    let x = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let w = t(&[2, 3], &[1.0, 0.0, -1.0, 0.5, 0.5, 0.5]);
    let got = eval1(
        &linear_graph(&[2, 3], 2, false),
        vec![("x", x.clone()), ("w", w.clone())],
    );
    assert_exact(&got, &[2, 2], &[-2.0, 3.0, -2.0, 7.5]);
    let b = t(&[2], &[10.0, -1.0]);
    let values = vec![("x", x), ("w", w.clone()), ("b", b.clone())];
    let got = eval1(&linear_graph(&[2, 3], 2, true), values);
    assert_exact(&got, &[2, 2], &[8.0, 2.0, 8.0, 6.5]);
    // Leading dimensions pass through: x [2, 1, 3].
    let x3 = t(&[2, 1, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let got = eval1(
        &linear_graph(&[2, 1, 3], 2, true),
        vec![("x", x3), ("w", w), ("b", b)],
    );
    assert_exact(&got, &[2, 1, 2], &[8.0, 2.0, 8.0, 6.5]);
}

#[test]
fn reshape_and_transpose_move_data() {
    let x = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let g = one_op(Op::Reshape { shape: vec![3, -1] }, &[2, 3]);
    assert_exact(
        &eval1(&g, vec![("x", x.clone())]),
        &[3, 2],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    );
    let g = one_op(Op::Transpose { perm: vec![1, 0] }, &[2, 3]);
    assert_exact(
        &eval1(&g, vec![("x", x)]),
        &[3, 2],
        &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0],
    );

    // [2, 3, 4] with x[i][j][k] = 100 i + 10 j + k, perm [2, 0, 1]: y[k][i][j] = x[i][j][k].
    let data: Vec<f32> = (0..24)
        .map(|n| (100 * (n / 12) + 10 * (n / 4 % 3) + n % 4) as f32)
        .collect();
    let g = one_op(
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        &[2, 3, 4],
    );
    let got = eval1(&g, vec![("x", t(&[2, 3, 4], &data))]);
    let want: Vec<f32> = (0..24)
        .map(|n| {
            let (k, i, j) = (n / 6, n / 3 % 2, n % 3);
            (100 * i + 10 * j + k) as f32
        })
        .collect();
    assert_exact(&got, &[4, 2, 3], &want);

    // i32 data moves too.
    let mut g = Graph::new("ints");
    let x = g.add("x", Op::Input(TensorType::i32([2, 2])), &[]).unwrap();
    let y = g
        .add("y", Op::Transpose { perm: vec![1, 0] }, &[x])
        .unwrap();
    g.add_output("y", y).unwrap();
    let got = eval1(
        &g,
        vec![("x", Tensor::from_i32([2, 2], vec![1, 2, 3, 4]).unwrap())],
    );
    assert_eq!(got, Tensor::from_i32([2, 2], vec![1, 3, 2, 4]).unwrap());
}

fn reduce(op: ReduceOp, axes: &[i64], keepdim: bool, x: &Tensor) -> Tensor {
    let op = Op::Reduce {
        op,
        axes: axes.to_vec(),
        keepdim,
    };
    eval1(&one_op(op, x.shape().dims()), vec![("x", x.clone())])
}

#[test]
fn reductions_over_axes() {
    let x = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_exact(
        &reduce(ReduceOp::Sum, &[0], false, &x),
        &[3],
        &[5.0, 7.0, 9.0],
    );
    assert_exact(
        &reduce(ReduceOp::Sum, &[1], true, &x),
        &[2, 1],
        &[6.0, 15.0],
    );
    assert_exact(&reduce(ReduceOp::Sum, &[], false, &x), &[], &[21.0]);
    assert_exact(&reduce(ReduceOp::Mean, &[-1], false, &x), &[2], &[2.0, 5.0]);
    assert_exact(&reduce(ReduceOp::Max, &[-1], false, &x), &[2], &[3.0, 6.0]);
    assert_exact(&reduce(ReduceOp::Max, &[0, 1], true, &x), &[1, 1], &[6.0]);

    // [2, 2, 2] over axes 0 and 2: out[j] = sum over i, k of x[i][j][k].
    let y = t(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert_exact(
        &reduce(ReduceOp::Sum, &[0, 2], false, &y),
        &[2],
        &[14.0, 22.0],
    );
    assert_exact(
        &reduce(ReduceOp::Sum, &[2, 0], true, &y),
        &[1, 2, 1],
        &[14.0, 22.0],
    );

    // Row-major order is observable: (0 + 1e8) + 1 = 1e8, then - 1e8 = 0.
    let z = t(&[3], &[1e8, 1.0, -1e8]);
    assert_exact(&reduce(ReduceOp::Sum, &[0], false, &z), &[], &[0.0]);
    assert_exact(&reduce(ReduceOp::Mean, &[0], false, &z), &[], &[0.0]);
}

#[test]
fn reductions_at_the_edges() {
    let x = t(&[2, 2], &[1.0, NAN, -INF, -INF]);
    assert_exact(&reduce(ReduceOp::Max, &[1], false, &x), &[2], &[NAN, -INF]);
    assert_exact(&reduce(ReduceOp::Sum, &[1], false, &x), &[2], &[NAN, -INF]);
    let empty = t(&[2, 0], &[]);
    assert_exact(
        &reduce(ReduceOp::Sum, &[1], false, &empty),
        &[2],
        &[0.0, 0.0],
    );
    assert_exact(
        &reduce(ReduceOp::Mean, &[1], false, &empty),
        &[2],
        &[NAN, NAN],
    );
    assert_exact(&reduce(ReduceOp::Sum, &[], false, &empty), &[], &[0.0]);
    assert_exact(&reduce(ReduceOp::Sum, &[0], false, &empty), &[0], &[]);
    let zeros = t(&[2], &[-0.0, -0.0]);
    assert_exact(&reduce(ReduceOp::Max, &[0], false, &zeros), &[], &[-0.0]);
    assert_exact(&reduce(ReduceOp::Sum, &[0], false, &zeros), &[], &[0.0]);
}

fn softmax(x: &Tensor, axis: i64, log: bool) -> Tensor {
    let op = if log {
        Op::LogSoftmax { axis }
    } else {
        Op::Softmax { axis }
    };
    eval1(&one_op(op, x.shape().dims()), vec![("x", x.clone())])
}

#[test]
fn softmax_and_log_softmax_values() {
    // e^(x - 3) = [e^-2, e^-1, 1], s = 1.5032147: y = [0.0900306, 0.2447285, 0.6652410].
    let x = t(&[3], &[1.0, 2.0, 3.0]);
    assert_close(
        &softmax(&x, 0, false),
        &[0.090_030_57, 0.244_728_48, 0.665_241_1],
        3e-7,
    );
    // log s = 0.4076059.
    let want = [-2.407_606, -1.407_606, -0.407_606];
    assert_close(&softmax(&x, -1, true), &want, 1e-6);
    // Along axis 0 of [2, 2]: columns [1, 1] and [0, ln 3].
    let y = t(&[2, 2], &[1.0, 0.0, 1.0, 3f32.ln()]);
    assert_close(&softmax(&y, 0, false), &[0.5, 0.25, 0.5, 0.75], 1e-7);
}

#[test]
fn softmax_handles_infinities_and_large_magnitudes() {
    let x = t(&[2, 2], &[0.0, -INF, 1000.0, 1000.0]);
    assert_exact(&softmax(&x, 1, false), &[2, 2], &[1.0, 0.0, 0.5, 0.5]);
    assert_exact(
        &softmax(&x, 1, true),
        &[2, 2],
        &[0.0, -INF, -std::f32::consts::LN_2, -std::f32::consts::LN_2],
    );
    let big = t(&[2], &[-1000.0, 0.0]);
    assert_exact(&softmax(&big, 0, false), &[2], &[0.0, 1.0]);
    assert_exact(&softmax(&big, 0, true), &[2], &[-1000.0, 0.0]);
    // A row of -inf has m = -inf and x - m = NaN, as in PyTorch.
    let dead = t(&[2], &[-INF, -INF]);
    assert_exact(&softmax(&dead, 0, false), &[2], &[NAN, NAN]);
    let nan = t(&[2], &[NAN, 0.0]);
    assert_exact(&softmax(&nan, 0, false), &[2], &[NAN, NAN]);
}

fn cross_entropy_graph(logits: &[usize], targets: &[usize]) -> Graph {
    let mut g = Graph::new("ce");
    let x = input(&mut g, "logits", logits);
    let y = g
        .add("targets", Op::Input(TensorType::i32(targets.to_vec())), &[])
        .unwrap();
    let loss = g.add("loss", Op::CrossEntropy, &[x, y]).unwrap();
    g.add_output("loss", loss).unwrap();
    g
}

fn cross_entropy(logits: Tensor, targets: Tensor) -> dropjit::Result<Tensor> {
    let g = cross_entropy_graph(logits.shape().dims(), targets.shape().dims());
    let values = bind(vec![("logits", logits), ("targets", targets)]);
    let out = interp::run(&g, Mode::Eval, &mut Generator::new(0), &values)?;
    Ok(out.into_iter().next().unwrap().1)
}

#[test]
fn cross_entropy_is_the_mean_negative_log_likelihood() {
    // Row 0: -log_softmax([1, 2, 3])[2] = log(e^-2 + e^-1 + 1) = 0.4076059;
    // row 1: -log_softmax([1, 1, 1])[0] = ln 3 = 1.0986123. Mean: 0.7531091.
    let logits = t(&[2, 3], &[1.0, 2.0, 3.0, 1.0, 1.0, 1.0]);
    let targets = Tensor::from_i32([2], vec![2, 0]).unwrap();
    let got = cross_entropy(logits, targets).unwrap();
    assert_close(&got, &[0.753_109_1], 1e-6);
    // The documented order, step by step, reproduces the bits.
    let (s0, s1) = (
        (-2f32).exp() + (-1f32).exp() + 1.0,
        (0f32).exp() + (0f32).exp() + (0f32).exp(),
    );
    let (l0, l1) = ((3.0f32 - 3.0) - s0.ln(), (1.0f32 - 1.0) - s1.ln());
    let want = -((0.0 + l0) + l1) / 2.0;
    assert_eq!(got.as_f32().unwrap()[0].to_bits(), want.to_bits());

    // [C] logits with a scalar target.
    let got = cross_entropy(
        t(&[3], &[1.0, 1.0, 1.0]),
        Tensor::from_i32(Vec::<usize>::new(), vec![1]).unwrap(),
    );
    assert_close(&got.unwrap(), &[1.098_612_3], 1e-6);
    // An empty batch: 0 / 0.
    let got = cross_entropy(t(&[0, 3], &[]), Tensor::from_i32([0], vec![]).unwrap());
    assert!(got.unwrap().as_f32().unwrap()[0].is_nan());
}

#[test]
fn cross_entropy_rejects_targets_outside_the_classes() {
    let logits = t(&[2, 3], &[0.0; 6]);
    let err = cross_entropy(logits.clone(), Tensor::from_i32([2], vec![0, 3]).unwrap());
    assert_eq!(
        err.unwrap_err().to_string(),
        "cross_entropy loss: target 3 at batch index 1 is outside 0..3"
    );
    let err = cross_entropy(logits, Tensor::from_i32([2], vec![-1, 0]).unwrap());
    assert_eq!(
        err.unwrap_err().to_string(),
        "cross_entropy loss: target -1 at batch index 0 is outside 0..3"
    );
}

/// `y = batch_norm(x, rm, rv[, w, b]) {eps = 0}` with the running statistics as outputs
/// `mean` and `var`, all operands inputs.
fn batch_norm_graph(x: &[usize], affine: bool) -> Graph {
    let c = x[1];
    let mut g = Graph::new("bn");
    let xs = input(&mut g, "x", x);
    let mut operands = vec![xs, input(&mut g, "rm", &[c]), input(&mut g, "rv", &[c])];
    if affine {
        operands.push(input(&mut g, "w", &[c]));
        operands.push(input(&mut g, "b", &[c]));
    }
    let bn = BatchNorm {
        eps: 0.0,
        affine,
        running_stats: false,
    };
    let y = g.add("y", Op::BatchNorm(bn), &operands).unwrap();
    let momentum = 0.1;
    let stat = |stat| Op::BatchNormRunning(Running { stat, momentum });
    let mean = g.add("mean", stat(Stat::Mean), &[xs, operands[1]]).unwrap();
    let var = g.add("var", stat(Stat::Var), &[xs, operands[2]]).unwrap();
    g.add_output("y", y).unwrap();
    g.add_output("mean", mean).unwrap();
    g.add_output("var", var).unwrap();
    g
}

fn run_mode(g: &Graph, mode: Mode, values: Vec<(&str, Tensor)>) -> dropjit::Result<Vec<Tensor>> {
    let mut rng = Generator::new(1);
    let out = interp::run(g, mode, &mut rng, &bind(values))?;
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

#[test]
fn batch_norm_in_train_mode_uses_the_batch_statistics_and_updates_the_running_ones() {
    let g = batch_norm_graph(&[2, 2], true);
    let values = || {
        vec![
            ("x", t(&[2, 2], &[1.0, 10.0, 3.0, 30.0])),
            ("rm", t(&[2], &[0.0, 1.0])),
            ("rv", t(&[2], &[1.0, 2.0])),
            ("w", t(&[2], &[2.0, 1.0])),
            ("b", t(&[2], &[0.5, 0.0])),
        ]
    };
    let out = run_mode(&g, Mode::Train, values()).unwrap();
    // Channel 0: mean 2, biased var 1, scale 2 / 1, shift 0.5 - 2 * 2; channel 1: mean 20,
    // var 100, scale 1 / 10 (0.1 in f32), shift -(20 * 0.1) = -2 after rounding.
    assert_exact(&out[0], &[2, 2], &[-1.5, -1.0, 2.5, 1.0]);
    // m * batch + (1 - m) * running, the variance unbiased (sum of squares / (n - 1)).
    let (m, keep) = (0.1f32, 0.9f32);
    assert_exact(
        &out[1],
        &[2],
        &[m * 2.0 + keep * 0.0, m * 20.0 + keep * 1.0],
    );
    assert_exact(
        &out[2],
        &[2],
        &[m * 2.0 + keep * 1.0, m * 200.0 + keep * 2.0],
    );
}

#[test]
fn batch_norm_in_eval_and_mc_mode_is_the_affine_map_of_the_running_statistics() {
    let g = batch_norm_graph(&[1, 2, 2], true);
    let values = || {
        vec![
            ("x", t(&[1, 2, 2], &[2.0, 4.0, 0.0, NAN])),
            ("rm", t(&[2], &[1.0, -1.0])),
            ("rv", t(&[2], &[4.0, 0.25])),
            ("w", t(&[2], &[1.0, 2.0])),
            ("b", t(&[2], &[0.0, 1.0])),
        ]
    };
    for mode in [Mode::Eval, Mode::Mc] {
        // scale = w / sqrt(rv) = [0.5, 4], shift = b - rm * scale = [-0.5, 5]; one value
        // per channel is fine, NaN stays in its element.
        let out = run_mode(&g, mode, values()).unwrap();
        assert_exact(&out[0], &[1, 2, 2], &[0.5, 1.5, 5.0, NAN]);
        assert_exact(&out[1], &[2], &[1.0, -1.0]);
        assert_exact(&out[2], &[2], &[4.0, 0.25]);
    }
    // Without the affine map: scale = 1 / sqrt(rv), shift = -(rm * scale).
    let g = batch_norm_graph(&[1, 2, 2], false);
    let out = run_mode(&g, Mode::Eval, values().into_iter().take(3).collect()).unwrap();
    assert_exact(&out[0], &[1, 2, 2], &[0.5, 1.5, 2.0, NAN]);
}

#[test]
fn batch_norm_with_running_stats_uses_them_in_train_mode_too() {
    let source = "graph frozen {
  %x: f32[1, 2, 2] = input
  %rm: f32[2] = input
  %rv: f32[2] = input
  %y: f32[1, 2, 2] = batch_norm %x, %rm, %rv {eps = 0, running_stats = true}
  output y = %y
}";
    let g = dropjit::text::parse(source).unwrap();
    assert_eq!(
        dropjit::text::parse(&g.to_string()).unwrap().to_string(),
        g.to_string()
    );
    let values = vec![
        ("x", t(&[1, 2, 2], &[2.0, 4.0, 0.0, 1.0])),
        ("rm", t(&[2], &[1.0, -1.0])),
        ("rv", t(&[2], &[4.0, 0.25])),
    ];
    // One value per channel is fine: no batch statistics.
    let out = run_mode(&g, Mode::Train, values).unwrap();
    assert_exact(&out[0], &[1, 2, 2], &[0.5, 1.5, 2.0, 4.0]);
}

#[test]
fn batch_norm_over_one_value_per_channel_fails_in_train_mode_only() {
    let g = batch_norm_graph(&[1, 3], false);
    let values = || {
        vec![
            ("x", t(&[1, 3], &[1.0, 2.0, 3.0])),
            ("rm", t(&[3], &[0.0; 3])),
            ("rv", t(&[3], &[1.0; 3])),
        ]
    };
    let err = run_mode(&g, Mode::Train, values()).unwrap_err();
    let message =
        "batch_norm y: expected more than 1 value per channel when training, got input size [1, 3]";
    assert_eq!(err.to_string(), message);
    // The compiler reports it as it specializes the graph for train mode.
    let compiled = dropjit::Compiler::new().mode(Mode::Train).compile(&g);
    assert_eq!(compiled.err().unwrap().to_string(), message);
    assert!(run_mode(&g, Mode::Eval, values()).is_ok());
    // Spatial values count: [1, 3, 2] has two per channel.
    let g = batch_norm_graph(&[1, 3, 2], false);
    let x = ("x", t(&[1, 3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 7.0]));
    let out = run_mode(
        &g,
        Mode::Train,
        vec![x, values()[1].clone(), values()[2].clone()],
    );
    let y = out.unwrap().remove(0);
    let r = 1.0 / 1.0f32.sqrt();
    assert_exact(&y, &[1, 3, 2], &[-r, r, -r, r, -r, r]);
}

#[test]
fn batch_norm_operands_that_do_not_fit_are_type_errors_naming_node_and_shapes() {
    let mut g = Graph::new("bn");
    let x = input(&mut g, "x", &[4, 3, 5]);
    let c3 = input(&mut g, "c3", &[3]);
    let c2 = input(&mut g, "c2", &[2]);
    let v = input(&mut g, "v", &[3]);
    let bn = |affine| {
        Op::BatchNorm(BatchNorm {
            affine,
            ..BatchNorm::new()
        })
    };
    let err = g.add("bn1", bn(true), &[x, c3, v, c3, c2]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm bn1: bias has to be [3], one per channel, but is [2]"
    );
    let err = g.add("bn1", bn(false), &[x, c2, v]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm bn1: running_mean has to be [3], one per channel, but is [2]"
    );
    let err = g.add("bn1", bn(false), &[c3, c3, v]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm bn1: the input has to be [N, C, ...] (rank 2 or more), but is [3]"
    );
    let running = Op::BatchNormRunning(Running {
        stat: Stat::Var,
        momentum: 0.1,
    });
    let err = g.add("rv1", running, &[x, c2]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm_running_var rv1: running_var has to be [3], one per channel, but is [2]"
    );
    let grad = Op::BatchNormInputGrad(BatchNorm::new());
    let err = g.add("dx", grad, &[c3, x, c3, v, c3]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm_input_grad dx: the gradient has to have the input's shape [4, 3, 5], but is [3]"
    );
    let err = g.add("bn1", bn(true), &[x, c3, v]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm bn1: expects 5 operands, but got 3"
    );
}

/// `y = layer_norm(x, w, b) {eps = 0}` over the last dimension of `x`, all operands inputs.
fn layer_norm_graph(x: &[usize]) -> Graph {
    let n = *x.last().unwrap();
    let mut g = Graph::new("ln");
    let operands = [
        input(&mut g, "x", x),
        input(&mut g, "w", &[n]),
        input(&mut g, "b", &[n]),
    ];
    let ln = LayerNorm {
        eps: 0.0,
        ..LayerNorm::new(&[n])
    };
    let y = g.add("y", Op::LayerNorm(ln), &operands).unwrap();
    g.add_output("y", y).unwrap();
    g
}

#[test]
fn layer_norm_normalizes_each_row_with_its_own_statistics() {
    let g = layer_norm_graph(&[3, 4]);
    let x = [1.0, 2.0, 3.0, 4.0, -8.0, 0.0, 8.0, 0.0, 5.0, NAN, 5.0, 5.0];
    let values = vec![
        ("x", t(&[3, 4], &x)),
        ("w", t(&[4], &[1.0, 2.0, 1.0, 0.5])),
        ("b", t(&[4], &[0.0, 0.0, 1.0, 0.0])),
    ];
    let out = run_mode(&g, Mode::Train, values.clone()).unwrap();
    // Row 0: mean 2.5, var 1.25, rstd = 1 / sqrt(1.25) rounded as f32 operations round it.
    let rstd = 1.0f32 / 1.25f32.sqrt();
    // Row 1: mean 0, var 32, rstd = 1 / sqrt(32). Row 2: NaN poisons its row alone.
    let rstd1 = 1.0f32 / 32.0f32.sqrt();
    assert_exact(
        &out[0],
        &[3, 4],
        &[
            -1.5 * rstd,
            -0.5 * rstd * 2.0,
            0.5 * rstd + 1.0,
            1.5 * rstd * 0.5,
            -8.0 * rstd1,
            0.0,
            8.0 * rstd1 + 1.0,
            0.0,
            NAN,
            NAN,
            NAN,
            NAN,
        ],
    );
    // No running statistics: eval mode computes the same.
    assert_eq!(run_mode(&g, Mode::Eval, values).unwrap(), out);
}

#[test]
fn layer_norm_operands_that_do_not_fit_are_type_errors_naming_node_and_shapes() {
    let mut g = Graph::new("ln");
    let x = input(&mut g, "x", &[4, 3, 5]);
    let w = input(&mut g, "w", &[5]);
    let wide = input(&mut g, "wide", &[3, 5]);
    let err = g
        .add("ln1", Op::LayerNorm(LayerNorm::new(&[5])), &[x, wide, w])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer_norm ln1: weight has to be [5] (the normalized shape), but is [3, 5]"
    );
    let plain = LayerNorm {
        weight: false,
        bias: false,
        ..LayerNorm::new(&[4, 5])
    };
    let err = g.add("ln1", Op::LayerNorm(plain), &[x]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer_norm ln1: given normalized_shape = [4, 5], the input has to be [*, 4, 5], but is [4, 3, 5]"
    );
    let err = g
        .add("ln1", Op::LayerNorm(LayerNorm::new(&[5])), &[x])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer_norm ln1: expects 3 operands, but got 1"
    );
}
