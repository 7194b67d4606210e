//! The vector element-wise kernels (`lower::simd`: f32x4 ops, keep bits from the generator
//! per run of groups) against the interpreter, bit for bit: probabilities at the edges of the
//! threshold (`2^-33` keeps all, `1 - 2^-24` has one significant bit of `Q` far down), sizes
//! that are not multiples of 128 or 4, every mask kernel this host runs
//! ([`Isa::available`]: forced AVX2 and portable on an AVX-512 host) on 1 to 3 threads
//! with one unit per chunk, and fused kernels with element-wise ops before and after the
//! dropout on special values.

use std::collections::BTreeMap;

use dropjit::plan::Part;
use dropjit::{Compiler, Generator, Isa, Mode, ParameterStore, Tensor, interp, text};

const PROBABILITIES: [f64; 7] = [
    0.5,
    0.25,
    0.1,
    0.3,
    1.0 / 8589934592.0,
    1.0 - 1.0 / 16777216.0,
    0.75,
];
/// Up to runs of the keep-bit generator and past them: 33 groups are two runs of 16 and one
/// more, plus a partial group.
const SIZES: [usize; 9] = [1, 3, 4, 127, 128, 129, 300, 1029, 33 * 128 + 77];

/// Normal values with NaN, infinities and both zeros mixed in.
fn input(n: usize, seed: u64) -> Tensor {
    let mut x = Generator::new(seed).normal([n], 0.0, 1.0).unwrap();
    let data = x.as_f32_mut().expect("f32");
    let special = [f32::NAN, -0.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, -1.5];
    for (i, v) in data.iter_mut().enumerate().filter(|(i, _)| i % 7 == 3) {
        *v = special[i % special.len()];
    }
    x
}

/// Runs `source` (inputs `x` and `z` of length `n`) in train mode on the interpreter and on
/// the JIT with 1, 2 and 3 threads, one unit per chunk; asserts identical bits and that every
/// mask is made in its loop.
fn check(source: &str, n: usize, what: &str) {
    let x = ("x".to_string(), input(n, 1));
    let z = ("z".to_string(), input(n, 2));
    check_values(source, &BTreeMap::from([x, z]), what, true);
}

/// Like [`check`] over `values`; `in_loop`: no mask is drawn before its loop.
fn check_values(source: &str, values: &BTreeMap<String, Tensor>, what: &str, in_loop: bool) {
    let graph = text::parse(source).expect("a valid graph");
    let n = values["x"].numel();
    let expected = interp::run(&graph, Mode::Train, &mut Generator::new(9), values).expect("runs");
    for (kernel, threads) in (Isa::available().into_iter()).flat_map(|k| [(k, 1), (k, 2), (k, 3)]) {
        let compiler = Compiler::new().mode(Mode::Train).verify(true);
        let compiler = (compiler.threads(threads).max_chunk_units(1)).isa(kernel);
        let compiled = compiler.compile(&graph).expect("compiles");
        let vector = (compiled.phases().iter()).all(|p| !matches!(p.part, Part::Draw(_)));
        assert_eq!(vector, in_loop, "{what}: masks made in the loop?");
        let got = compiled.run(&mut Generator::new(9), values, &ParameterStore::new());
        for ((name, e), (_, g)) in expected.iter().zip(&got.expect("runs")) {
            let bits = |t: &Tensor| t.to_le_bytes();
            let same = bits(e) == bits(g);
            assert!(
                same,
                "{what}, n = {n}, {threads} threads, {kernel:?}: {name} differs"
            );
        }
    }
}

fn one_dropout(op: &str, p: f64, n: usize) -> String {
    format!(
        "graph g {{\n %x: f32[{n}] = input\n %z: f32[{n}] = input\n \
         %y: f32[{n}] = {op} %x {{p = {p:?}, stream = 3}}\n output y = %y\n}}"
    )
}

#[test]
fn dropout_matches_the_interpreter_at_edge_probabilities_and_sizes() {
    for p in PROBABILITIES {
        for n in SIZES {
            check(
                &one_dropout("dropout", p, n),
                n,
                &format!("dropout p = {p}"),
            );
        }
    }
}

#[test]
fn alpha_dropout_matches_the_interpreter() {
    for p in [0.5, 0.1, 0.3] {
        for n in [5, 128, 1029] {
            let what = format!("alpha_dropout p = {p}");
            check(&one_dropout("alpha_dropout", p, n), n, &what);
        }
    }
}

#[test]
fn fused_ops_around_two_dropouts_match_the_interpreter() {
    for n in [7, 256, 391] {
        let source = format!(
            "graph g {{
               %x: f32[{n}] = input
               %z: f32[{n}] = input
               %a: f32[{n}] = relu %x
               %b: f32[{n}] = maximum %a, %z
               %c: f32[{n}] = dropout %b {{p = 0.1, stream = 0}}
               %d: f32[{n}] = mul %c, %z
               %e: f32[{n}] = sqrt %d
               %f: f32[{n}] = div %e, %x
               %g: f32[{n}] = sub %f, %z
               %h: f32[{n}] = neg %g
               %i: f32[{n}] = alpha_dropout %h {{p = 0.3, stream = 1}}
               %j: f32[{n}] = maximum %z, %i
               %k: f32[{n}] = add %j, %c
               output k = %k
               output c = %c
             }}"
        );
        check(&source, n, "fused kernel");
    }
}

#[test]
fn a_two_dimensional_dropout_of_many_groups_matches_the_interpreter() {
    let source = "graph g {
       %x: f32[6, 1000] = input
       %z: f32[6, 1000] = input
       %y: f32[6, 1000] = dropout %x {p = 0.3, stream = 5}
       %w: f32[6, 1000] = relu %y
       output w = %w
     }";
    let graph = text::parse(source).expect("a valid graph");
    let x = Tensor::from_f32([6, 1000], input(6000, 4).as_f32().expect("f32").to_vec());
    let z = Tensor::from_f32([6, 1000], input(6000, 5).as_f32().expect("f32").to_vec());
    let values = BTreeMap::from([
        ("x".to_string(), x.expect("a tensor")),
        ("z".to_string(), z.expect("a tensor")),
    ]);
    let expected = interp::run(&graph, Mode::Train, &mut Generator::new(3), &values).expect("runs");
    for threads in [1, 2] {
        let compiled = (Compiler::new().mode(Mode::Train).threads(threads))
            .compile(&graph)
            .expect("compiles");
        let got = compiled.run(&mut Generator::new(3), &values, &ParameterStore::new());
        assert_eq!(got.expect("runs"), expected, "{threads} threads");
    }
}

/// Channel masks (keep bytes drawn first, one per 4+ elements) in vector loops (kernels of a
/// group or more; smaller ones are one partial group, without a vector loop), and broadcast
/// masks that stay on the scalar loop (a mask byte per fewer than 4 elements, or not trailing).
#[test]
fn channel_and_broadcast_masks_match_the_interpreter() {
    // (op, shape, vector loop)
    let cases = [
        ("dropout2d %x {p = 0.3}", vec![4, 5, 4, 3], true),
        ("dropout2d %x {p = 0.5}", vec![6, 7, 2, 2], true),
        ("dropout1d %x {p = 0.1}", vec![18, 8], true),
        ("dropout3d %x {p = 0.3}", vec![4, 3, 2, 2, 3], true),
        ("feature_alpha_dropout %x {p = 0.3}", vec![4, 6, 20], true),
        (
            "dropout %x {p = 0.3, broadcast_dims = [1, 2]}",
            vec![40, 4, 5],
            true,
        ),
        ("dropout1d %x {p = 0.3}", vec![5, 7, 3], false),
        (
            "dropout %x {p = 0.3, broadcast_dims = [0]}",
            vec![6, 44],
            false,
        ),
    ];
    for (op, shape, vector) in cases {
        let dims = (shape.iter().map(|d| d.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        let source = format!(
            "graph g {{\n %x: f32[{dims}] = input\n %z: f32[{dims}] = input\n \
             %r: f32[{dims}] = relu %x\n %y: f32[{dims}] = {op}\n \
             %w: f32[{dims}] = add %y, %r\n output w = %w\n}}"
        );
        let n: usize = shape.iter().product();
        let tensor = |seed| {
            let data = input(n, seed).as_f32().expect("f32").to_vec();
            Tensor::from_f32(shape.clone(), data).expect("a tensor")
        };
        let values = BTreeMap::from([("x".to_string(), tensor(1)), ("z".to_string(), tensor(2))]);
        check_values(&source, &values, op, false);
        let graph = text::parse(&source).expect("a valid graph");
        let compiled = (Compiler::new().mode(Mode::Train).compile(&graph)).expect("compiles");
        assert_eq!(
            compiled.clif().contains("f32x4"),
            vector,
            "{op}: vector loop?"
        );
    }
}

/// One-element operands (an optimizer's learning rate, a loss scale) are splatted into the
/// vector loop, and the gradient ops (`relu_grad`, `dropout_grad`, `equal`, `maximum_weight`)
/// take it too: still bit for bit the interpreter, masks still made in the loop.
#[test]
fn scalar_operands_and_gradient_ops_take_the_vector_loop() {
    for n in [3, 128, 391] {
        let source = format!(
            "graph g {{
               %x: f32[{n}] = input
               %z: f32[{n}] = input
               %s: f32[] = input
               %t: f32[1] = input
               %a: f32[{n}] = dropout %x {{p = 0.3, stream = 0}}
               %b: f32[{n}] = dropout_grad %z {{p = 0.3, stream = 0}}
               %c: f32[{n}] = relu_grad %b, %x
               %d: f32[{n}] = mul %s, %c
               %e: f32[{n}] = sub %a, %d
               %f: f32[{n}] = equal %x, %z
               %g: f32[{n}] = maximum_weight %e, %t
               %h: f32[{n}] = add %f, %g
               %i: f32[{n}] = alpha_dropout_grad %h {{p = 0.5, stream = 1}}
               output e = %e
               output i = %i
             }}"
        );
        let mut values = BTreeMap::from([
            ("x".to_string(), input(n, 1)),
            ("z".to_string(), input(n, 2)),
            ("s".to_string(), Tensor::scalar(0.01)),
        ]);
        let t = Tensor::from_f32([1], vec![0.25]).expect("one element");
        values.insert("t".to_string(), t);
        check_values(&source, &values, "scalar operands", true);
    }
}

/// Row operands (a bias `[C]` or `[1, C]` over `[N, C]`, `C % 4 == 0`) take the vector loop:
/// rows shorter than a group (crossed within it), rows of whole groups, and rows of a partial
/// last group; other broadcasts (`C % 4 != 0`, a column) stay on the scalar loop. Bit for bit
/// the interpreter, masks made in the loop where vectorised.
#[test]
fn row_operands_take_the_vector_loop() {
    // (rows, bias shape, vector loop)
    let cases = [
        (40, "4", true),
        (50, "12", true),
        (9, "1, 40", true),
        (5, "128", true),
        (3, "256", true),
        (7, "20", true),
        (4, "2, 64", true),
        (60, "10", false),
    ];
    for (rows, bias, vector) in cases {
        let dims: Vec<usize> = bias
            .split(", ")
            .map(|d| d.parse().expect("a dim"))
            .collect();
        let c: usize = dims.iter().product();
        // The loop shape: `rows` times the bias's trailing dimensions (leading ones aside).
        let trailing: Vec<String> = (dims.iter().skip_while(|&&d| d == 1))
            .map(|d| d.to_string())
            .collect();
        let shape = format!("{rows}, {}", trailing.join(", "));
        let source = format!(
            "graph g {{
               %x: f32[{shape}] = input
               %z: f32[{shape}] = input
               %b: f32[{bias}] = input
               %y: f32[{shape}] = add %x, %b
               %r: f32[{shape}] = relu %y
               %d: f32[{shape}] = dropout %r {{p = 0.3, stream = 2}}
               %w: f32[{shape}] = mul %b, %d
               output d = %d
               output w = %w
             }}"
        );
        let n = rows * c;
        let tensor = |shape: Vec<usize>, seed| {
            let numel = shape.iter().product();
            let data = input(numel, seed).as_f32().expect("f32").to_vec();
            Tensor::from_f32(shape, data).expect("a tensor")
        };
        let loop_dims: Vec<usize> =
            (shape.split(", ").map(|d| d.parse().expect("a dim"))).collect();
        let values = BTreeMap::from([
            ("x".to_string(), tensor(loop_dims.clone(), 1)),
            ("z".to_string(), tensor(loop_dims, 2)),
            ("b".to_string(), tensor(dims.clone(), 3)),
        ]);
        let what = format!("bias [{bias}] over {n} elements");
        check_values(&source, &values, &what, vector);
        let graph = text::parse(&source).expect("a valid graph");
        let compiled = (Compiler::new().mode(Mode::Train).compile(&graph)).expect("compiles");
        let clif = compiled.clif();
        assert_eq!(clif.contains("f32x4"), vector, "{what}: vector loop?");
    }
}
