//! Sums and means over leading axes (bias gradients) stream rows in vector blocks of columns
//! (`src/lower/reduce.rs`): they must equal the interpreter's fold bit for bit, for column
//! counts that are and are not multiples of the block, with the columns split across threads
//! at any position, and next to reductions over other axes that keep the per-element loop.

use std::collections::BTreeMap;

use dropjit::{Compiler, Generator, Mode, ParameterStore, Tensor, interp, text};

/// `sum` and `mean` of an input of `dims` over its first `leading` axes, plus a sum over the
/// last axis (the other loop order) as a third output.
fn graph(dims: &[usize], leading: usize) -> String {
    let shape = |d: &[usize]| {
        let d: Vec<String> = d.iter().map(usize::to_string).collect();
        d.join(", ")
    };
    let axes: Vec<String> = (0..leading).map(|a| a.to_string()).collect();
    let last = dims.len() - 1;
    format!(
        "graph rows {{
           %x: f32[{x}] = input
           %s: f32[{kept}] = sum %x {{axes = [{axes}]}}
           %m: f32[{kept}] = mean %x {{axes = [{axes}]}}
           %l: f32[{inner}] = sum %x {{axes = [{last}]}}
           output s = %s
           output m = %m
           output l = %l
         }}",
        x = shape(dims),
        kept = shape(&dims[leading..]),
        axes = axes.join(", "),
        inner = shape(&dims[..last]),
    )
}

fn bits(t: &Tensor) -> Vec<u32> {
    (t.as_f32().expect("f32 output").iter())
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn leading_axis_sums_and_means_equal_the_interpreter_bit_for_bit() {
    let shapes: [(&[usize], usize); 7] = [
        (&[32, 256], 1),
        (&[7, 37], 1),
        (&[5, 16], 1),
        (&[3, 4, 21], 2),
        (&[2, 3, 35], 1),
        (&[1, 3], 1),
        (&[9, 1], 1),
    ];
    for (dims, leading) in shapes {
        let source = graph(dims, leading);
        let g = text::parse(&source).expect("a valid graph");
        let mut generator = Generator::new(7);
        // Wide-ranging magnitudes make the summation order visible in the bits.
        let mut x = generator.normal(dims.to_vec(), 0.0, 1.0).unwrap();
        for v in x.as_f32_mut().expect("f32") {
            *v *= v.exp2() * 1e3;
        }
        let inputs = BTreeMap::from([("x".to_string(), x)]);
        let expected =
            interp::run(&g, Mode::Eval, &mut generator, &inputs).expect("the interpreter runs");
        for (threads, chunk) in [(1, usize::MAX), (2, 1), (2, 5), (2, 16)] {
            let compiled = Compiler::new()
                .mode(Mode::Eval)
                .threads(threads)
                .max_chunk_units(chunk)
                .compile(&g)
                .expect("compiles");
            let got = compiled
                .run(&mut generator, &inputs, &ParameterStore::new())
                .expect("runs");
            for ((name, want), (_, have)) in expected.iter().zip(&got) {
                assert_eq!(
                    bits(want),
                    bits(have),
                    "{name} of {dims:?} over {leading} leading axes, {threads} threads, chunks of {chunk}"
                );
            }
        }
    }
}
