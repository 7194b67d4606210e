use dropjit::{Compiler, Generator, Mode, ParameterStore, Tensor, text};
use std::collections::BTreeMap;
fn main() {
    let n = 1usize << 26;
    let p: f64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(0.1);
    let source = format!(
        "graph g {{\n %x: f32[{n}] = input\n %y: f32[{n}] = dropout %x {{p = {p:?}}}\n output y = %y\n}}"
    );
    let graph = text::parse(&source).unwrap();
    let compiled = Compiler::new().mode(Mode::Train).compile(&graph).unwrap();
    let x = Tensor::from_f32([n], (0..n).map(|i| i as f32).collect()).unwrap();
    let inputs = BTreeMap::from([("x".to_string(), x)]);
    let params = ParameterStore::new();
    let mut g = Generator::new(1);
    let mut out = compiled.run(&mut g, &inputs, &params).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..40 {
        compiled
            .run_into(&mut g, &inputs, &params, &mut out)
            .unwrap();
    }
    println!(
        "{:.2} G elem/s",
        40.0 * n as f64 / t.elapsed().as_secs_f64() / 1e9
    );
}
