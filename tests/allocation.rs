//! Memory that cannot be had is a typed error, never an abort (issue 14, item 2): the arena
//! is allocated by the first run, not by compiling (so `dump` never allocates it), the
//! interpreter asks for each value's memory before computing it, host tensors are allocated
//! fallibly, and an empty tensor's dropout draws no mask however large its mask shape.
//!
//! "Cannot be had" is made certain rather than likely: 2^62 bytes (4 EiB) fit the type
//! system's bound (`isize::MAX`) but exceed every x86-64 address space.

use std::collections::BTreeMap;
use std::process::Command;

use dropjit::{
    Compiler, DType, Error, Generator, Mode, ParameterStore, Tensor, TensorType, interp, nn, text,
};

/// An intermediate of 2^62 bytes from an input of one element.
const HUGE_INTERMEDIATE: &str = "graph g {
  %x: f32[1] = input
  %y: f32[1099511627776, 1048576] = expand %x {shape = [1099511627776, 1048576]}
  %d: f32[1099511627776, 1048576] = dropout %y {p = 0.5}
  %s: f32[] = sum %d
  output s = %s
}
";

fn x() -> BTreeMap<String, Tensor> {
    BTreeMap::from([("x".to_string(), Tensor::from_f32([1], vec![1.0]).unwrap())])
}

fn assert_out_of_memory(error: &Error, what: &str) {
    assert!(
        matches!(error, Error::OutOfMemory { .. }),
        "expected OutOfMemory, got {error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("cannot allocate ") && message.contains(what),
        "{message}"
    );
}

#[test]
fn an_arena_nobody_can_have_is_an_error_of_the_run_not_of_compiling() {
    let graph = text::parse(HUGE_INTERMEDIATE).unwrap();
    for mode in [Mode::Train, Mode::Eval] {
        // Compiling plans the arena but allocates none of it.
        let compiled = Compiler::new().mode(mode).compile(&graph).unwrap();
        assert!(compiled.clif().contains("function"));
        let mut generator = Generator::new(0);
        let err = compiled
            .run(&mut generator, &x(), &ParameterStore::new())
            .unwrap_err();
        assert_out_of_memory(&err, "the arena of intermediate values");
        // The failed run claimed no step: the next train run would draw the same masks.
        assert_eq!(generator.step(), 0);
    }
}

#[test]
fn the_interpreter_asks_for_a_values_memory_before_computing_it() {
    let graph = text::parse(HUGE_INTERMEDIATE).unwrap();
    for mode in [Mode::Train, Mode::Eval] {
        let err = interp::run(&graph, mode, &mut Generator::new(0), &x()).unwrap_err();
        assert_out_of_memory(&err, "the value of %y");
        assert_eq!(
            err.to_string(),
            "cannot allocate 4611686018427387904 bytes for the value of %y: the system would \
             not give them"
        );
    }
}

#[test]
fn an_empty_tensors_dropout_draws_no_mask() {
    // The reproducer: a mask shape of 10^12 channels over an empty input.
    let source = "graph g {
  %x: f32[1000000000000, 0] = input
  %y: f32[1000000000000, 0] = dropout1d %x {p = 0.5}
  %g: f32[1000000000000, 0] = dropout1d_grad %x {p = 0.5, stream = 0}
  output y = %y
  output g = %g
}
";
    let graph = text::parse(source).unwrap();
    let empty = Tensor::from_f32([1_000_000_000_000, 0], vec![]).unwrap();
    let values = BTreeMap::from([("x".to_string(), empty)]);
    let interpreted = interp::run(&graph, Mode::Train, &mut Generator::new(0), &values).unwrap();
    let compiled = Compiler::new().compile(&graph).unwrap();
    let run = compiled
        .run(&mut Generator::new(0), &values, &ParameterStore::new())
        .unwrap();
    for outputs in [&interpreted, &run] {
        for (_, tensor) in outputs {
            assert_eq!(tensor.shape().dims(), [1_000_000_000_000, 0]);
            assert_eq!(tensor.numel(), 0);
        }
    }
}

#[test]
fn host_tensors_too_large_are_errors() {
    let too_large = TensorType::new(DType::F32, [1usize << 40, 1 << 20]);
    assert_out_of_memory(
        &Tensor::zeros(&too_large).unwrap_err(),
        "f32[1099511627776, 1048576]",
    );
    // Past what a type can describe: refused before any allocation is tried.
    let overflowing = TensorType::new(DType::F32, [1usize << 62, 8]);
    let err = Tensor::zeros(&overflowing).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot allocate more than 18446744073709551615 bytes for a tensor of type \
         f32[4611686018427387904, 8]: the system would not give them"
    );
    assert_out_of_memory(
        &Tensor::full_bool([1usize << 62, 2], true).unwrap_err(),
        "bool",
    );

    // A shape whose element count wraps is not filled by the few values that match the
    // wrapped count.
    let err = Tensor::from_f32([1usize << 63, 2], vec![]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a tensor of shape [9223372036854775808, 2] needs more than 18446744073709551615 values, \
         but got 0"
    );

    let mut generator = Generator::new(0);
    for err in [
        generator
            .normal([1usize << 40, 1 << 20], 0.0, 1.0)
            .unwrap_err(),
        generator
            .uniform([1usize << 40, 1 << 20], 0.0, 1.0)
            .unwrap_err(),
        generator
            .randint([1usize << 40, 1 << 20], 0, 3)
            .unwrap_err(),
    ] {
        assert_out_of_memory(&err, "[1099511627776, 1048576]");
    }
    // A refused draw claims no host stream, so later draws are what they would have been.
    assert_eq!(generator.host_streams(), 0);
    let err = nn::Linear::new(1 << 40, 1 << 30, &mut generator)
        .err()
        .unwrap();
    assert_out_of_memory(&err, "f32[1073741824, 1099511627776]");
}

#[test]
fn the_command_line_reports_memory_it_cannot_have() {
    let dir = std::env::temp_dir().join(format!("dropjit-allocation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("huge.ir");
    std::fs::write(&file, HUGE_INTERMEDIATE).unwrap();
    let dropjit = env!("CARGO_BIN_EXE_dropjit");
    for engine in ["jit", "interp"] {
        let out = Command::new(dropjit)
            .args(["run", "--engine", engine])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{engine}: {stderr}");
        assert!(stderr.contains("cannot allocate"), "{engine}: {stderr}");
    }
    // `dump` prints the compiled code and the memory plan without allocating the arena.
    for stage in ["optimized", "clif"] {
        let out = Command::new(dropjit)
            .args(["dump", "--stage", stage])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An input too large for the machine: the values `run` draws are refused, not aborted.
    let input = "graph g {\n  %x: f32[1099511627776, 1048576] = input\n  \
                 %y: f32[1099511627776, 1048576] = dropout %x {p = 0.5}\n  output y = %y\n}\n";
    std::fs::write(&file, input).unwrap();
    let out = Command::new(dropjit)
        .arg("run")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot allocate 4611686018427387904 bytes for a tensor of type"));
    std::fs::remove_dir_all(&dir).unwrap();
}
