//! Dropout forward, measured beside its limits in the same run (issue 4).
//!
//! For each size and `p`, under `dropout/p{p}/{n}/`: the JIT (`jit-1t`, `jit-2t`, outputs
//! preallocated through `run_into`), the scale loop `y = x * s` (`scale-1t`, `scale-2t`: the
//! memory-bandwidth limit of an out-of-place op), a plain-Rust fused bit-plane dropout compiled
//! by rustc (`rust-bitplane-1t`, `-2t`, `support/bitplane.rs`, bit-exact with the interpreter),
//! and a plain two-pass dropout (`two-pass-1t`: a u32 per element from `SmallRng` into a mask
//! buffer, then a branch-free apply). Then Dropout2d, AlphaDropout, the `ir/dropout.ir` call at
//! 4,096 elements, SimpleNet's forward, and compile times.
//!
//! `cargo bench --bench dropout -- 'p0.5/67108864'` runs one case; throughputs are elements.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group};
use dropjit::{CompiledGraph, Compiler, Generator, Mode, ParameterStore, Tensor, text};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use support::bitplane;

const SIZES: [usize; 4] = [4_096, 262_144, 4_194_304, 67_108_864];
const PROBABILITIES: [f64; 3] = [0.5, 0.1, 0.3];

/// A rayon pool of two threads for the plain-Rust two-thread baselines.
fn pool2() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool of two threads")
}

/// `n` values spread over [-2, 2) (cheap to make at 64M elements).
fn input(n: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9u32;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1 << 22) as f32 - 2.0
        })
        .collect()
}

/// A compiled one-dropout graph over `shape` and its bound input.
fn compiled(op: &str, shape: &[usize], p: f64, mode: Mode, threads: usize) -> CompiledGraph {
    let dims = shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let source = format!(
        "graph g {{\n %x: f32[{dims}] = input\n %y: f32[{dims}] = {op} %x {{p = {p:?}}}\n output y = %y\n}}"
    );
    let graph = text::parse(&source).expect("a valid graph");
    (Compiler::new().mode(mode).threads(threads).compile(&graph)).expect("compiles")
}

/// Benchmarks `compiled.run_into` with preallocated outputs.
fn bench_jit(group: &mut BenchmarkGroup<WallTime>, id: &str, compiled: &CompiledGraph, x: Tensor) {
    let inputs = BTreeMap::from([("x".to_string(), x)]);
    let params = ParameterStore::new();
    let mut generator = Generator::new(1);
    let mut outputs = compiled
        .run(&mut generator, &inputs, &params)
        .expect("runs");
    group.bench_function(id, |b| {
        b.iter(|| {
            (compiled.run_into(&mut generator, &inputs, &params, &mut outputs)).expect("runs")
        })
    });
}

/// Sample counts and times that keep the default run short.
fn configure(group: &mut BenchmarkGroup<WallTime>, n: usize) {
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(if n > 1 << 24 { 300 } else { 500 }));
    group.measurement_time(Duration::from_secs(if n > 1 << 24 { 3 } else { 1 }));
    group.throughput(Throughput::Elements(n as u64));
}

fn dropout_forward(c: &mut Criterion) {
    let pool = pool2();
    let mut group = c.benchmark_group("dropout");
    for n in SIZES {
        configure(&mut group, n);
        let x = input(n);
        let x_tensor = Tensor::from_f32([n], x.clone()).expect("a tensor");
        let mut y = vec![0f32; n];
        for p in PROBABILITIES {
            let id = |what: &str| format!("p{p}/{n}/{what}");
            for threads in [1, 2] {
                let jit = compiled("dropout", &[n], p, Mode::Train, threads);
                bench_jit(
                    &mut group,
                    &id(&format!("jit-{threads}t")),
                    &jit,
                    x_tensor.clone(),
                );
            }
            let scale = (1.0 / (1.0 - p)) as f32;
            group.bench_function(id("scale-1t"), |b| {
                b.iter(|| y.iter_mut().zip(&x).for_each(|(y, x)| *y = x * scale))
            });
            group.bench_function(id("scale-2t"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        (y.par_chunks_mut(1 << 16).zip(x.par_chunks(1 << 16))).for_each(|(y, x)| {
                            y.iter_mut().zip(x).for_each(|(y, x)| *y = x * scale)
                        })
                    })
                })
            });
            let source = bitplane::Source {
                seed: 1,
                stream: 0,
                step: 0,
            };
            group.bench_function(id("rust-bitplane-1t"), |b| {
                b.iter(|| bitplane::dropout(source, p, 0, &x, &mut y))
            });
            group.bench_function(id("rust-bitplane-2t"), |b| {
                let chunk = 1 << 16; // a multiple of the 128-element group
                b.iter(|| {
                    pool.install(|| {
                        (y.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).enumerate()).for_each(
                            |(i, (y, x))| {
                                let first = (i * chunk / 128) as u64;
                                bitplane::dropout(source, p, first, x, y)
                            },
                        )
                    })
                })
            });
            two_pass(&mut group, &id("two-pass-1t"), p, &x, &mut y);
        }
    }
    group.finish();
}

/// The two-pass baseline: a u32 per element from `SmallRng` into a mask buffer, then
/// `y = (x * scale) & (u < Q ? !0 : 0)` without a branch.
fn two_pass(group: &mut BenchmarkGroup<WallTime>, id: &str, p: f64, x: &[f32], y: &mut [f32]) {
    let threshold = ((1.0 - p) * 4294967296.0) as u64;
    let scale = (1.0 / (1.0 - p)) as f32;
    let mut rng = SmallRng::seed_from_u64(7);
    let mut mask = vec![0u32; x.len()];
    group.bench_function(id, |b| {
        b.iter(|| {
            mask.iter_mut().for_each(|m| *m = rng.next_u32());
            for ((y, x), &u) in y.iter_mut().zip(x).zip(&mask) {
                let keep = 0u32.wrapping_sub(u64::from(u < threshold as u32) as u32);
                *y = f32::from_bits((x * scale).to_bits() & keep);
            }
        })
    });
}

fn dropout_variants(c: &mut Criterion) {
    let mut group = c.benchmark_group("variants");
    let shape = [32, 64, 56, 56];
    let n: usize = shape.iter().product();
    configure(&mut group, n);
    for threads in [1, 2] {
        let jit = compiled("dropout2d", &shape, 0.5, Mode::Train, threads);
        let x = Tensor::from_f32(shape, input(n)).expect("a tensor");
        bench_jit(
            &mut group,
            &format!("dropout2d/32x64x56x56/jit-{threads}t"),
            &jit,
            x,
        );
    }
    let n = 4_194_304;
    configure(&mut group, n);
    for threads in [1, 2] {
        let jit = compiled("alpha_dropout", &[n], 0.5, Mode::Train, threads);
        let x = Tensor::from_f32([n], input(n)).expect("a tensor");
        bench_jit(
            &mut group,
            &format!("alpha_dropout/{n}/jit-{threads}t"),
            &jit,
            x,
        );
    }
    group.finish();
}

/// `ir/dropout.ir`'s call at 4,096 elements (f32[4, 1024]), eval and train.
fn small_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("small_call");
    configure(&mut group, 4096);
    group.measurement_time(Duration::from_secs(2));
    let x = Tensor::from_f32([4, 1024], input(4096)).expect("a tensor");
    // The memory limit of a call that reads 16 KiB and writes 16 KiB: a copy of the bytes
    // between two buffers made the way the call's input and output are.
    let source = x.as_f32().expect("f32").to_vec();
    let mut copy = vec![0f32; 4096];
    group.bench_function("copy/4096", |b| {
        b.iter(|| copy.copy_from_slice(std::hint::black_box(&source)))
    });
    for (mode, name) in [(Mode::Eval, "eval"), (Mode::Train, "train")] {
        let jit = compiled("dropout", &[4, 1024], 0.5, mode, 1);
        bench_jit(
            &mut group,
            &format!("dropout.ir/4096/{name}"),
            &jit,
            x.clone(),
        );
    }
    group.finish();
}

/// `ir/simple_net.ir` at another batch size.
fn simple_net(batch: usize) -> dropjit::Graph {
    let source = include_str!("../ir/simple_net.ir").replace("f32[32, ", &format!("f32[{batch}, "));
    text::parse(&source).expect("a valid graph")
}

fn simple_net_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("simple_net");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(2));
    for batch in [32, 256] {
        let graph = simple_net(batch);
        let mut params = ParameterStore::new();
        for (name, shape) in [
            ("fc1.weight", vec![256, 784]),
            ("fc1.bias", vec![256]),
            ("fc2.weight", vec![128, 256]),
            ("fc2.bias", vec![128]),
            ("fc3.weight", vec![10, 128]),
            ("fc3.bias", vec![10]),
        ] {
            let n = shape.iter().product();
            let values = input(n).into_iter().map(|v| v * 0.05).collect();
            params.insert(name, Tensor::from_f32(shape, values).expect("a tensor"));
        }
        let x = Tensor::from_f32([batch, 784], input(batch * 784)).expect("a tensor");
        let inputs = BTreeMap::from([("x".to_string(), x)]);
        group.throughput(Throughput::Elements(batch as u64));
        for threads in [1, 2] {
            let compiler = Compiler::new().mode(Mode::Train).threads(threads);
            let jit = compiler.compile(&graph).expect("compiles");
            let mut generator = Generator::new(1);
            let mut outputs = jit.run(&mut generator, &inputs, &params).expect("runs");
            let id = format!("forward/batch{batch}/train-{threads}t");
            group.bench_function(id, |b| {
                b.iter(|| {
                    (jit.run_into(&mut generator, &inputs, &params, &mut outputs)).expect("runs")
                })
            });
        }
    }
    group.finish();
}

fn compile_times(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(2));
    let dropout = text::parse(include_str!("../ir/dropout.ir")).expect("a valid graph");
    let net = simple_net(32);
    for (name, graph) in [("dropout.ir", &dropout), ("simple_net.ir", &net)] {
        for (mode, m) in [(Mode::Train, "train"), (Mode::Eval, "eval")] {
            group.bench_function(format!("{name}/{m}"), |b| {
                b.iter(|| Compiler::new().mode(mode).compile(graph).expect("compiles"))
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    dropout_forward,
    dropout_variants,
    small_call,
    simple_net_forward,
    compile_times
);
/// `criterion_main!`, after the line naming the machine.
fn main() {
    println!("{}", support::machine());
    benches();
    Criterion::default().configure_from_args().final_summary();
}
