//! The fuzz targets' entry points, one per target: each takes the fuzzer's bytes, runs a
//! library entry point on them and panics on anything the library promises not to do. The
//! targets in `fuzz_targets/` and the replay test `tests/fuzz_replay.rs` (which runs every
//! committed corpus file and minimised crash through them) include this file, so what the
//! fuzzer checked is what `cargo test` checks.

use std::path::Path;

use dropjit::checkpoint;
use dropjit::graph::verify::verify;
use dropjit::optim::{Optimizer, Sgd};
use dropjit::{Error, Generator, Graph, Mode, ParameterStore, Tensor, npy, text};

use crate::common;
use crate::common::compare::Agreement;
use crate::common::differential::{BIT_EXACT, ONE_TWO_THREE, check};

/// The name the byte-level readers give the "file" in their errors.
const FILE: &str = "fuzz.input";

/// Parser and verifier: text that parses is a graph the verifier accepts (the parser builds
/// through `Graph::add` and verifies), and printing it gives text that parses back to the
/// same graph and prints the same again; text that does not parse is an error whose message
/// is one line or more and a position. Nothing panics either way, printing as DOT included.
pub fn parse(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let graph = match text::parse(source) {
        Ok(graph) => graph,
        Err(error) => {
            assert!(
                !error.to_string().is_empty(),
                "a parse error says something"
            );
            return;
        }
    };
    if let Err(error) = verify(&graph) {
        panic!("the parser returned a graph the verifier rejects: {error}\n{source}");
    }
    let printed = graph.to_string();
    let reparsed = text::parse(&printed).unwrap_or_else(|error| {
        panic!("the printed graph does not parse: {error}\n{printed}\nfrom\n{source}")
    });
    assert_eq!(reparsed, graph, "parse(print(g)) != g\n{printed}");
    assert_eq!(reparsed.to_string(), printed, "print is not a fixed point");
    let _ = graph.dot().to_string();
}

/// `.npy` reader: bytes decode to a tensor or to an `Error::Npy` naming the file; a tensor
/// decoded encodes (as `numpy.save` would) to bytes that decode to the same tensor.
pub fn npy(data: &[u8]) {
    let path = Path::new(FILE);
    match npy::decode(path, data) {
        Ok(tensor) => {
            let again = npy::decode(path, &npy::encode(&tensor))
                .unwrap_or_else(|e| panic!("a written tensor does not read back: {e}"));
            assert_same(&tensor, &again);
        }
        Err(Error::Npy { path: p, message }) => {
            assert_eq!(p, path);
            assert!(!message.is_empty(), "an npy error says something");
        }
        Err(other) => panic!("an npy decoding error is Error::Npy, got {other:?}"),
    }
}

fn assert_same(a: &Tensor, b: &Tensor) {
    assert_eq!(a.ty(), b.ty());
    assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "the elements differ");
}

/// The store, entries and optimizer a fuzzed checkpoint is loaded into: a linear layer's
/// weight and bias, an i32 and a bool entry, and SGD with momentum (so a state entry).
pub fn checkpoint_model() -> (ParameterStore, Vec<String>, Sgd) {
    let mut store = ParameterStore::new();
    let weight = Tensor::from_f32([2, 3], vec![0.5, -1.0, 2.0, 0.0, -0.0, 3.5]).expect("6");
    store.insert("fc.weight", weight);
    store.insert(
        "fc.bias",
        Tensor::from_f32([2], vec![1.0, -1.0]).expect("2"),
    );
    store.insert("steps", Tensor::from_i32([], vec![7]).expect("1"));
    store.insert(
        "keep",
        Tensor::from_bool([3], vec![true, false, true]).expect("3"),
    );
    let sgd = (Sgd::new(&["fc.weight", "fc.bias"][..], 0.1).expect("lr 0.1"))
        .momentum(0.9)
        .expect("momentum 0.9");
    let mut entries: Vec<String> = ["fc.weight", "fc.bias", "steps", "keep"]
        .map(String::from)
        .to_vec();
    entries.extend(checkpoint::entries(&[], &sgd));
    (store, entries, sgd)
}

/// The bytes of a valid checkpoint of [`checkpoint_model`] (a seed of the corpus).
pub fn checkpoint_seed() -> Vec<u8> {
    let (store, entries, sgd) = checkpoint_model();
    let path = std::env::temp_dir().join(format!(
        "dropjit-fuzz-seed-{}.safetensors",
        std::process::id()
    ));
    let generator = Generator::new(11).with_step(4);
    checkpoint::save(&path, &store, &entries, &sgd, &generator).expect("save the seed");
    let bytes = std::fs::read(&path).expect("read the seed back");
    std::fs::remove_file(&path).expect("remove the seed file");
    bytes
}

/// Checkpoint (safetensors) reader: bytes load into [`checkpoint_model`] or give a checkpoint
/// error naming the file, and a failed load changes nothing (the store and the optimizer's
/// step count are as before); a load that succeeds leaves every entry of its expected type.
pub fn checkpoint(data: &[u8]) {
    let (mut store, entries, mut sgd) = checkpoint_model();
    let before: Vec<(String, Tensor)> = (store.iter())
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    let types: Vec<_> = (entries.iter())
        .map(|e| store.get(e).map(Tensor::ty))
        .collect();
    let path = Path::new(FILE);
    match checkpoint::load_bytes(path, data, &mut store, &entries, &mut sgd) {
        Ok(_generator) => {
            for (entry, ty) in entries.iter().zip(types) {
                let loaded = store.get(entry).expect("a loaded entry is in the store");
                if let Some(ty) = ty {
                    assert_eq!(loaded.ty(), ty, "entry {entry} changed type");
                }
            }
        }
        Err(error) => {
            match &error {
                Error::Checkpoint { path: p, .. } | Error::CheckpointMismatch { path: p, .. } => {
                    assert_eq!(p, path, "{error}")
                }
                other => panic!("a checkpoint error names the file, got {other:?}"),
            }
            let after: Vec<(String, Tensor)> = (store.iter())
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect();
            assert_eq!(after, before, "a failed load changed the store: {error}");
            assert_eq!(sgd.steps(), 0, "a failed load set the step count: {error}");
        }
    }
}

/// Compilation: the graph the bytes make (`common::graph_from_bytes`, well typed) compiled
/// in both modes agrees with the interpreter bit for bit, errors included (`check` of
/// tests/jit_differential.rs), in one of the four bit-exact setups, picked by the input's
/// hash, as is the thread count: one mode runs on one thread, the other on two splitting
/// every phase into one-unit chunks (Train on two when bit 8 of the hash is set). Two
/// compilations per input, where four would halve the campaign's rate; each mode meets both
/// thread counts over the corpus.
pub fn compile(data: &[u8]) {
    let graph: Graph = common::graph_from_bytes(data);
    let seed = common::fnv1a(data);
    let setup = BIT_EXACT[(seed % BIT_EXACT.len() as u64) as usize];
    for (m, mode) in [Mode::Train, Mode::Eval].into_iter().enumerate() {
        let two = (seed >> 8).wrapping_add(m as u64) % 2 == 1;
        let spread = if two {
            &ONE_TWO_THREE[1..2]
        } else {
            &ONE_TWO_THREE[..1]
        };
        if let Err(message) = check(&graph, mode, setup, Agreement::Bits, seed, spread) {
            panic!("{mode:?} mode, {setup:?}, {spread:?}: {message}\n{graph}");
        }
    }
}
