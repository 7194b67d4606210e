//! Statistical checks of the dropout modules, with fixed seeds and bounds of at least five
//! standard deviations (so a correct implementation fails about once in 3.5 million runs of
//! a check, and these seeds are fixed anyway): drop shares, exact kept values, preserved
//! means, whole-channel drops, alpha dropout's mean and variance, and independence of masks
//! across calls, steps and streams.

use std::collections::BTreeMap;

use dropjit::graph::Dropout as DropoutAttrs;
mod nn_support;

use dropjit::nn::{self, Module, Var};
use dropjit::{Compiler, DropoutKind, Generator, Mode, ParameterStore, Tensor, TensorType};
use nn_support::Twice;

/// 2^20 elements.
const SHAPE: [usize; 2] = [1024, 1024];

fn input(seed: u64, shape: &[usize]) -> Tensor {
    // Away from zero, so a zero output always means a dropped element.
    Generator::new(seed)
        .uniform(shape.to_vec(), 0.5, 1.5)
        .unwrap()
}

fn values(t: &Tensor) -> &[f32] {
    t.as_f32().expect("f32 output")
}

fn kept(y: &Tensor) -> Vec<bool> {
    values(y).iter().map(|&v| v != 0.0).collect()
}

/// Pearson correlation of two indicator sequences.
fn correlation(a: &[bool], b: &[bool]) -> f64 {
    let n = a.len() as f64;
    let mean = |v: &[bool]| v.iter().filter(|&&k| k).count() as f64 / n;
    let (ma, mb) = (mean(a), mean(b));
    let both = a.iter().zip(b).filter(|&(&x, &y)| x && y).count() as f64 / n;
    (both - ma * mb) / (ma * (1.0 - ma) * mb * (1.0 - mb)).sqrt()
}

#[test]
fn drop_share_kept_values_and_mean_match_p() {
    let x = input(1, &SHAPE);
    let xs = values(&x);
    let n = xs.len() as f64;
    for (i, p) in [0.1, 0.2, 0.5, 0.7, 0.9].into_iter().enumerate() {
        let dropout = nn::Dropout::new(p).unwrap();
        let mut g = Generator::new(40 + i as u64);
        let y = dropout.forward_with(&Var::new(x.clone()), &mut g).unwrap();
        let y = y.tensor().unwrap();
        let share = y.zero_share();
        let sigma = (p * (1.0 - p) / n).sqrt();
        assert!((share - p).abs() < 5.0 * sigma, "p {p}: share {share}");

        let scale = (1.0f64 / (1.0 - p)) as f32;
        for (&xi, &yi) in xs.iter().zip(values(y)) {
            assert!(
                yi.to_bits() == 0 || yi.to_bits() == (xi * scale).to_bits(),
                "p {p}: {xi} -> {yi}"
            );
        }

        // E[y | x] = x; Var(mean y | x) = sum x^2 * p / (1 - p) / n^2.
        let sum_sq: f64 = xs.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let sigma_mean = (sum_sq * p / (1.0 - p)).sqrt() / n;
        let diff = y.mean() - x.mean();
        assert!(diff.abs() < 5.0 * sigma_mean, "p {p}: mean moved by {diff}");
    }
}

/// Checks that every channel (all elements sharing the leading `channel_dims` coordinates) is
/// dropped or kept as a whole, with kept elements `kept(x)` and dropped ones `dropped`, and
/// returns the share of dropped channels.
fn channel_drop_share(
    x: &Tensor,
    y: &Tensor,
    channel_dims: usize,
    dropped: f32,
    kept: impl Fn(f32) -> f32,
) -> (f64, usize) {
    let dims = x.shape().dims();
    let channels: usize = dims[..channel_dims].iter().product();
    let size = x.numel() / channels;
    let mut drops = 0;
    for c in 0..channels {
        let range = c * size..(c + 1) * size;
        let xs = &values(x)[range.clone()];
        let ys = &values(y)[range];
        let is_dropped: Vec<bool> = (xs.iter().zip(ys))
            .map(|(&xi, &yi)| {
                if yi.to_bits() == dropped.to_bits() {
                    true
                } else {
                    assert_eq!(
                        yi.to_bits(),
                        kept(xi).to_bits(),
                        "kept value of channel {c}"
                    );
                    false
                }
            })
            .collect();
        assert!(
            is_dropped.iter().all(|&d| d == is_dropped[0]),
            "channel {c} is partly dropped"
        );
        drops += usize::from(is_dropped[0]);
    }
    (drops as f64 / channels as f64, channels)
}

/// A module, its kind, an input shape and the number of leading dimensions naming a channel.
type Case = (Box<dyn Module>, DropoutKind, Vec<usize>, usize);

#[test]
fn channel_wise_variants_drop_whole_channels_only() {
    let p = 0.3;
    let cases: [Case; 6] = [
        (
            Box::new(nn::Dropout1d::new(p).unwrap()),
            DropoutKind::Dropout1d,
            vec![64, 64, 16],
            2,
        ),
        (
            Box::new(nn::Dropout1d::new(p).unwrap()),
            DropoutKind::Dropout1d,
            vec![256, 16],
            1,
        ),
        (
            Box::new(nn::Dropout2d::new(p).unwrap()),
            DropoutKind::Dropout2d,
            vec![32, 64, 4, 4],
            2,
        ),
        (
            Box::new(nn::Dropout2d::new(p).unwrap()),
            DropoutKind::Dropout2d,
            vec![256, 4, 4],
            1,
        ),
        (
            Box::new(nn::Dropout3d::new(p).unwrap()),
            DropoutKind::Dropout3d,
            vec![16, 32, 2, 2, 2],
            2,
        ),
        (
            Box::new(nn::FeatureAlphaDropout::new(p).unwrap()),
            DropoutKind::FeatureAlphaDropout,
            vec![32, 64, 4, 4],
            2,
        ),
    ];
    for (i, (module, kind, shape, channel_dims)) in cases.into_iter().enumerate() {
        let x = input(2, &shape);
        let mut g = Generator::new(70 + i as u64);
        let y = nn::with_generator(&mut g, || module.forward(&Var::new(x.clone()))).unwrap();
        let y = y.tensor().unwrap();
        let attrs = DropoutAttrs::new(kind, p, 0);
        let (share, channels) = if kind.is_alpha() {
            let (a, b, c) = attrs.alpha_coefficients();
            channel_drop_share(&x, y, channel_dims, c, |v| v * a + b)
        } else {
            let scale = attrs.scale();
            channel_drop_share(&x, y, channel_dims, 0.0, |v| v * scale)
        };
        let sigma = (p * (1.0 - p) / channels as f64).sqrt();
        assert!(
            (share - p).abs() < 5.0 * sigma,
            "{kind} {shape:?}: share {share}"
        );
    }
}

#[test]
fn alpha_dropout_keeps_mean_zero_and_variance_one() {
    let x = Generator::new(3).normal(SHAPE.to_vec(), 0.0, 1.0).unwrap();
    let n = x.numel() as f64;
    for (i, p) in [0.1, 0.2, 0.5].into_iter().enumerate() {
        let alpha = nn::AlphaDropout::new(p).unwrap();
        let mut g = Generator::new(90 + i as u64);
        let y = alpha.forward_with(&Var::new(x.clone()), &mut g).unwrap();
        let ys: Vec<f64> = values(y.tensor().unwrap())
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let mean = ys.iter().sum::<f64>() / n;
        let var = ys.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let m4 = ys.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n;
        // The population has mean 0 and variance 1; the sample mean's deviation is 1/sqrt(n)
        // and the sample variance's sqrt((m4 - 1) / n).
        assert!(mean.abs() < 5.0 / n.sqrt(), "p {p}: mean {mean}");
        let sigma_var = ((m4 - 1.0) / n).sqrt();
        assert!((var - 1.0).abs() < 5.0 * sigma_var, "p {p}: variance {var}");
    }
}

#[test]
fn successive_calls_draw_different_independent_masks() {
    let x = Var::new(input(4, &SHAPE));
    let n = x.shape().numel() as f64;
    for p in [0.2, 0.5] {
        let dropout = nn::Dropout::new(p).unwrap();
        let mut g = Generator::new(5);
        let masks: Vec<Vec<bool>> = (0..3)
            .map(|_| kept(dropout.forward_with(&x, &mut g).unwrap().tensor().unwrap()))
            .collect();
        assert_eq!(g.step(), 3);
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            assert_ne!(masks[a], masks[b]);
            // Independent masks agree with probability p^2 + (1-p)^2; consecutive steps are
            // uncorrelated.
            let q = p * p + (1.0 - p) * (1.0 - p);
            let agree = (masks[a].iter().zip(&masks[b]))
                .filter(|(x, y)| x == y)
                .count() as f64
                / n;
            assert!(
                (agree - q).abs() < 5.0 * (q * (1.0 - q) / n).sqrt(),
                "p {p}: {agree}"
            );
            let r = correlation(&masks[a], &masks[b]);
            assert!(r.abs() < 5.0 / n.sqrt(), "p {p}, calls {a} {b}: r = {r}");
        }
    }
}

#[test]
fn masks_of_neighbouring_streams_are_uncorrelated() {
    let x = input(6, &SHAPE);
    let n = x.numel() as f64;
    for p in [0.1, 0.5] {
        let model = Twice {
            d: nn::Dropout::new(p).unwrap(),
        };
        let graph = nn::trace(&model, &TensorType::f32(SHAPE)).unwrap();
        let compiled = Compiler::new()
            .mode(Mode::Train)
            .compile(&graph.with_every_node_as_output())
            .unwrap();
        let inputs = BTreeMap::from([("x".to_string(), x.clone())]);
        let outputs = compiled
            .run(&mut Generator::new(8), &inputs, &ParameterStore::new())
            .unwrap();
        let mask = |name: &str| kept(&outputs.iter().find(|(n, _)| n == name).unwrap().1);
        let r = correlation(&mask("d"), &mask("d.call2"));
        assert!(r.abs() < 5.0 / n.sqrt(), "p {p}: r = {r}");
    }
}
