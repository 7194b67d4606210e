//! Host tensors: a shape and a row-major buffer of `f32`, `i32` or `bool`. Inputs, parameters,
//! constants and results all travel as [`Tensor`]. A `bool` element is one byte, 0 or 1, in
//! memory, in `.npy` files (`|b1`) and in hashes.
//!
//! Tensors are values whose buffers are shared until written (copy on write): a clone costs
//! a reference count, and a run whose output is an input, a parameter or a constant (an eval
//! forward whose dropouts were removed, a view of a leaf) hands that buffer out instead of
//! copying it, as PyTorch's eval-mode dropout returns its input. Writing through a shared
//! tensor (`as_f32_mut` and the like) first gives it a buffer of its own.

use std::fmt;
use std::sync::Arc;

use crate::alloc;
use crate::error::{Error, Result};
use crate::types::{DType, MAX_BYTES, Shape, TensorType};

/// The elements of a tensor.
#[derive(Clone, Debug)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 32-bit signed integers.
    I32(Vec<i32>),
    /// Truth values (dropout keep masks: `true` = kept).
    Bool(Vec<bool>),
}

/// A dense row-major tensor. Equality is bit-for-bit (NaN equals the same NaN, `-0.0` differs
/// from `+0.0`), which is what reproducibility tests want.
#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Shape,
    /// Shared by clones and by outputs that are a leaf's buffer; unique before any write.
    data: Arc<TensorData>,
}

impl Tensor {
    /// An `f32` tensor; fails if `data` does not fill `shape`.
    pub fn from_f32(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Tensor> {
        Tensor::new(shape.into(), TensorData::F32(data))
    }

    /// An `i32` tensor; fails if `data` does not fill `shape`.
    pub fn from_i32(shape: impl Into<Shape>, data: Vec<i32>) -> Result<Tensor> {
        Tensor::new(shape.into(), TensorData::I32(data))
    }

    /// A `bool` tensor; fails if `data` does not fill `shape`.
    pub fn from_bool(shape: impl Into<Shape>, data: Vec<bool>) -> Result<Tensor> {
        Tensor::new(shape.into(), TensorData::Bool(data))
    }

    /// A tensor from its parts; fails if the data does not fill the shape.
    pub fn new(shape: Shape, mut data: TensorData) -> Result<Tensor> {
        check_length(&shape, data.len())?;
        // A buffer holds exactly its elements (nothing spare past the end for generated code
        // to read unnoticed; the guard-page tests check it).
        data.shrink_to_fit();
        Ok(Tensor {
            shape,
            data: Arc::new(data),
        })
    }

    /// A tensor of `shape` over `source`'s buffer, shared (no copy): a view of it, as a run
    /// returns an output that is a leaf's buffer. `shape` holds as many elements.
    pub(crate) fn sharing(shape: &Shape, source: &Tensor) -> Tensor {
        debug_assert_eq!(
            shape.numel(),
            source.numel(),
            "invariant: a view keeps the size"
        );
        Tensor {
            shape: shape.clone(),
            data: Arc::clone(&source.data),
        }
    }

    /// Gives the tensor a buffer of its own if it shares one, before generated code writes
    /// it: a copy of the values if `keep_values`, else zeros (the run overwrites them).
    /// Fails, leaving it shared, if the memory cannot be had.
    pub(crate) fn unshare(&mut self, keep_values: bool) -> Result<()> {
        if Arc::get_mut(&mut self.data).is_some() {
            return Ok(());
        }
        let own = if keep_values {
            let what = || format!("a copy of a tensor of type {}", self.ty());
            match &*self.data {
                TensorData::F32(v) => TensorData::F32(alloc::copied(v, what)?),
                TensorData::I32(v) => TensorData::I32(alloc::copied(v, what)?),
                TensorData::Bool(v) => TensorData::Bool(alloc::copied(v, what)?),
            }
        } else {
            Tensor::zeros(&self.ty())?.into_data()
        };
        self.data = Arc::new(own);
        Ok(())
    }

    /// The elements, moved out (copied if the buffer is shared).
    fn into_data(self) -> TensorData {
        Arc::unwrap_or_clone(self.data)
    }

    /// True if the two tensors share one buffer (a clone not written since, or a run's
    /// output handed out from a leaf).
    pub fn shares_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    /// A 0-d `f32` tensor.
    pub fn scalar(value: f32) -> Tensor {
        Tensor {
            shape: Shape::scalar(),
            data: Arc::new(TensorData::F32(vec![value])),
        }
    }

    /// A tensor of this type filled with zeros; fails if the memory cannot be had.
    pub fn zeros(ty: &TensorType) -> Result<Tensor> {
        let n = elements(&ty.shape, ty.dtype)?;
        let what = || format!("a tensor of type {ty}");
        let data = match ty.dtype {
            DType::F32 => TensorData::F32(alloc::zeroed(n, what)?),
            DType::I32 => TensorData::I32(alloc::zeroed(n, what)?),
            DType::Bool => TensorData::Bool(alloc::zeroed(n, what)?),
        };
        Ok(Tensor {
            shape: ty.shape.clone(),
            data: Arc::new(data),
        })
    }

    /// A `bool` tensor of `shape` with every element `value` (an all-true mask); fails if the
    /// memory cannot be had.
    pub fn full_bool(shape: impl Into<Shape>, value: bool) -> Result<Tensor> {
        let shape = shape.into();
        let n = elements(&shape, DType::Bool)?;
        let data = alloc::filled(n, value, || format!("a tensor of type bool{shape}"))?;
        Ok(Tensor {
            shape,
            data: Arc::new(TensorData::Bool(data)),
        })
    }

    /// The elements, to fill in place (the shape, and so the length, stays): a buffer of
    /// this tensor's own, copied first if it was shared.
    pub(crate) fn data_mut(&mut self) -> &mut TensorData {
        Arc::make_mut(&mut self.data)
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match *self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::I32(_) => DType::I32,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// The type: element type and shape.
    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape.clone())
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// The `f32` elements, or `None` for another element type.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &*self.data {
            TensorData::F32(v) => Some(v),
            TensorData::I32(_) | TensorData::Bool(_) => None,
        }
    }

    /// The `i32` elements, or `None` for another element type.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &*self.data {
            TensorData::I32(v) => Some(v),
            TensorData::F32(_) | TensorData::Bool(_) => None,
        }
    }

    /// The `bool` elements, or `None` for another element type.
    pub fn as_bool(&self) -> Option<&[bool]> {
        match &*self.data {
            TensorData::Bool(v) => Some(v),
            TensorData::F32(_) | TensorData::I32(_) => None,
        }
    }

    /// Mutable `f32` elements, or `None` for another element type (a shared buffer is copied
    /// first, so other tensors keep their values).
    pub fn as_f32_mut(&mut self) -> Option<&mut [f32]> {
        match self.data_mut() {
            TensorData::F32(v) => Some(v),
            TensorData::I32(_) | TensorData::Bool(_) => None,
        }
    }

    /// Mutable `i32` elements, or `None` for another element type.
    pub fn as_i32_mut(&mut self) -> Option<&mut [i32]> {
        match self.data_mut() {
            TensorData::I32(v) => Some(v),
            TensorData::F32(_) | TensorData::Bool(_) => None,
        }
    }

    /// Mutable `bool` elements, or `None` for another element type.
    pub fn as_bool_mut(&mut self) -> Option<&mut [bool]> {
        match self.data_mut() {
            TensorData::Bool(v) => Some(v),
            TensorData::F32(_) | TensorData::I32(_) => None,
        }
    }

    /// The elements as little-endian bytes (what `.npy` files and hashes hold); a `bool` is
    /// one byte, 0 or 1.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &*self.data {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| u8::from(x)).collect(),
        }
    }
}

/// Summary figures of a tensor, as `dropjit run` prints them.
impl Tensor {
    /// The mean of the elements, accumulated in f64 in row-major order (NaN when empty); a
    /// `bool` counts as 0 or 1, so a mask's mean is its keep share.
    pub fn mean(&self) -> f64 {
        let sum: f64 = match &*self.data {
            TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).sum(),
            TensorData::I32(v) => v.iter().map(|&x| f64::from(x)).sum(),
            TensorData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).sum(),
        };
        sum / self.numel() as f64
    }

    /// The share of elements that are exactly zero (`+0.0` and `-0.0` both count; `false` for
    /// a mask, so its drop share).
    pub fn zero_share(&self) -> f64 {
        let zeros = match &*self.data {
            TensorData::F32(v) => v.iter().filter(|&&x| x == 0.0).count(),
            TensorData::I32(v) => v.iter().filter(|&&x| x == 0).count(),
            TensorData::Bool(v) => v.iter().filter(|&&x| !x).count(),
        };
        zeros as f64 / self.numel() as f64
    }

    /// FNV-1a 64 of the little-endian bytes of the elements: a fingerprint for reproducibility.
    pub fn fnv1a64(&self) -> u64 {
        fnv1a64(&self.to_le_bytes())
    }
}

/// The 64-bit FNV-1a hash (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape
            && (Arc::ptr_eq(&self.data, &other.data)
                || match (&*self.data, &*other.data) {
                    (TensorData::F32(a), TensorData::F32(b)) => {
                        a.len() == b.len()
                            && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
                    }
                    (TensorData::I32(a), TensorData::I32(b)) => a == b,
                    (TensorData::Bool(a), TensorData::Bool(b)) => a == b,
                    (TensorData::F32(_), TensorData::I32(_) | TensorData::Bool(_))
                    | (TensorData::I32(_), TensorData::F32(_) | TensorData::Bool(_))
                    | (TensorData::Bool(_), TensorData::F32(_) | TensorData::I32(_)) => false,
                })
    }
}

impl fmt::Display for Tensor {
    /// `f32[2, 2] [1, 2, 3, 4]`: the type, then every element, shortest round-trip decimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [", self.ty())?;
        match &*self.data {
            TensorData::F32(v) => write_list(f, v.iter().map(|x| format_f32(*x)))?,
            TensorData::I32(v) => write_list(f, v.iter().map(|x| x.to_string()))?,
            TensorData::Bool(v) => write_list(f, v.iter().map(|x| x.to_string()))?,
        }
        f.write_str("]")
    }
}

impl TensorData {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shrink_to_fit(&mut self) {
        match self {
            TensorData::F32(v) => v.shrink_to_fit(),
            TensorData::I32(v) => v.shrink_to_fit(),
            TensorData::Bool(v) => v.shrink_to_fit(),
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: impl Iterator<Item = String>) -> fmt::Result {
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(&item)?;
    }
    Ok(())
}

/// Shortest decimal that parses back to the same f32 (`nan`, `inf`, `-inf`, `-0` included).
pub fn format_f32(x: f32) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{x}")
    }
}

/// [`Error::DataLength`] unless a buffer of `len` elements holds a value of `shape`.
pub(crate) fn check_length(shape: &Shape, len: usize) -> Result<()> {
    if shape.checked_numel() == Some(len) {
        Ok(())
    } else {
        Err(Error::DataLength {
            shape: shape.clone(),
            expected: shape.checked_numel(),
            got: len,
        })
    }
}

/// The element count of a tensor of `shape` and `dtype`, if one can exist:
/// [`Error::OutOfMemory`] for a shape whose byte size no allocation can hold.
pub(crate) fn elements(shape: &Shape, dtype: DType) -> Result<usize> {
    // TensorType::fits_in_memory's rule without building a type: this runs on every call.
    let fits = (shape.extent())
        .and_then(|n| n.checked_mul(dtype.size()))
        .is_some_and(|bytes| bytes <= MAX_BYTES);
    match shape.checked_numel() {
        Some(n) if fits => Ok(n),
        _ => Err(Error::OutOfMemory {
            bytes: (shape.checked_numel()).and_then(|n| n.checked_mul(dtype.size())),
            what: format!("a tensor of type {dtype}{shape}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_answers() {
        // The FNV reference values for "" and "a".
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn summaries_and_bitwise_equality() {
        let t = Tensor::from_f32([4], vec![0.0, -0.0, 2.0, 6.0]).unwrap();
        assert_eq!(t.mean(), 2.0);
        assert_eq!(t.zero_share(), 0.5);
        let u = Tensor::from_f32([4], vec![0.0, 0.0, 2.0, 6.0]).unwrap();
        assert_ne!(t, u, "-0.0 and +0.0 differ bitwise");
        let nan = Tensor::scalar(f32::NAN);
        assert_eq!(nan, nan.clone());
        let err = Tensor::from_f32([2, 3], vec![1.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a tensor of shape [2, 3] needs 6 values, but got 1"
        );
        assert_eq!(t.to_string(), "f32[4] [0, -0, 2, 6]");
    }

    #[test]
    fn bool_tensors_count_as_zero_and_one() {
        let m = Tensor::from_bool([2, 2], vec![true, false, true, true]).unwrap();
        assert_eq!(m.ty().to_string(), "bool[2, 2]");
        assert_eq!(m.mean(), 0.75);
        assert_eq!(m.zero_share(), 0.25);
        assert_eq!(m.to_le_bytes(), [1, 0, 1, 1]);
        assert_eq!(m.fnv1a64(), fnv1a64(&[1, 0, 1, 1]));
        assert_eq!(m.to_string(), "bool[2, 2] [true, false, true, true]");
        assert_eq!(Tensor::full_bool([2, 2], true).unwrap().zero_share(), 0.0);
        assert_ne!(m, Tensor::zeros(&m.ty()).unwrap());
        assert_eq!(
            Tensor::zeros(&m.ty()).unwrap().as_bool().unwrap(),
            [false; 4]
        );
    }
}
