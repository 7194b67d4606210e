//! Replays the fuzz targets' committed inputs through the targets' own entry points
//! (`tests/fuzz/entries.rs`), so neither the corpus nor a fixed crash can rot: for each
//! target, every file of `tests/fuzz/corpus/TARGET/` (the minimised corpus) and of
//! `tests/fuzz/regressions/TARGET/` (minimised crashes, each fixed).

mod common;
#[path = "fuzz/entries.rs"]
mod entries;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use dropjit::Generator;
use dropjit::checkpoint;

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `entry` on every committed input of `target` (at least `min_corpus` in the corpus);
/// a failure names the file.
fn replay(target: &str, min_corpus: usize, entry: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let corpus = files(&root.join("corpus").join(target));
    assert!(
        corpus.len() >= min_corpus,
        "tests/fuzz/corpus/{target} holds {} files, expected at least {min_corpus}",
        corpus.len()
    );
    let regressions = files(&root.join("regressions").join(target));
    for path in corpus.iter().chain(&regressions) {
        let bytes = fs::read(path).expect("a readable input");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(&bytes))) {
            eprintln!("fuzz target {target} fails on {}", path.display());
            resume_unwind(panic);
        }
    }
}

#[test]
fn parse_corpus_replays() {
    replay("parse", 20, entries::parse);
}

#[test]
fn npy_corpus_replays() {
    replay("npy", 10, entries::npy);
}

#[test]
fn checkpoint_corpus_replays() {
    replay("checkpoint", 5, entries::checkpoint);
}

#[test]
fn compile_corpus_replays() {
    replay("compile", 20, entries::compile);
}

/// The checkpoint target's seed is a checkpoint its model loads, so the target reaches past
/// the format checks.
#[test]
fn the_checkpoint_seed_loads_into_the_fuzzed_model() {
    let (mut store, entries, mut sgd) = entries::checkpoint_model();
    let bytes = entries::checkpoint_seed();
    let path = Path::new("seed.safetensors");
    let generator = checkpoint::load_bytes(path, &bytes, &mut store, &entries, &mut sgd)
        .expect("the seed loads");
    assert_eq!(generator, Generator::new(11).with_step(4));
    assert_eq!(entries.len(), 6, "4 entries and 2 momentum buffers");
}

/// A fuzzer's bytes steer the graph: they are the generator's first words, then a Philox
/// stream keyed by their hash follows.
#[test]
fn graph_bytes_come_first_then_a_stream_of_their_hash() {
    let mut rng = common::Rng::from_bytes(&[1, 0, 0, 0, 2, 0, 0, 0, 3]);
    assert_eq!([rng.next_u32(), rng.next_u32(), rng.next_u32()], [1, 2, 3]);
    let mut keyed = common::Rng::new(common::fnv1a(&[1, 0, 0, 0, 2, 0, 0, 0, 3]));
    assert_eq!(rng.next_u32(), keyed.next_u32());
    // The first word picks the number of steps, so one byte changes the graph.
    let small = common::graph_from_bytes(&[0; 4]).to_string();
    let large = common::graph_from_bytes(&[0xff; 4]).to_string();
    assert_ne!(small, large);
}
