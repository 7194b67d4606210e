//! The parser's errors: one test per kind, checking the whole message with its line:col; a
//! file with several errors reports them all (and nothing for lines that only use a broken
//! value); and no input, however mangled, makes the parser panic.

mod common;

use std::fs;
use std::panic;

use common::Rng;
use dropjit::{Error, text};

/// Every error `source` produces, as `line:col: message` strings.
fn errors(source: &str) -> Vec<String> {
    let error = text::parse(source).expect_err("the program should not parse");
    error.flatten().iter().map(|e| e.to_string()).collect()
}

/// The one error of a graph whose body is `body`, with the header on line 1 and
/// `%x: f32[2, 3] = input` on line 2.
fn error_in(body: &str) -> String {
    let source = format!("graph g {{\n  %x: f32[2, 3] = input\n{body}\n}}\n");
    let all = errors(&source);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.into_iter().next().expect("one error")
}

#[test]
fn syntax_error_says_what_was_expected_and_found() {
    assert_eq!(
        error_in("  %y: f32[2, 3] = add %x %x\n  output y = %y"),
        "3:26: expected ',' or '{' or end of line after operand, found '%x'"
    );
    assert_eq!(
        error_in("  %y: f32[2, 3] = dropout %x {p = 0.5\n  output y = %y"),
        "3:38: expected ',' or '}' in the attributes, found end of line"
    );
    assert_eq!(
        error_in("  %y: f32[2 3] = relu %x\n  output y = %y"),
        "3:13: expected ',' or ']' in the shape, found '3'"
    );
    assert_eq!(
        error_in("  %y: f32[2, 3] relu %x\n  output y = %y"),
        "3:17: expected '=' after the type, found 'relu'"
    );
}

#[test]
fn unknown_op() {
    assert_eq!(
        error_in("  %y: f32[2, 3] = relux %x\n  output y = %y"),
        "3:19: unknown op 'relux'"
    );
}

#[test]
fn unknown_value() {
    assert_eq!(
        error_in("  %y = relu %fc9\n  output y = %y"),
        "3:13: unknown value %fc9"
    );
    assert_eq!(
        error_in("  output y = %nothing"),
        "3:14: unknown value %nothing"
    );
}

#[test]
fn duplicate_names() {
    assert_eq!(
        error_in("  %x: f32[2, 3] = input\n  output y = %x"),
        "3:3: the node name x is already taken"
    );
    assert_eq!(
        error_in("  output y = %x\n  output y = %x"),
        "4:10: the output name y is already taken"
    );
}

#[test]
fn attributes_missing_unknown_duplicate_and_of_the_wrong_kind() {
    assert_eq!(
        error_in("  %d = dropout %x\n  output y = %d"),
        "3:8: dropout d needs attribute 'p'"
    );
    assert_eq!(
        error_in("  %d = dropout %x {p = 0.5, q = 1}\n  output y = %d"),
        "3:29: dropout has no attribute 'q'; it takes p, inplace, broadcast_dims, sample_steps, stream"
    );
    assert_eq!(
        error_in("  %r = relu %x {axis = 1}\n  output y = %r"),
        "3:17: relu has no attribute 'axis'; it takes none"
    );
    assert_eq!(
        error_in("  %d = dropout %x {p = 0.5, p = 0.2}\n  output y = %d"),
        "3:29: attribute 'p' is given twice"
    );
    assert_eq!(
        error_in("  %d = dropout %x {p = true}\n  output y = %d"),
        "3:24: attribute 'p' has to be a number, found 'true'"
    );
    assert_eq!(
        error_in("  %s = sum %x {axes = [1.5]}\n  output y = %s"),
        "3:24: expected an integer in the list of attribute 'axes', found '1.5'"
    );
    assert_eq!(
        error_in("  %t = transpose %x {perm = 1}\n  output y = %t"),
        "3:29: attribute 'perm' has to be a list [..], found '1'"
    );
    // PyTorch: "approximate argument must be either none or tanh".
    assert_eq!(
        error_in("  %g = gelu %x {approximate = erf}\n  output y = %g"),
        "3:31: attribute 'approximate' has to be either none or tanh, found 'erf'"
    );
    assert_eq!(
        error_in("  %g = gelu %x {approximate = 1}\n  output y = %g"),
        "3:31: attribute 'approximate' has to be either none or tanh, found '1'"
    );
}

#[test]
fn literal_count_and_values() {
    assert_eq!(
        error_in("  %c: f32[2, 2] = constant [1, 2, 3]\n  output y = %c"),
        "3:28: constant c: a literal of shape [2, 2] needs 4 values, but has 3"
    );
    assert_eq!(
        error_in("  %c: i32[2] = constant [1, 2.5]\n  output y = %c"),
        "3:29: expected an i32 integer in the i32[2] literal, found '2.5'"
    );
    assert_eq!(
        error_in("  %c = constant 1\n  output y = %c"),
        "3:3: constant c needs a type annotation, as in %c: f32[2, 3] = constant"
    );
}

#[test]
fn annotation_mismatch() {
    assert_eq!(
        error_in("  %y: f32[3, 2] = relu %x\n  output y = %y"),
        "3:7: annotation says f32[3, 2] but relu computes f32[2, 3]"
    );
}

#[test]
fn type_errors_name_the_node_and_shapes() {
    let source = "graph net {
  %x: f32[32, 783] = input
  %fc1.weight: f32[256, 784] = parameter
  %fc1: f32[32, 256] = linear %x, %fc1.weight
  output y = %fc1
}
";
    assert_eq!(
        errors(source),
        ["4:24: linear fc1: input has 783 features but weight expects 784"]
    );
    assert_eq!(
        error_in("  %d = dropout %x {p = 1.5}\n  output y = %d"),
        "3:8: dropout d: dropout probability has to be between 0 and 1, but got 1.5"
    );
    assert_eq!(
        error_in("  %d = dropout %x {p = nan}\n  output y = %d"),
        "3:8: dropout d: dropout probability has to be between 0 and 1, but got NaN"
    );
}

#[test]
fn duplicate_stream_is_placed_on_the_later_node() {
    let source = "graph g {
  %x: f32[2, 3] = input
  %d1 = dropout %x {p = 0.5}
  %d2 = dropout %d1 {p = 0.5, stream = 0}
  output y = %d2
}
";
    assert_eq!(
        errors(source),
        ["4:3: dropout d2: stream 0 is already used by d1"]
    );
}

#[test]
fn file_structure_errors() {
    assert_eq!(
        errors(""),
        ["1:1: expected 'graph NAME {' to start the file, found end of file"]
    );
    assert_eq!(
        errors("graph g {\n  %x: f32[2] = input\n  output y = %x\n"),
        ["4:1: expected '}' to close graph g, found end of file"]
    );
    assert_eq!(
        errors("graph g {\n  %x: f32[2] = input\n}\n"),
        ["3:1: graph g: the graph has no outputs"]
    );
    assert_eq!(
        errors("graph g {\n  %x: f32[2] = input\n  output y = %x\n}\ngraph h {\n"),
        ["5:1: expected end of file after the graph's closing '}', found 'graph'"]
    );
}

#[test]
fn every_error_of_a_file_is_reported_and_poisoned_values_stay_quiet() {
    let source = "# several mistakes at once
graph g {
  %x: f32[4, 8] = input
  %w: f32[3, 7] = parameter
  %h = linear %x, %w          # type error: 8 vs 7 features
  %a = relu %h                # uses a broken value: no error of its own
  %b = relu %a                # nor here
  %c = exp %missing           # unknown value
  %d = dropout %x {p = 2}     # bad probability
  %e = dropout %x {p = 0.5, stream = 7}
  %f = dropout %x {p = 0.5, stream = 7}
  %g: f32[4] = relu %x        # annotation mismatch
  %h2 = frobnicate %x         # unknown op
  output y = %b               # poisoned: quiet
  output z = %e
}
";
    let error = text::parse(source).expect_err("the program has errors");
    assert!(matches!(error, Error::Many(_)));
    assert_eq!(
        error.to_string(),
        "5:8: linear h: input has 8 features but weight expects 7
8:12: unknown value %missing
9:8: dropout d: dropout probability has to be between 0 and 1, but got 2
11:3: dropout f: stream 7 is already used by e
12:7: annotation says f32[4] but relu computes f32[4, 8]
13:9: unknown op 'frobnicate'"
    );
}

/// Parses `source`, failing the test with the input if the parser panics. A program that
/// parses must also round-trip, and every error must carry a position.
fn parse_without_panic(source: &str) {
    let result = panic::catch_unwind(|| text::parse(source));
    match result {
        Err(_) => panic!("the parser panicked on {source:?}"),
        Ok(Ok(graph)) => {
            let printed = graph.to_string();
            let again = text::parse(&printed).expect("a parsed graph prints as valid text");
            assert_eq!(again, graph, "{source:?}");
        }
        Ok(Err(error)) => {
            for e in error.flatten() {
                assert!(matches!(e, Error::Parse { .. }), "{e} from {source:?}");
            }
        }
    }
}

const PIECES: &[&str] = &[
    "%",
    "%x",
    ":",
    "=",
    ",",
    "[",
    "]",
    "{",
    "}",
    "\n",
    " ",
    "#",
    "-",
    "1",
    "0.5",
    "-inf",
    "nan",
    "f32",
    "i32",
    "graph",
    "output",
    "dropout",
    "linear",
    "p",
    "stream",
    "true",
    "\0",
    "é",
    "💥",
    "99999999999999999999999",
    "1e999",
    "-1",
    "axes",
    "reshape",
    "shape",
    "constant",
];

fn random_piece(rng: &mut Rng) -> String {
    if rng.chance(20) {
        let byte = rng.below(256) as u8;
        String::from_utf8_lossy(&[byte]).into_owned()
    } else {
        rng.pick(PIECES).to_string()
    }
}

#[test]
fn random_inputs_never_panic() {
    let mut rng = Rng::new(0xf022);
    for _ in 0..1500 {
        let len = rng.below(60);
        let mut source = String::new();
        if rng.chance(50) {
            source.push_str("graph g {\n");
        }
        for _ in 0..len {
            source.push_str(&random_piece(&mut rng));
        }
        parse_without_panic(&source);
    }
    for extreme in [
        "[".repeat(100_000),
        "{".repeat(100_000),
        format!("graph g {{\n  %x: f32[{}] = input\n}}", "9".repeat(5000)),
        format!(
            "graph g {{\n  %c: f32[] = constant {}\n}}",
            "[".repeat(10_000)
        ),
        "graph g {\n  %a: f32[4294967296, 1] = input\n  %b: f32[1, 4294967296] = input\n  \
         %c = add %a, %b\n  %r = reshape %a {shape = [9223372036854775807, 2]}\n  output y = %a\n}"
            .to_string(),
        "\0\0\0".to_string(),
    ] {
        parse_without_panic(&extreme);
    }
}

#[test]
fn mutated_ir_programs_never_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/ir");
    let mut rng = Rng::new(0x5eed);
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("the ir directory exists")
        .map(|entry| entry.expect("a readable entry").path())
        .collect();
    files.sort();
    for path in files {
        let source = fs::read_to_string(&path).expect("a readable file");
        for _ in 0..250 {
            let mutated = mutate(&source, &mut rng);
            parse_without_panic(&mutated);
        }
    }
}

/// One to three random edits: byte edits (as lossy UTF-8) or whole-line edits.
fn mutate(source: &str, rng: &mut Rng) -> String {
    let mut bytes = source.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if at < bytes.len() => bytes[at] = rng.below(256) as u8,
            1 if at < bytes.len() => {
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => {
                let piece = random_piece(rng);
                bytes.splice(at..at, piece.into_bytes());
            }
            3 => bytes.truncate(at),
            _ => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                    match rng.below(3) {
                        0 => lines.swap(i, j),
                        1 => lines.insert(j, lines[i]),
                        _ => {
                            lines.remove(i);
                        }
                    }
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
