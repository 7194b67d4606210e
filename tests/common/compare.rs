//! Comparing a JIT result with the interpreter's: bit for bit, or within a tolerance where the
//! GEMM crate sums in its own order.

use dropjit::Tensor;

/// How two values may differ.
#[derive(Clone, Copy)]
pub enum Agreement {
    /// Every bit, except that any NaN matches any NaN.
    Bits,
    /// Within `tolerance * (1 + max(|a|, |b|))`, or both non-finite (the blocked GEMM fuses
    /// multiply-adds, so it overflows elsewhere than the reference).
    Within(f32),
}

/// `Ok` if `got` agrees with `expected`; else the first differing element, both ways printed.
pub fn compare(expected: &Tensor, got: &Tensor, agreement: Agreement) -> Result<(), String> {
    if expected.ty() != got.ty() {
        return Err(format!("type {} vs {}", expected.ty(), got.ty()));
    }
    if let (Some(e), Some(g)) = (expected.as_bool(), got.as_bool()) {
        return if e == g {
            Ok(())
        } else {
            Err(format!("{e:?} vs {g:?}"))
        };
    }
    if let (Some(e), Some(g)) = (expected.as_i32(), got.as_i32()) {
        return if e == g {
            Ok(())
        } else {
            Err(format!("{e:?} vs {g:?}"))
        };
    }
    let (e, g) = (expected.as_f32().expect("f32"), got.as_f32().expect("f32"));
    for (i, (&a, &b)) in e.iter().zip(g).enumerate() {
        let same = match agreement {
            // Rust leaves NaN payloads unspecified (LLVM may commute `a + b`), so any NaN
            // matches any NaN; every other value, -0.0 included, must match bit for bit.
            Agreement::Bits => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            // Non-finite values agree with each other: where a product overflows, a fused
            // multiply-add keeps it exact, so `inf - inf = NaN` on one path is `±inf` on the
            // other (seed 137 of the guard-page test's random graphs).
            Agreement::Within(tolerance) => {
                a.to_bits() == b.to_bits()
                    || (!a.is_finite() && !b.is_finite())
                    || (a - b).abs() <= tolerance * (1.0 + a.abs().max(b.abs()))
            }
        };
        if !same {
            return Err(format!(
                "element {i}: interpreter {a:?} ({:#010x}), JIT {b:?} ({:#010x})",
                a.to_bits(),
                b.to_bits()
            ));
        }
    }
    Ok(())
}
