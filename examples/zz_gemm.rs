use dropjit::gemm::product;
use dropjit::isa::Isa;
use std::time::Instant;
fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..9 {
        let t = Instant::now();
        let mut reps = 0;
        while t.elapsed().as_secs_f64() < 0.03 {
            f();
            reps += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    best
}
fn main() {
    let peak = 117.0;
    let shapes = [
        ("fwd1 b256", 256, 784, 256, false, true),
        ("fwd2 b256", 256, 256, 128, false, true),
        ("fwd3 b256", 256, 128, 10, false, true),
        ("dW1 b256", 256, 256, 784, true, false),
        ("dW2 b256", 128, 256, 256, true, false),
        ("dX2 b256", 256, 128, 256, false, false),
        ("fwd1 b32", 32, 784, 256, false, true),
        ("dW1 b32", 256, 32, 784, true, false),
    ];
    let mut total = 0.0;
    for (name, m, k, n, at, bt) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let (rsa, csa) = if at { (1, m) } else { (k, 1) };
        let (rsb, csb) = if bt { (1, k) } else { (n, 1) };
        let flops = 2.0 * (m * k * n) as f64;
        print!("{name:10}");
        for isa in Isa::available().into_iter().rev().take(2) {
            let t = time(|| {
                product(
                    isa,
                    (m, k, n),
                    (&a, rsa, csa),
                    (&b, rsb, csb),
                    (&mut c, n, 1),
                )
            });
            if isa == Isa::Avx512 && name.ends_with("b256") {
                total += t;
            }
            print!("  {} {:5.1}%", isa.name(), flops / t / 1e9 / peak * 100.0);
        }
        println!();
    }
    println!("b256 avx512 total {:.1} us", total * 1e6);
}
