//! Host-side randomness: distributions, determinism, stream separation, a golden pin of the
//! algorithms, and use through rand's traits.

use dropjit::rng::host::PhiloxStream;
use dropjit::{Generator, Shape, Tensor};

const N: usize = 1_000_000;

fn f32s(t: &Tensor) -> &[f32] {
    t.as_f32().expect("an f32 tensor")
}

/// Mean and (population) variance in f64.
fn moments(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var)
}

#[test]
fn uniform_is_in_range_with_the_right_moments() {
    let mut g = Generator::new(11);
    let t = g.uniform([N], 0.0, 1.0).unwrap();
    let u = f32s(&t);
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
    let (mean, var) = moments(u.iter().map(|&x| f64::from(x)));
    let n = N as f64;
    // U(0, 1): variance 1/12, fourth central moment 1/80.
    assert!(
        (mean - 0.5).abs() < 5.0 * (1.0 / 12.0 / n).sqrt(),
        "mean {mean}"
    );
    let var_sigma = ((1.0 / 80.0 - 1.0 / 144.0) / n).sqrt();
    assert!((var - 1.0 / 12.0).abs() < 5.0 * var_sigma, "variance {var}");

    let t = g.uniform([1000], -2.0, 3.0).unwrap();
    assert!(f32s(&t).iter().all(|&x| (-2.0..3.0).contains(&x)));
    let mut s = g.host_stream();
    for _ in 0..1000 {
        let x = s.uniform_range(10.0, 10.5);
        assert!((10.0..=10.5).contains(&x), "{x}");
    }
}

#[test]
fn normal_has_mean_0_variance_1_and_sane_tails() {
    let mut g = Generator::new(12);
    let t = g.normal([N], 0.0, 1.0).unwrap();
    let z = f32s(&t);
    let n = N as f64;
    let (mean, var) = moments(z.iter().map(|&x| f64::from(x)));
    assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
    // The sample variance of N(0, 1) has standard deviation sqrt(2 / n).
    assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {var}");
    // P(|z| > 3) = 0.0026998; u1 >= 2^-24 bounds |z| by sqrt(48 ln 2) = 5.77.
    let beyond_3 = z.iter().filter(|x| x.abs() > 3.0).count() as f64;
    let p3 = 0.0026998;
    assert!(
        (beyond_3 - p3 * n).abs() < 5.0 * (n * p3 * (1.0 - p3)).sqrt(),
        "{beyond_3} beyond 3 sigma"
    );
    assert!(z.iter().all(|x| x.is_finite() && x.abs() < 5.78));

    let t = g.normal([100_000], 5.0, 0.5).unwrap();
    let (mean, var) = moments(f32s(&t).iter().map(|&x| f64::from(x)));
    assert!(
        (mean - 5.0).abs() < 5.0 * 0.5 / 100_000f64.sqrt(),
        "mean {mean}"
    );
    assert!((var.sqrt() - 0.5).abs() < 0.01, "std {}", var.sqrt());
}

#[test]
fn odd_normal_fills_drop_the_last_sine() {
    let mut a = PhiloxStream::for_name(1, "z");
    let mut b = PhiloxStream::for_name(1, "z");
    let mut out = [0.0f32; 3];
    a.fill_normal(&mut out, 0.0, 1.0);
    let [z0, z1] = b.normal_pair();
    let [z2, _] = b.normal_pair();
    assert_eq!(out.map(f32::to_bits), [z0, z1, z2].map(f32::to_bits));
    assert_eq!(a.next_word(), b.next_word(), "both consumed four words");
}

#[test]
fn randint_is_unbiased_and_covers_its_range() {
    let mut g = Generator::new(13);
    let t = g.randint([N], 0, 3).unwrap();
    let v = t.as_i32().expect("an i32 tensor");
    let mut counts = [0usize; 3];
    for &x in v {
        counts[usize::try_from(x).expect("non-negative")] += 1;
    }
    let (n, p) = (N as f64, 1.0 / 3.0);
    for (value, &c) in counts.iter().enumerate() {
        let sigma = (n * p * (1.0 - p)).sqrt();
        assert!((c as f64 - n * p).abs() < 5.0 * sigma, "{value}: {c}");
    }

    let t = g.randint([2000], -5, 5).unwrap();
    let mut seen = [false; 10];
    for &x in t.as_i32().expect("an i32 tensor") {
        assert!((-5..5).contains(&x));
        seen[(x + 5) as usize] = true;
    }
    assert!(seen.iter().all(|&s| s), "every value of -5..5 drawn");

    // A range of 3 * 2^30: `w % n` would put half the draws below 2^30 instead of a third.
    let low = i32::MIN;
    let high = low.wrapping_add_unsigned(3 << 30);
    let mut s = g.host_stream();
    let below = (0..300_000)
        .filter(|_| s.randint(low, high).unwrap() < low.wrapping_add_unsigned(1 << 30))
        .count() as f64;
    let sigma = (300_000.0 * p * (1.0 - p)).sqrt();
    assert!(
        (below - 100_000.0).abs() < 5.0 * sigma,
        "{below} below 2^30"
    );

    let wide = g.randint([8], i32::MIN, i32::MAX).unwrap();
    assert_eq!(wide.shape(), &Shape::new([8]));
}

#[test]
fn empty_ranges_are_errors() {
    let mut g = Generator::new(0);
    let err = g.randint([4], 3, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "randint needs low < high, but got low 3 and high 3"
    );
    assert!(g.randint([4], 5, -5).is_err());
    assert!(g.host_stream().randint(1, 0).is_err());
}

#[test]
fn same_seed_same_values_other_seed_or_stream_other_values() {
    let draw = |seed| {
        let mut g = Generator::new(seed);
        (
            g.uniform([64], 0.0, 1.0).unwrap(),
            g.normal([64], 0.0, 1.0).unwrap(),
            g.randint([64], 0, 1000).unwrap(),
        )
    };
    assert_eq!(draw(5), draw(5));
    let (u5, n5, r5) = draw(5);
    let (u6, n6, r6) = draw(6);
    assert_ne!(u5, u6);
    assert_ne!(n5, n6);
    assert_ne!(r5, r6);

    // Each tensor has its own stream, so the second uniform differs from the first.
    let mut g = Generator::new(5);
    assert_ne!(
        g.uniform([64], 0.0, 1.0).unwrap(),
        g.uniform([64], 0.0, 1.0).unwrap()
    );
    // Other steps of one stream differ too.
    let mut a = PhiloxStream::new(5, 1 << 31, 0);
    let mut b = PhiloxStream::new(5, 1 << 31, 1);
    let words_a: Vec<u32> = (0..8).map(|_| a.next_word()).collect();
    let words_b: Vec<u32> = (0..8).map(|_| b.next_word()).collect();
    assert_ne!(words_a, words_b);
}

#[test]
fn a_tensor_does_not_depend_on_earlier_draw_sizes() {
    let mut small = Generator::new(9);
    small.uniform([3], 0.0, 1.0).unwrap();
    let mut large = Generator::new(9);
    large.uniform([5000], 0.0, 1.0).unwrap();
    assert_eq!(
        small.normal([16], 0.0, 1.0).unwrap(),
        large.normal([16], 0.0, 1.0).unwrap()
    );
}

#[test]
fn named_streams_differ_by_name_and_ignore_order() {
    let fill = |name: &str| {
        let mut s = PhiloxStream::for_name(42, name);
        (0..16).map(|_| s.uniform()).collect::<Vec<f32>>()
    };
    let (w, b) = (fill("fc1.weight"), fill("fc1.bias"));
    assert_ne!(w, b);
    assert_ne!(fill("x"), fill("y"));
    // Filling in the other order gives the same values: each name is a pure function.
    let (b2, w2) = (fill("fc1.bias"), fill("fc1.weight"));
    assert_eq!((w, b), (w2, b2));
    assert!(PhiloxStream::for_name(42, "x").stream() >= 1 << 31);
    assert_ne!(fill("x"), {
        let mut s = PhiloxStream::for_name(43, "x");
        (0..16).map(|_| s.uniform()).collect::<Vec<f32>>()
    });
}

/// Pins the algorithms. Computed by this implementation and, independently, by
/// `python3 tests/contract/check_masks.py --host-words --seed 0 --name fc1.weight`
/// (its own Philox, FNV-1a and Box-Muller): both print exactly these values.
#[test]
fn golden_values_for_seed_0_and_one_name() {
    let mut s = PhiloxStream::for_name(0, "fc1.weight");
    assert_eq!(s.stream(), 0xd152_06ad);
    let words: Vec<u32> = (0..8).map(|_| s.next_word()).collect();
    assert_eq!(
        words,
        [
            0x3b9d2c02, 0x5b651b23, 0x5efaa539, 0x248b7be6, 0xed6a22e6, 0x2a107748, 0x16eef377,
            0x17fbc3b6
        ]
    );
    let mut s = PhiloxStream::for_name(0, "fc1.weight");
    let uniforms: Vec<u32> = (0..8).map(|_| s.uniform().to_bits()).collect();
    assert_eq!(
        uniforms,
        [
            0x3e6e74b0, 0x3eb6ca36, 0x3ebdf54a, 0x3e122dec, 0x3f6d6a22, 0x3e2841dc, 0x3db77798,
            0x3dbfde18
        ]
    );
    let mut s = PhiloxStream::for_name(0, "fc1.weight");
    let mut normals = [0.0f32; 8];
    s.fill_normal(&mut normals, 0.0, 1.0);
    assert_eq!(
        normals.map(f32::to_bits),
        [
            0xbf881b1f, 0x3faaf5f2, 0x3f60f3c4, 0x3f8cda1a, 0x3e4bda55, 0x3eaaaa12, 0x3fe9d8a0,
            0x3f9c1d17
        ]
    );
}

#[test]
fn usable_through_rand_traits() {
    use rand::{Rng, RngExt};
    let mut s = PhiloxStream::for_name(0, "fc1.weight");
    let mut words = PhiloxStream::for_name(0, "fc1.weight");
    let first = words.next_word();
    let second = words.next_word();
    assert_eq!(
        s.random::<u64>(),
        u64::from(first) | u64::from(second) << 32
    );
    assert_eq!(s.next_u32(), words.next_word());
    let mut bytes = [0u8; 6];
    s.fill_bytes(&mut bytes);
    let w = words.next_word().to_le_bytes();
    let v = words.next_word().to_le_bytes();
    assert_eq!(bytes, [w[0], w[1], w[2], w[3], v[0], v[1]]);
    for _ in 0..100 {
        let x: i64 = s.random_range(-3..7);
        assert!((-3..7).contains(&x));
    }
    let _coin: bool = s.random_bool(0.5);
}
