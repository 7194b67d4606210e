//! Checks dropjit's reading of RNG contract v1 against an independent implementation: for every
//! dropout kind, y is computed here from the library's pieces (mask shape, keep mask, scale,
//! alpha coefficients), written to `.npy` files, and `tests/contract/check_masks.py` (pure
//! Python, written from the contract's text) recomputes it and compares every bit.
//!
//! The apply loop below is deliberately small and separate from the interpreter, so that this
//! test checks the contract's pieces rather than one implementation against itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dropjit::rng::mask::{MaskSource, keep_mask};
use dropjit::{Dropout, DropoutKind, Generator, Shape, Tensor, npy};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract/check_masks.py");

/// y for x under `d` in train mode, straight from the contract (see `graph::dropout`'s docs).
fn apply(d: &Dropout, x: &Tensor, source: MaskSource) -> Tensor {
    let xs = x.as_f32().expect("an f32 input");
    let mask_shape = d.mask_shape(x.shape()).expect("a valid case");
    if d.p == 0.0 {
        return x.clone(); // the identity, bit for bit
    }
    let keep = keep_mask(source, d.p, mask_shape.numel());
    let (x_strides, mask_strides) = (x.shape().strides(), mask_shape.strides());
    let scale = d.scale();
    let (a, b, c) = d.alpha_coefficients();
    let ys = xs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            // Coordinates of element i, set to 0 where the mask has size 1.
            let j: usize = (0..x.shape().rank())
                .map(|k| {
                    let coord = i / x_strides[k] % x.shape().dims()[k];
                    if mask_shape.dims()[k] == 1 {
                        0
                    } else {
                        coord * mask_strides[k]
                    }
                })
                .sum();
            match (d.p == 1.0, d.kind.is_alpha(), keep[j]) {
                (true, _, _) => 0.0,
                (false, false, true) => v * scale,
                (false, false, false) => 0.0,
                (false, true, true) => v * a + b,
                (false, true, false) => c,
            }
        })
        .collect();
    Tensor::from_f32(x.shape().clone(), ys).expect("one value per element")
}

/// An input with normal values and the awkward ones: NaN, ±0, ±inf, a subnormal, and a value
/// whose scaled product overflows.
fn input(shape: &Shape, seed: u64) -> Tensor {
    let mut x = Generator::new(seed)
        .normal(shape.clone(), 0.0, 2.0)
        .unwrap();
    let specials = [
        f32::NAN,
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(3),
        3.0e38,
        -1.0e-40,
    ];
    let data = x.as_f32_mut().expect("f32");
    for (slot, s) in data.iter_mut().step_by(7).zip(specials) {
        *slot = s;
    }
    x
}

/// A fresh directory under the system temp dir, unique per case and process.
fn case_dir(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropjit-contract-{}-{case}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    dir
}

/// Runs the checker on x and y written to `dir`.
fn run_checker(dir: &Path, x: &Tensor, y: &Tensor, d: &Dropout, source: MaskSource) -> Output {
    let (x_path, y_path) = (dir.join("x.npy"), dir.join("y.npy"));
    npy::write(&x_path, x).expect("write x");
    npy::write(&y_path, y).expect("write y");
    let dims: Vec<String> = d.broadcast_dims.iter().map(usize::to_string).collect();
    let mut command = Command::new("python3");
    command
        .arg(SCRIPT)
        .arg("--x")
        .arg(&x_path)
        .arg("--y")
        .arg(&y_path)
        .args(["--kind", d.kind.name()])
        .args(["--p", &d.p.to_string()])
        .args(["--seed", &source.seed.to_string()])
        .args(["--step", &source.step.to_string()])
        .args(["--stream", &source.stream.to_string()]);
    if !dims.is_empty() {
        command.args(["--broadcast-dims", &dims.join(",")]);
    }
    run(command)
}

fn run(mut command: Command) -> Output {
    command.output().unwrap_or_else(|e| {
        panic!("this test needs python3 on the PATH to run {SCRIPT} (CI has it): {e}")
    })
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}stderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every p of the contract's edge cases, on each shape, must match bit for bit.
fn check_kind(kind: DropoutKind, shapes: &[&[usize]], broadcast_dims: &[usize]) {
    for (s, dims) in shapes.iter().enumerate() {
        let shape = Shape::new(dims.to_vec());
        for (q, p) in [0.0, 0.1, 0.5, 1.0, 0.75].into_iter().enumerate() {
            let mut d = Dropout::new(kind, p, 5 + q as u32);
            d.broadcast_dims = broadcast_dims.to_vec();
            let source = MaskSource {
                seed: 0x0123_4567_89ab_cdef ^ (s as u64),
                stream: d.stream,
                step: 17 + q as u32,
            };
            let x = input(&shape, 100 + s as u64);
            let y = apply(&d, &x, source);
            let case = format!("{kind}-{s}-{q}-{}", broadcast_dims.len());
            let dir = case_dir(&case);
            let output = run_checker(&dir, &x, &y, &d, source);
            assert!(
                output.status.success(),
                "{kind} p={p} on {shape}:\n{}",
                describe(&output)
            );
            std::fs::remove_dir_all(&dir).expect("remove the temp dir");
        }
    }
}

#[test]
fn the_checker_passes_its_self_test() {
    let mut command = Command::new("python3");
    command.arg(SCRIPT).arg("--self-test");
    let output = run(command);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn dropout_matches() {
    check_kind(
        DropoutKind::Dropout,
        &[&[300], &[2, 3, 50], &[], &[0, 4]],
        &[],
    );
}

#[test]
fn dropout1d_matches() {
    check_kind(DropoutKind::Dropout1d, &[&[4, 6, 10], &[5, 7]], &[]);
}

#[test]
fn dropout2d_matches() {
    check_kind(DropoutKind::Dropout2d, &[&[3, 50, 2, 2], &[6, 3, 3]], &[]);
}

#[test]
fn dropout3d_matches() {
    check_kind(
        DropoutKind::Dropout3d,
        &[&[2, 3, 2, 2, 2], &[4, 2, 3, 3]],
        &[],
    );
}

#[test]
fn alpha_dropout_matches() {
    check_kind(DropoutKind::AlphaDropout, &[&[257], &[3, 4, 5]], &[]);
}

#[test]
fn feature_alpha_dropout_matches() {
    check_kind(
        DropoutKind::FeatureAlphaDropout,
        &[&[4, 60], &[2, 5, 3, 3]],
        &[],
    );
}

#[test]
fn broadcast_dims_match() {
    // Locked dropout over time, and DropPath-style whole-sample alpha dropout.
    check_kind(DropoutKind::Dropout, &[&[7, 4, 6]], &[0]);
    check_kind(DropoutKind::AlphaDropout, &[&[5, 3, 4]], &[1, 2]);
}

#[test]
fn a_flipped_element_fails_the_check() {
    let d = Dropout::new(DropoutKind::Dropout, 0.5, 3);
    let source = MaskSource {
        seed: 7,
        stream: 3,
        step: 0,
    };
    let x = input(&Shape::new([4, 40]), 1);
    let mut y = apply(&d, &x, source);
    let dir = case_dir("flipped");
    let ok = run_checker(&dir, &x, &y, &d, source);
    assert!(ok.status.success(), "{}", describe(&ok));

    // One ulp off in element 100.
    let data = y.as_f32_mut().expect("f32");
    data[100] = f32::from_bits(data[100].to_bits() ^ 1);
    let bad = run_checker(&dir, &x, &y, &d, source);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{}", describe(&bad));
    assert!(stdout.contains("MISMATCH"), "{stdout}");
    assert!(stdout.contains("1 of 160 elements differ"), "{stdout}");
    assert!(stdout.contains("y[100]"), "{stdout}");

    // The right values at another step fail too: the step is part of the mask.
    let unflipped = apply(&d, &x, source);
    let other_step = MaskSource { step: 1, ..source };
    let bad = run_checker(&dir, &x, &unflipped, &d, other_step);
    assert_eq!(bad.status.code(), Some(1), "{}", describe(&bad));
    std::fs::remove_dir_all(&dir).expect("remove the temp dir");
}
