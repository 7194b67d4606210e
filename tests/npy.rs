//! `.npy` reading and writing: round trips, numpy's exact header bytes, and every error path.

use std::path::PathBuf;

use dropjit::npy;
use dropjit::{Error, Tensor};

/// A fresh directory under the system temp dir, unique per test and process.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropjit-npy-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    dir
}

fn round_trip(test: &str, tensor: &Tensor) {
    let path = temp_dir(test).join("t.npy");
    npy::write(&path, tensor).unwrap();
    let back = npy::read(&path).unwrap();
    assert_eq!(&back, tensor, "{test}");
    let bytes = std::fs::read(&path).unwrap();
    let header_end = bytes.len() - tensor.dtype().size() * tensor.numel();
    assert_eq!(
        header_end % 64,
        0,
        "{test}: data starts on a 64-byte boundary"
    );
    assert_eq!(bytes[header_end - 1], b'\n');
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

fn round_trip_v2(tensor: &Tensor) {
    let path = temp_dir("v2_written").join("t.npy");
    npy::write(&path, tensor).unwrap();
    assert_eq!(&npy::read(&path).unwrap(), tensor);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes.len() - 4) % 64, 0);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// Writes `bytes` to a file and reads it back, expecting an `Error::Npy` with this message.
fn read_error(test: &str, bytes: &[u8]) -> String {
    let path = temp_dir(test).join("bad.npy");
    std::fs::write(&path, bytes).unwrap();
    let err = npy::read(&path).unwrap_err();
    let message = match &err {
        Error::Npy { path: p, message } => {
            assert_eq!(p, &path);
            assert_eq!(err.to_string(), format!("{}: {message}", path.display()));
            message.clone()
        }
        other => panic!("{test}: expected Error::Npy, got {other:?}"),
    };
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    message
}

/// A file with this header text (padded by hand) and these data bytes, version 1.0.
fn with_header(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn round_trips_every_shape_and_dtype() {
    round_trip("scalar", &Tensor::scalar(2.5));
    round_trip(
        "vector",
        &Tensor::from_f32([3], vec![1.0, -2.0, 3.5]).unwrap(),
    );
    let cube: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 3.0).collect();
    round_trip("cube", &Tensor::from_f32([2, 3, 4], cube).unwrap());
    round_trip("empty", &Tensor::from_f32([2, 0, 3], vec![]).unwrap());
    round_trip("empty_i32", &Tensor::from_i32([0], vec![]).unwrap());
    let special = vec![
        f32::NAN,
        f32::from_bits(0x7fa0_0001), // a signalling NaN with a payload
        f32::from_bits(0xffc0_1234), // a negative quiet NaN with a payload
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1), // the smallest subnormal
    ];
    round_trip("special_bits", &Tensor::from_f32([2, 4], special).unwrap());
    round_trip(
        "i32",
        &Tensor::from_i32([2, 2], vec![i32::MIN, -1, 0, i32::MAX]).unwrap(),
    );
    // A first dimension of many digits shrinks numpy's growth room.
    round_trip("long_dim", &Tensor::from_i32([123_456, 0], vec![]).unwrap());
    // 30000 dimensions make a header too long for version 1.0: numpy then writes 2.0.
    let tall = Tensor::from_f32(vec![1; 30_000], vec![4.0]).unwrap();
    assert_eq!(&npy::encode(&tall)[6..8], &[2, 0]);
    round_trip_v2(&tall);
}

#[test]
fn header_bytes_are_what_numpy_writes() {
    // numpy is not installed on the machine that wrote this test, so the expected bytes follow
    // numpy/lib/format.py (_write_array_header and _wrap_header, numpy >= 1.24) by hand:
    // the sorted dict, 21 - len("3") = 20 spaces of growth room, then padding to 64 bytes with
    // spaces and a newline: 10 + 57 + 20 + 40 + 1 = 128, so the header length is 118 = 0x76.
    let tensor = Tensor::from_i32([3], vec![1, 2, -1]).unwrap();
    let mut expected = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    expected.extend_from_slice(b"{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }");
    expected.extend_from_slice(&[b' '; 20 + 40]);
    expected.push(b'\n');
    expected.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(npy::encode(&tensor), expected);

    // A scalar has no growth room: 10 + 55 + 62 + 1 = 128.
    let scalar = npy::encode(&Tensor::scalar(1.0));
    let header = std::str::from_utf8(&scalar[10..128]).unwrap();
    assert_eq!(
        header.trim_end(),
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"
    );
    assert_eq!(&scalar[8..10], &[118, 0]);
    assert_eq!(&scalar[128..], &1.0f32.to_le_bytes());

    let matrix = npy::encode(&Tensor::from_f32([2, 3], vec![0.0; 6]).unwrap());
    assert!(
        matrix[10..].starts_with(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")
    );
}

#[test]
fn reads_versions_2_and_3_and_free_spacing() {
    let dict = "{\"shape\": ( 2 ,3 ) ,'fortran_order':False,'descr':'<i4'}";
    let data: Vec<u8> = (1..=6i32).flat_map(i32::to_le_bytes).collect();
    let expected = Tensor::from_i32([2, 3], (1..=6).collect()).unwrap();
    for version in [2u8, 3] {
        let mut bytes = vec![0x93, b'N', b'U', b'M', b'P', b'Y', version, 0];
        let header = format!("{dict}{}\n", " ".repeat(64 - (12 + dict.len() + 1) % 64));
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&data);
        let path = temp_dir(&format!("v{version}")).join("t.npy");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(npy::read(&path).unwrap(), expected, "version {version}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

#[test]
fn every_error_has_a_message() {
    assert_eq!(
        read_error("magic", b"PK\x03\x04 not numpy at all"),
        "not a .npy file (it does not start with \\x93NUMPY)"
    );
    assert_eq!(
        read_error("empty_file", b""),
        read_error("magic2", b"\x93NUM")
    );
    assert_eq!(
        read_error("version", b"\x93NUMPY\x04\x00\x10\x00"),
        "unsupported .npy format version 4.0 (dropjit reads 1.0, 2.0 and 3.0)"
    );
    assert_eq!(
        read_error("length", b"\x93NUMPY\x01\x00\x10"),
        "truncated in the header length"
    );
    assert_eq!(
        read_error("header", b"\x93NUMPY\x01\x00\x76\x00{'descr'"),
        "truncated: the header claims 118 bytes but the file has 8 after the length"
    );
    let f8 = with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
        &[0; 8],
    );
    assert_eq!(
        read_error("dtype", &f8),
        "unsupported dtype '<f8' (dropjit reads '<f4', '<i4' and '|b1')"
    );
    let big_endian = with_header(
        "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
        &[0; 4],
    );
    assert_eq!(
        read_error("big_endian", &big_endian),
        "unsupported dtype '>f4' (dropjit reads '<f4', '<i4' and '|b1')"
    );
    let fortran = with_header(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
        &[0; 16],
    );
    assert_eq!(
        read_error("fortran", &fortran),
        "fortran_order is True; save a C-contiguous array (numpy.ascontiguousarray)"
    );
    let short = with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        &[0; 20],
    );
    assert_eq!(
        read_error("truncated_data", &short),
        "truncated data: shape [2, 3] of f32 needs 24 data bytes, but the file has 20"
    );
    let long = with_header(
        "{'descr': '<i4', 'fortran_order': False, 'shape': (), }",
        &[0; 5],
    );
    assert_eq!(
        read_error("trailing", &long),
        "trailing bytes: shape [] of i32 needs 4 data bytes, but the file has 5"
    );
    let huge = with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
        &[],
    );
    assert_eq!(
        read_error("overflow", &huge),
        "shape [4294967296, 4294967296] has too many elements"
    );
    let no_shape = with_header("{'descr': '<f4', 'fortran_order': False, }", &[0; 4]);
    assert_eq!(
        read_error("no_shape", &no_shape),
        "the header has no 'shape'"
    );
    let odd_key = with_header("{'descr': '<f4', 'order': 'C', }", &[]);
    assert_eq!(
        read_error("odd_key", &odd_key),
        "unexpected header key 'order'"
    );
    let garbled = with_header("{'descr': '<f4', 'fortran_order': Nope, }", &[]);
    assert_eq!(
        read_error("garbled", &garbled),
        "malformed header: expected True or False at \"Nope, }\""
    );
}

#[test]
fn bool_masks_round_trip_as_one_byte_each() {
    let mask = vec![true, false, false, true, true, false];
    round_trip("bool", &Tensor::from_bool([2, 3, 1], mask).unwrap());
    round_trip("empty_bool", &Tensor::from_bool([0, 4], vec![]).unwrap());
    // numpy.save(np.array([True, False, True])): '|b1', one byte per element.
    let bytes = npy::encode(&Tensor::from_bool([3], vec![true, false, true]).unwrap());
    assert!(bytes[10..].starts_with(b"{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }"));
    assert_eq!(&bytes[bytes.len() - 3..], &[1, 0, 1]);
    assert_eq!(bytes.len(), 128 + 3);
    let not_a_bool = with_header(
        "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
        &[1, 0, 2],
    );
    assert_eq!(
        read_error("not_a_bool", &not_a_bool),
        "bool element 2 is the byte 2; a bool has to be 0 or 1"
    );
    let short = with_header(
        "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }",
        &[1, 0, 1],
    );
    assert_eq!(
        read_error("short_bool", &short),
        "truncated data: shape [2, 2] of bool needs 4 data bytes, but the file has 3"
    );
}

#[test]
fn a_missing_file_is_an_io_error() {
    let path = temp_dir("missing").join("nothing-here.npy");
    match npy::read(&path) {
        Err(Error::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    let unwritable = path.join("below-a-missing-dir.npy");
    assert!(matches!(
        npy::write(&unwritable, &Tensor::scalar(0.0)),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
