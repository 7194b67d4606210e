use super::*;

/// Deterministic values with a spread of magnitudes and signs (so that the order of the
/// sums shows in the bits), and a few special values where asked.
fn values(len: usize, seed: u64, special: bool) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let scale = [1.0, 1e-3, 37.0, 1e4][(state & 3) as usize];
            if special && i % 97 == 5 {
                [f32::NAN, f32::INFINITY, -0.0, f32::NEG_INFINITY, 1e-40][i % 5]
            } else {
                unit * scale
            }
        })
        .collect()
}

/// A matrix of `rows x cols` in a buffer, row-major (`true`) or column-major, with a
/// leading dimension a little larger than needed.
fn layout(rows: usize, cols: usize, row_major: bool) -> (usize, usize, usize) {
    if row_major {
        let ld = cols + 3;
        (ld, 1, rows * ld)
    } else {
        let ld = rows + 2;
        (1, ld, cols * ld)
    }
}

fn check(m: usize, k: usize, n: usize, major: [bool; 3], special: bool) {
    let (rsa, csa, len_a) = layout(m, k, major[0]);
    let (rsb, csb, len_b) = layout(k, n, major[1]);
    let (rsc, csc, len_c) = layout(m, n, major[2]);
    let a = values(len_a, (m * 31 + k) as u64, special);
    let b = values(len_b, (k * 17 + n) as u64, special);
    let mut expected = vec![7.0f32; len_c];
    reference(
        (m, k, n),
        (&a, rsa, csa),
        (&b, rsb, csb),
        (&mut expected, rsc, csc),
    );
    for isa in Isa::available() {
        let mut c = vec![7.0f32; len_c];
        product(
            isa,
            (m, k, n),
            (&a, rsa, csa),
            (&b, rsb, csb),
            (&mut c, rsc, csc),
        );
        let same = c
            .iter()
            .zip(&expected)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            same,
            "{isa:?}: {m} x {k} x {n}, layouts {major:?}, special values {special}"
        );
    }
}

#[test]
fn every_isa_gives_the_bits_of_the_definition() {
    let shapes = [
        (1, 1, 1),
        (1, 5, 40),
        (7, 3, 1),
        (6, 16, 16),
        (8, 32, 32),
        (13, 37, 29),
        (32, 70, 10),
        (33, 300, 65),
        (5, 600, 290),
        (70, 9, 270),
    ];
    for (m, k, n) in shapes {
        for bits in 0..8 {
            let major = [bits & 1 == 0, bits & 2 == 0, bits & 4 == 0];
            check(m, k, n, major, false);
        }
        check(m, k, n, [true, false, true], true);
    }
}

#[test]
fn empty_products_write_zeros_or_nothing() {
    for isa in Isa::available() {
        let mut c = vec![7.0f32; 6];
        product(isa, (2, 0, 3), (&[], 0, 1), (&[], 3, 1), (&mut c, 3, 1));
        assert!(c.iter().all(|&x| x.to_bits() == 0), "{isa:?}: {c:?}");
        let mut c = vec![7.0f32; 2];
        product(
            isa,
            (0, 4, 2),
            (&[], 4, 1),
            (&[1.0; 8], 2, 1),
            (&mut c, 2, 1),
        );
        assert_eq!(c, [7.0; 2], "{isa:?}");
    }
}

#[test]
fn rows_computed_apart_give_the_bits_of_one_call() {
    // How threads split a product: by runs of rows, or of columns.
    let (m, k, n) = (37, 291, 45);
    let a = values(m * k, 1, false);
    let b = values(k * n, 2, false);
    for isa in Isa::available() {
        let mut whole = vec![0.0f32; m * n];
        product(isa, (m, k, n), (&a, k, 1), (&b, n, 1), (&mut whole, n, 1));
        let mut parts = vec![0.0f32; m * n];
        for (start, end) in [(0, 1), (1, 17), (17, 37)] {
            let rows = end - start;
            let c = &mut parts[start * n..end * n];
            product(
                isa,
                (rows, k, n),
                (&a[start * k..], k, 1),
                (&b, n, 1),
                (c, n, 1),
            );
        }
        for (start, end) in [(0, 3), (3, 45)] {
            let cols = end - start;
            let c = &mut whole.clone()[..];
            product(
                isa,
                (m, k, cols),
                (&a, k, 1),
                (&b[start..], n, 1),
                (&mut c[start..], n, 1),
            );
            for i in 0..m {
                for j in start..end {
                    assert_eq!(c[i * n + j].to_bits(), whole[i * n + j].to_bits());
                }
            }
        }
        assert!(
            parts
                .iter()
                .zip(&whole)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{isa:?}"
        );
    }
}

#[test]
#[should_panic(expected = "needs 13 elements, the slice has 12")]
fn strides_past_a_slice_are_refused() {
    let mut c = [0.0f32; 4];
    product(
        Isa::Portable,
        (2, 3, 2),
        (&[0.0; 12], 8, 2),
        (&[0.0; 6], 2, 1),
        (&mut c, 2, 1),
    );
}
