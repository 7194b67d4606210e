//! Reading and writing NumPy `.npy` files holding one `f32` (`<f4`), `i32` (`<i4`) or `bool`
//! (`|b1`: one byte per element, 0 or 1, as `numpy.save` writes a bool array) tensor.
//!
//! The format (numpy.lib.format): the magic `\x93NUMPY`, a major and a minor version byte, the
//! header's length (u16 little-endian for 1.0; u32 for 2.0 and 3.0), then the header: a Python
//! dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces
//! and ended by `\n`, then the elements, row-major, little-endian.
//!
//! Writing produces what `numpy.save` does for a C-contiguous array: version 1.0 (2.0 once the
//! header passes 65535 bytes), keys sorted, `21 - len(repr(shape[0]))` spaces of growth room
//! after the dict for a non-scalar, then spaces and the newline up to a multiple of 64 bytes (a
//! header already at one gets 64 more, as numpy's `ARRAY_ALIGN - x % ARRAY_ALIGN` does). Reading
//! takes versions 1.0, 2.0 and 3.0 with any spacing, quote style and key order; the data has to
//! fill the rest of the file exactly.

use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::{Tensor, TensorData};
use crate::types::{DType, Shape};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the data to this many bytes.
const ALIGN: usize = 64;
/// numpy leaves room for this many digits in the first dimension (to append in place).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Writes `tensor` to `path` as a version 1.0 `.npy` file, atomically
/// ([`crate::fs_atomic::write`]): on an error the file that was there is left as it was.
pub fn write(path: &Path, tensor: &Tensor) -> Result<()> {
    crate::fs_atomic::write(path, &encode(tensor))
}

/// Reads the tensor stored in the `.npy` file at `path`.
pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(path, &bytes)
}

/// The tensor in `bytes`, the contents of the `.npy` file `path` (which errors name): what
/// [`read`] does once it has the bytes.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Tensor> {
    tensor(bytes).map_err(|message| Error::Npy {
        path: path.to_path_buf(),
        message,
    })
}

/// The bytes of a `.npy` file holding `tensor`, exactly as `numpy.save` writes them.
pub fn encode(tensor: &Tensor) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        descr(tensor.dtype()),
        shape_repr(tensor.shape())
    );
    if let Some(first) = tensor.shape().dims().first() {
        let digits = first.to_string().len();
        header.extend(std::iter::repeat_n(' ', GROWTH_AXIS_MAX_DIGITS - digits));
    }
    let v1 = pad_header(&header, 2);
    let mut bytes = MAGIC.to_vec();
    match u16::try_from(v1.len()) {
        Ok(length) => {
            bytes.extend_from_slice(&[1, 0]);
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(v1.as_bytes());
        }
        // Version 1.0 keeps the header length in a u16; a longer header (thousands of
        // dimensions) takes version 2.0 and a u32, as numpy does.
        Err(_) => {
            let v2 = pad_header(&header, 4);
            let length = u32::try_from(v2.len())
                .expect("invariant: a header is below 4 GiB (a shape is not a billion dims)");
            bytes.extend_from_slice(&[2, 0]);
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(v2.as_bytes());
        }
    }
    bytes.extend_from_slice(&tensor.to_le_bytes());
    bytes
}

/// The header with spaces and a newline appended so that the magic, the version, the
/// `width`-byte length and the header end on a multiple of 64 bytes.
fn pad_header(header: &str, width: usize) -> String {
    let unpadded = MAGIC.len() + 2 + width + header.len() + 1;
    let mut padded = header.to_string();
    padded.extend(std::iter::repeat_n(' ', ALIGN - unpadded % ALIGN));
    padded.push('\n');
    padded
}

/// The `descr` of a dtype: little-endian, four bytes; `|b1` (no byte order) for one-byte bools.
fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::I32 => "<i4",
        DType::Bool => "|b1",
    }
}

/// Python's `repr` of a shape tuple: `()`, `(3,)`, `(2, 3)`.
fn shape_repr(shape: &Shape) -> String {
    match shape.dims() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// The tensor in `.npy` bytes, or what is wrong with them.
fn tensor(bytes: &[u8]) -> Result<Tensor, String> {
    let (header, data) = split_header(bytes)?;
    let fields = parse_header(header)?;
    let dtype = match fields.descr.as_str() {
        "<f4" => DType::F32,
        "<i4" => DType::I32,
        "|b1" => DType::Bool,
        other => {
            return Err(format!(
                "unsupported dtype '{other}' (dropjit reads '<f4', '<i4' and '|b1')"
            ));
        }
    };
    if fields.fortran_order {
        return Err(
            "fortran_order is True; save a C-contiguous array (numpy.ascontiguousarray)"
                .to_string(),
        );
    }
    let shape = Shape(fields.shape);
    let expected = shape
        .dims()
        .iter()
        .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("shape {shape} has too many elements"))?;
    if data.len() != expected {
        let problem = if data.len() < expected {
            "truncated data"
        } else {
            "trailing bytes"
        };
        return Err(format!(
            "{problem}: shape {shape} of {} needs {expected} data bytes, but the file has {}",
            dtype.name(),
            data.len()
        ));
    }
    let words = data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    let data = match dtype {
        DType::F32 => TensorData::F32(words.map(f32::from_le_bytes).collect()),
        DType::I32 => TensorData::I32(words.map(i32::from_le_bytes).collect()),
        DType::Bool => TensorData::Bool(bools(data)?),
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// One-byte bools; numpy writes only 0 and 1, and any other byte is not a bool we could
/// represent.
fn bools(data: &[u8]) -> Result<Vec<bool>, String> {
    data.iter()
        .enumerate()
        .map(|(i, &b)| match b {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!(
                "bool element {i} is the byte {other}; a bool has to be 0 or 1"
            )),
        })
        .collect()
}

/// Checks the magic and version; returns the header text and the data bytes after it.
fn split_header(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    if bytes.len() < MAGIC.len() + 2 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a .npy file (it does not start with \\x93NUMPY)".to_string());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let width = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(format!(
                "unsupported .npy format version {major}.{minor} (dropjit reads 1.0, 2.0 and 3.0)"
            ));
        }
    };
    let start = 8 + width;
    let length_bytes = bytes
        .get(8..start)
        .ok_or("truncated in the header length")?;
    let length = length_bytes
        .iter()
        .rev()
        .fold(0usize, |n, &b| n << 8 | usize::from(b));
    let header = start
        .checked_add(length)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| {
            format!(
                "truncated: the header claims {length} bytes but the file has {} after the length",
                bytes.len() - start
            )
        })?;
    // Versions 1.0 and 2.0 are latin-1, 3.0 is UTF-8; the headers we read are ASCII in both.
    let text =
        std::str::from_utf8(header).map_err(|_| "the header is not ASCII text".to_string())?;
    Ok((text, &bytes[start + length..]))
}

/// The three fields a header holds.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` in any key order.
fn parse_header(text: &str) -> Result<Header, String> {
    let mut p = Literal {
        rest: text.trim_end(),
    };
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    p.expect('{')?;
    while !p.eat('}') {
        let key = p.string()?;
        p.expect(':')?;
        match key.as_str() {
            "descr" => descr = Some(p.string()?),
            "fortran_order" => fortran_order = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(format!("unexpected header key '{other}'")),
        }
        if !p.eat(',') {
            p.expect('}')?;
            break;
        }
    }
    if !p.rest.is_empty() {
        return Err(format!(
            "unexpected text after the header dict: {:?}",
            p.rest
        ));
    }
    let missing = |key: &str| format!("the header has no '{key}'");
    Ok(Header {
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// A cursor over the Python literal of a header; every method skips leading whitespace.
struct Literal<'a> {
    rest: &'a str,
}

impl Literal<'_> {
    /// Consumes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "malformed header: expected '{c}' at {:?}",
                self.rest
            ))
        }
    }

    /// A quoted string without escapes (the only kind numpy writes for these keys).
    fn string(&mut self) -> Result<String, String> {
        self.rest = self.rest.trim_start();
        let quote = match self.rest.chars().next() {
            Some(q @ ('\'' | '"')) => q,
            _ => {
                return Err(format!(
                    "malformed header: expected a string at {:?}",
                    self.rest
                ));
            }
        };
        let body = &self.rest[1..];
        let end = body
            .find(quote)
            .ok_or("malformed header: unterminated string")?;
        self.rest = &body[end + 1..];
        Ok(body[..end].to_string())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        self.rest = self.rest.trim_start();
        for (word, value) in [("True", true), ("False", false)] {
            if let Some(rest) = self.rest.strip_prefix(word) {
                self.rest = rest;
                return Ok(value);
            }
        }
        Err(format!(
            "malformed header: expected True or False at {:?}",
            self.rest
        ))
    }

    /// A tuple of non-negative integers: `()`, `(3,)`, `(2, 3)`.
    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect('(')?;
        let mut dims = Vec::new();
        while !self.eat(')') {
            self.rest = self.rest.trim_start();
            let digits = self.rest.len()
                - self
                    .rest
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            let dim = self.rest[..digits].parse().map_err(|_| {
                format!("malformed header: expected a dimension at {:?}", self.rest)
            })?;
            dims.push(dim);
            self.rest = &self.rest[digits..];
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok(dims)
    }
}
