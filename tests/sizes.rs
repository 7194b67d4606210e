//! Types whose values cannot fit in memory are typed errors wherever types are inferred (the
//! parser and `Graph::add` alike), so no size, stride or offset of a compiled program wraps;
//! and a program whose intermediate values cannot fit in one arena does not compile.

use dropjit::graph::Op;
use dropjit::{Compiler, Error, Graph, TensorType, TypeError, text};

/// The reproducer of issue 14: `expand` to more than 2^62 f32 elements, whose byte size
/// wrapped to 0 before, so the JIT wrote past its buffers.
const EXPAND_PAST_MEMORY: &str = "graph g {
  %x: f32[1] = input
  %y: f32[4611686018427387905] = expand %x {shape = [4611686018427387905]}
  %s: f32[] = sum %y
  output s = %s
}
";

#[test]
fn the_parser_refuses_a_type_whose_bytes_overflow() {
    // The annotation says so where it stands; without one, inference says so at the op.
    let err = text::parse(EXPAND_PAST_MEMORY).unwrap_err();
    assert_eq!(
        err.to_string(),
        "3:7: f32[4611686018427387905] is too large: it needs more than 9223372036854775807 \
         bytes, the most one allocation can hold"
    );
    let inferred = EXPAND_PAST_MEMORY.replace("%y: f32[4611686018427387905] =", "%y =");
    assert_eq!(
        text::parse(&inferred).unwrap_err().to_string(),
        "3:8: expand y: f32[4611686018427387905] is too large: it needs more than \
         9223372036854775807 bytes, the most one allocation can hold"
    );
    // An input's annotation is its type, refused the same way.
    let annotated = "graph g {\n  %x: f32[2305843009213693952] = input\n  output x = %x\n}\n";
    assert_eq!(
        text::parse(annotated).unwrap_err().to_string(),
        "2:7: f32[2305843009213693952] is too large: it needs more than 9223372036854775807 \
         bytes, the most one allocation can hold"
    );
    // Within 2^63 bytes, and so within isize: a type like any other.
    let largest = "graph g {\n  %x: f32[2305843009213693951] = input\n  output x = %x\n}\n";
    text::parse(largest).unwrap();
}

#[test]
fn graph_add_refuses_what_the_parser_refuses() {
    let mut g = Graph::new("g");
    let x = g.add("x", Op::Input(TensorType::f32([1])), &[]).unwrap();
    let huge = 1usize << 32;
    let err = g
        .add(
            "y",
            Op::Expand {
                shape: vec![huge, huge],
            },
            &[x],
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Type {
                detail: TypeError::TooLarge { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "expand y: f32[4294967296, 4294967296] is too large: it needs more than \
         9223372036854775807 bytes, the most one allocation can hold"
    );
    assert!(g.find("y").is_none(), "a refused node is not added");
    // Inputs and parameters are inferred the same way.
    let err = g
        .add("w", Op::Parameter(TensorType::f32([huge, huge])), &[])
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("parameter w: f32[4294967296, 4294967296] is too large")
    );
}

#[test]
fn empty_operands_with_huge_dimensions_cannot_hide_an_overflow() {
    // Empty, but with dimensions whose product overflows: strides into it would wrap.
    let mut g = Graph::new("g");
    let empty = TensorType::f32([0, 1 << 62, 1 << 62]);
    let err = g.add("x", Op::Input(empty), &[]).unwrap_err();
    assert!(err.to_string().contains("is too large"), "{err}");
    // An empty product whose result is not empty: [2^31, 0] @ [0, 2^31].
    let a = g
        .add("a", Op::Input(TensorType::f32([1 << 31, 0])), &[])
        .unwrap();
    let b = g
        .add("b", Op::Input(TensorType::f32([0, 1 << 31])), &[])
        .unwrap();
    let err = g.add("c", Op::MATMUL, &[a, b]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "matmul c: f32[2147483648, 2147483648] is too large: it needs more than \
         9223372036854775807 bytes, the most one allocation can hold"
    );
    // A reshape whose target dimensions multiply past usize.
    let r = Op::Reshape {
        shape: vec![1 << 40, 1 << 40, 0],
    };
    let err = g.add("r", r, &[a]).unwrap_err();
    assert!(
        err.to_string().contains("multiply beyond any memory"),
        "{err}"
    );
}

#[test]
fn an_arena_no_allocation_can_hold_does_not_compile() {
    // Two intermediates of 2^62 bytes each, live at once: 2^63 bytes of arena.
    let source = "graph big {
  %x: f32[1152921504606846976] = input
  %a: f32[1152921504606846976] = relu %x
  %b: f32[1152921504606846976] = neg %x
  %c: f32[1152921504606846976] = add %a, %b
  %s: f32[] = sum %c
  output s = %s
}
";
    let graph = text::parse(source).unwrap();
    let err = Compiler::new().fuse(false).compile(&graph).unwrap_err();
    assert!(matches!(err, Error::ArenaTooLarge { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "graph big: its intermediate values need more than 9223372036854775807 bytes at once, \
         the most one allocation can hold"
    );
}

/// Issue 14's other routes to the wrap: an empty operand whose other dimensions are huge.
/// Its extent (empty dimensions counted as 1) bounds every stride, so the type is refused;
/// a reduction or product whose result would be huge is refused at that node; and a result
/// that fits the type rule but not the machine is an allocation error at run time.
#[test]
fn empty_operands_with_huge_dimensions_are_refused_too() {
    let reduce = "graph g {\n  %x: f32[0, 4611686018427387904] = input\n  \
                  %s: f32[] = sum %x\n  output s = %s\n}\n";
    assert_eq!(
        text::parse(reduce).unwrap_err().to_string(),
        "2:7: f32[0, 4611686018427387904] is too large: it needs more than 9223372036854775807 \
         bytes, the most one allocation can hold"
    );
    let product = "graph g {\n  %a: f32[1099511627776, 0] = input\n  \
                   %b: f32[0, 1099511627776] = input\n  %c = matmul %a, %b\n  output c = %c\n}\n";
    assert_eq!(
        text::parse(product).unwrap_err().to_string(),
        "4:8: matmul c: f32[1099511627776, 1099511627776] is too large: it needs more than \
         9223372036854775807 bytes, the most one allocation can hold"
    );
    // Summing away the empty axis leaves 2^61 - 1 zeros: a valid type, memory nobody has.
    let zeros = "graph g {\n  %x: f32[0, 2305843009213693951] = input\n  \
                 %s = sum %x {axes = [0]}\n  output s = %s\n}\n";
    let graph = text::parse(zeros).unwrap();
    let x = dropjit::Tensor::from_f32([0, 2305843009213693951], vec![]).unwrap();
    let inputs = std::collections::BTreeMap::from([("x".to_string(), x)]);
    let compiled = Compiler::new().compile(&graph).unwrap();
    let err = (compiled.run(
        &mut dropjit::Generator::new(0),
        &inputs,
        &Default::default(),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::OutOfMemory { .. }), "{err:?}");
    let err = dropjit::interp::run(
        &graph,
        dropjit::Mode::Eval,
        &mut dropjit::Generator::new(0),
        &inputs,
    )
    .unwrap_err();
    assert!(matches!(err, Error::OutOfMemory { .. }), "{err:?}");
}
