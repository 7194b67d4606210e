//! The embedded digits data: the file is the published one, it parses to 1,797 samples, and the
//! split and batches are reproducible, stratified and complete.

use dropjit::Generator;
use dropjit::data::{self, Batches, CLASSES, FEATURES, Split, epoch_stream};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn embedded_file_has_the_published_sha256() {
    assert_eq!(hex(&Sha256::digest(data::DIGITS_GZ)), data::DIGITS_SHA256);
}

#[test]
fn digits_parse_to_1797_samples_of_every_class() {
    let digits = data::digits().unwrap();
    assert_eq!(digits.len(), data::ROWS);
    assert_eq!(digits.features().len(), data::ROWS * FEATURES);
    let counts = digits.class_counts();
    assert_eq!(counts.iter().sum::<usize>(), data::ROWS);
    assert!(
        counts.iter().all(|&n| (170..=190).contains(&n)),
        "{counts:?}"
    );
    assert!(digits.features().iter().all(|v| (0.0..=1.0).contains(v)));
    // The first row of the file: a zero (see the data's README for the format).
    assert_eq!(digits.labels()[0], 0);
    assert_eq!(digits.row(0)[2], 5.0 / 16.0);
}

#[test]
fn corrupt_gzip_is_an_error() {
    let error = data::gunzip(&data::DIGITS_GZ[..100]).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot decompress the data: "),
        "{error}"
    );
}

#[test]
fn split_is_reproducible_stratified_and_disjoint() {
    let digits = data::digits().unwrap();
    let a = Split::stratified(&digits, 300, &mut Generator::new(0)).unwrap();
    let b = Split::stratified(&digits, 300, &mut Generator::new(0)).unwrap();
    let c = Split::stratified(&digits, 300, &mut Generator::new(1)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.train, c.train);
    assert_eq!((a.train.len(), a.test.len()), (300, data::ROWS - 300));
    for (class, &n) in a.train.class_counts().iter().enumerate() {
        let share = 300.0 * digits.class_counts()[class] as f64 / data::ROWS as f64;
        assert!(
            (n as f64 - share).abs() < 1.0,
            "class {class}: {n} vs {share}"
        );
    }
    // Together the splits hold every sample once: compare the sorted rows.
    let mut rows: Vec<Vec<u32>> = (0..digits.len())
        .map(|i| digits.row(i).iter().map(|v| v.to_bits()).collect())
        .collect();
    let mut split_rows: Vec<Vec<u32>> = [&a.train, &a.test]
        .iter()
        .flat_map(|d| (0..d.len()).map(|i| d.row(i).iter().map(|v| v.to_bits()).collect()))
        .collect();
    rows.sort();
    split_rows.sort();
    assert_eq!(rows, split_rows);
}

#[test]
fn bad_split_sizes_are_errors() {
    let digits = data::digits().unwrap();
    for train in [0, data::ROWS, data::ROWS + 1] {
        let error = Split::stratified(&digits, train, &mut Generator::new(0)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "a training split of {train} samples needs 0 < {train} < 1797 (the data's size)"
            )
        );
    }
}

#[test]
fn batches_cover_the_split_once_and_keep_the_last_partial_batch() {
    let digits = data::digits().unwrap();
    let split = Split::stratified(&digits, 100, &mut Generator::new(0)).unwrap();
    let batches = Batches::shuffled(&split.train, 32, epoch_stream(0, 0)).unwrap();
    assert_eq!(batches.len(), 4);
    let sizes: Vec<usize> = batches
        .map(|(x, y)| {
            assert_eq!(x.shape().dims(), [y.numel(), FEATURES]);
            y.numel()
        })
        .collect();
    assert_eq!(sizes, [32, 32, 32, 4]);
    let labels = |epoch| -> Vec<i32> {
        Batches::shuffled(&split.train, 32, epoch_stream(0, epoch))
            .unwrap()
            .flat_map(|(_, y)| y.as_i32().unwrap().to_vec())
            .collect()
    };
    // Each epoch is a permutation of the split; different epochs shuffle differently.
    let (mut e0, e1) = (labels(0), labels(1));
    assert_eq!(e0, labels(0));
    assert_ne!(e0, e1);
    let mut sorted = split.train.labels().to_vec();
    sorted.sort_unstable();
    e0.sort_unstable();
    assert_eq!(e0, sorted);
    assert!(sorted.iter().all(|&l| (0..CLASSES as i32).contains(&l)));
}

#[test]
fn zero_batch_size_is_an_error() {
    let digits = data::digits().unwrap();
    let error = Batches::in_order(&digits, 0).err().unwrap();
    assert_eq!(error.to_string(), "the batch size has to be at least 1");
}
