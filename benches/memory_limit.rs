//! Issue 17's figures: the drawing dropout kinds at 64M elements (dropout at p = 0.5, 0.1 and
//! 0.9, AlphaDropout and the dropout gradient, which redraws its forward's mask, at p = 0.1)
//! beside the memory limit, as ratios measured in one run on one machine.
//!
//! The machines are shared, and their memory bandwidth drifts by a quarter within minutes, so
//! a ratio of two figures taken minutes apart says little. Here every round times each case
//! between two runs of the scale loop `y = x * s` (the limit of an out-of-place op: read 4
//! bytes, write 4), on 1 and 2 threads, and the figure is the median over rounds of the ratio
//! (elements per second of the case / of the mean of the two scale loops). Also p = 0.1 with
//! each keep-bit kernel this host runs (forced through `Compiler::isa`).
//!
//! `cargo bench --bench memory_limit` (about a minute); `-- ROUNDS` sets the rounds (21).

#[allow(dead_code)] // the bit-plane reference is for the other benches
mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use dropjit::{Compiler, Generator, Isa, Mode, ParameterStore, Tensor, text};
use rayon::prelude::*;

const N: usize = 67_108_864;

/// One case: a compiled graph run into preallocated outputs.
struct Case {
    name: String,
    threads: usize,
    run: Box<dyn FnMut()>,
}

fn case(op: &str, p: f64, threads: usize, kernel: Isa, x: &Tensor) -> Case {
    let source = format!(
        "graph g {{\n %x: f32[{N}] = input\n %y: f32[{N}] = {op} %x {{p = {p:?}, stream = 0}}\n output y = %y\n}}"
    );
    let graph = text::parse(&source).expect("a valid graph");
    let compiler = Compiler::new().mode(Mode::Train).threads(threads);
    let compiled = (compiler.isa(kernel).compile(&graph)).expect("compiles");
    let inputs = BTreeMap::from([("x".to_string(), x.clone())]);
    let params = ParameterStore::new();
    let mut generator = Generator::new(1);
    let mut outputs = (compiled.run(&mut generator, &inputs, &params)).expect("runs");
    let suffix = if kernel == Isa::best() {
        String::new()
    } else {
        format!(" ({})", kernel.name())
    };
    Case {
        name: format!("{op} p = {p}{suffix}"),
        threads,
        run: Box::new(move || {
            (compiled.run_into(&mut generator, &inputs, &params, &mut outputs)).expect("runs")
        }),
    }
}

fn seconds(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = (std::env::args().skip(1))
        .find_map(|a| a.parse().ok())
        .unwrap_or(21);
    let kernels: Vec<&str> = Isa::available().iter().map(|k| k.name()).collect();
    println!("{}", support::machine());
    println!(
        "{N} elements (mask kernels: {}), {rounds} rounds, medians",
        kernels.join(", ")
    );
    let x_values: Vec<f32> = (0..N).map(|i| (i % 1000) as f32 * 0.01 - 5.0).collect();
    let x = Tensor::from_f32([N], x_values.clone()).expect("a tensor");
    let mut y = vec![0f32; N];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool");
    let best = Isa::best();
    let mut cases = Vec::new();
    for (op, p) in [
        ("dropout", 0.5),
        ("dropout", 0.1),
        ("dropout", 0.9),
        ("alpha_dropout", 0.1),
        ("dropout_grad", 0.1),
    ] {
        for threads in [1, 2] {
            cases.push(case(op, p, threads, best, &x));
        }
    }
    for kernel in Isa::available().into_iter().rev().skip(1) {
        cases.push(case("dropout", 0.1, 1, kernel, &x));
    }
    let mut scale = |threads: usize| {
        if threads == 1 {
            seconds(&mut || y.iter_mut().zip(&x_values).for_each(|(y, x)| *y = x * 1.25))
        } else {
            seconds(&mut || {
                pool.install(|| {
                    (y.par_chunks_mut(1 << 16).zip(x_values.par_chunks(1 << 16)))
                        .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, x)| *y = x * 1.25))
                })
            })
        }
    };
    // Warm up every case once (page faults, pools).
    for case in &mut cases {
        (case.run)();
    }
    let mut ratios = vec![Vec::new(); cases.len()];
    let mut times = vec![Vec::new(); cases.len()];
    let mut limits = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, case) in cases.iter_mut().enumerate() {
            // The limit on both sides of the case, so a drift within the round cancels.
            let before = scale(case.threads);
            let time = seconds(&mut case.run);
            let after = scale(case.threads);
            let limit = (before + after) / 2.0;
            limits[case.threads - 1].push(limit);
            times[i].push(time);
            ratios[i].push(limit / time);
        }
    }
    let rate = |seconds: f64| N as f64 / seconds / 1e9;
    for (threads, limit) in [1, 2].iter().zip(&limits) {
        println!(
            "scale loop, {threads} thread(s): {:.2} G elem/s",
            rate(median(limit.clone()))
        );
    }
    println!(
        "{:<36} {:>8} {:>12} {:>14}",
        "case", "threads", "G elem/s", "x scale loop"
    );
    for (i, case) in cases.iter().enumerate() {
        println!(
            "{:<36} {:>8} {:>12.2} {:>14.2}",
            case.name,
            case.threads,
            rate(median(times[i].clone())),
            median(ratios[i].clone())
        );
    }
}
