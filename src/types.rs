//! Element types, shapes and tensor types: what every node of a graph produces and every
//! host tensor holds. The ground floor of the crate: it imports nothing from it.
//!
//! Shapes are static: every dimension is known when the graph is built. A zero-sized
//! dimension is allowed (an empty batch), as in PyTorch.

use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float: activations, parameters, losses.
    F32,
    /// 32-bit signed integer: class targets.
    I32,
    /// A truth value stored in one byte, 0 or 1: dropout keep masks (`true` = kept).
    Bool,
}

impl DType {
    /// The name used by the textual IR and by messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::Bool => "bool",
        }
    }

    /// Parses a name printed by [`DType::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "f32" => Some(DType::F32),
            "i32" => Some(DType::I32),
            "bool" => Some(DType::Bool),
            _ => None,
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The dimensions of a tensor, outermost first (row-major).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Shape {
        Shape(dims.into())
    }

    /// The shape of a scalar: no dimensions, one element.
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The number of elements (1 for a scalar, 0 if any dimension is 0). Exact for every shape
    /// that [fits in memory](TensorType::fits_in_memory), as every node's and tensor's does.
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// The number of elements, or `None` if it overflows `usize` (a shape given by a caller,
    /// before it is known to fit in memory).
    pub fn checked_numel(&self) -> Option<usize> {
        if self.0.contains(&0) {
            return Some(0);
        }
        (self.0.iter()).try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// The product of the dimensions, each taken as at least 1, or `None` if it overflows
    /// `usize`: the element count of the shape without its empty dimensions, which bounds
    /// every stride and offset into it.
    pub fn extent(&self) -> Option<usize> {
        (self.0.iter()).try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }

    /// The strides that read a value of this shape at the coordinates of the (NumPy broadcast)
    /// shape `out`, which it has to broadcast to: trailing dimensions align, and a dimension
    /// of size 1, or one this shape lacks, gets stride 0.
    pub fn broadcast_strides(&self, out: &Shape) -> Vec<usize> {
        let own = self.strides();
        let shift = out.rank() - self.rank();
        (0..out.rank())
            .map(|d| match d.checked_sub(shift) {
                Some(i) if self.0[i] != 1 => own[i],
                Some(_) | None => 0,
            })
            .collect()
    }

    /// Resolves a PyTorch-style axis (negative counts from the end) against this rank.
    pub fn normalize_axis(&self, axis: i64) -> Option<usize> {
        normalize_axis(axis, self.rank())
    }

    /// `(outer, len, inner)` around a PyTorch-style `axis`: the rows along the axis are
    /// `outer * inner`, each `len` long with its elements `inner` apart (row `r` starts at
    /// `(r / inner) * len * inner + r % inner`). A scalar is one row of one element. `None`
    /// for an axis out of range.
    pub fn around_axis(&self, axis: i64) -> Option<(usize, usize, usize)> {
        let axis = self.normalize_axis(axis)?;
        let dims = self.dims();
        Some(match dims.get(axis) {
            Some(&len) => (
                dims[..axis].iter().product(),
                len,
                dims[axis + 1..].iter().product(),
            ),
            None => (1, 1, 1),
        })
    }

    /// NumPy broadcasting: aligns trailing dimensions; a dimension of 1 stretches.
    /// Returns `None` when two aligned dimensions differ and neither is 1.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let rank = self.rank().max(other.rank());
        let mut dims = vec![0; rank];
        for (i, dim) in dims.iter_mut().enumerate() {
            let a = self.dim_from_end(rank - 1 - i);
            let b = other.dim_from_end(rank - 1 - i);
            *dim = match (a, b) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => return None,
            };
        }
        Some(Shape(dims))
    }

    /// The dimension `k` places from the end, or 1 past the rank (broadcasting's implicit ones).
    fn dim_from_end(&self, k: usize) -> usize {
        if k < self.rank() {
            self.0[self.rank() - 1 - k]
        } else {
            1
        }
    }
}

/// Resolves a PyTorch-style axis against a rank: `-1` is the last axis. A scalar accepts
/// `0` and `-1` (PyTorch treats a 0-d tensor as if it had one dimension for this purpose).
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let effective = rank.max(1) as i64;
    let resolved = if axis < 0 { axis + effective } else { axis };
    (0..effective)
        .contains(&resolved)
        .then_some(resolved as usize)
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Shape {
        Shape(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Shape {
        Shape(dims.to_vec())
    }
}

/// The static type of a node's value: element type and shape, printed `f32[32, 784]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    /// A type from its parts.
    pub fn new(dtype: DType, shape: impl Into<Shape>) -> TensorType {
        TensorType {
            dtype,
            shape: shape.into(),
        }
    }

    /// An `f32` tensor of this shape.
    pub fn f32(shape: impl Into<Shape>) -> TensorType {
        TensorType::new(DType::F32, shape)
    }

    /// An `i32` tensor of this shape.
    pub fn i32(shape: impl Into<Shape>) -> TensorType {
        TensorType::new(DType::I32, shape)
    }

    /// A `bool` tensor of this shape.
    pub fn bool(shape: impl Into<Shape>) -> TensorType {
        TensorType::new(DType::Bool, shape)
    }

    /// Size of a buffer holding this value, in bytes. Exact for every type that
    /// [fits in memory](TensorType::fits_in_memory), as every node's and tensor's does.
    pub fn bytes(&self) -> usize {
        self.shape.numel() * self.dtype.size()
    }

    /// True if a value of this type fits in memory: its [extent](Shape::extent) in bytes is at
    /// most [`MAX_BYTES`], so its size, every stride and every byte offset into it fit in
    /// `isize` (even where a zero dimension makes it empty). Type inference refuses every
    /// other type, so each node's type, and each buffer planned for it, fits.
    pub fn fits_in_memory(&self) -> bool {
        (self.shape.extent())
            .and_then(|n| n.checked_mul(self.dtype.size()))
            .is_some_and(|bytes| bytes <= MAX_BYTES)
    }
}

/// The most bytes one value may take: what one allocation can hold (`isize::MAX`).
pub const MAX_BYTES: usize = isize::MAX as usize;

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let b =
            |a: &[usize], c: &[usize]| Shape::new(a.to_vec()).broadcast(&Shape::new(c.to_vec()));
        assert_eq!(b(&[2, 3], &[3]), Some(Shape::new([2, 3])));
        assert_eq!(b(&[2, 1], &[1, 4]), Some(Shape::new([2, 4])));
        assert_eq!(b(&[], &[5, 0]), Some(Shape::new([5, 0])));
        assert_eq!(b(&[1], &[0]), Some(Shape::new([0])));
        assert_eq!(b(&[2, 3], &[4]), None);
        assert_eq!(b(&[2], &[0]), None);
    }

    #[test]
    fn axes_and_strides() {
        assert_eq!(normalize_axis(-1, 3), Some(2));
        assert_eq!(normalize_axis(-3, 3), Some(0));
        assert_eq!(normalize_axis(-4, 3), None);
        assert_eq!(normalize_axis(3, 3), None);
        assert_eq!(normalize_axis(0, 0), Some(0));
        assert_eq!(normalize_axis(-1, 0), Some(0));
        assert_eq!(Shape::new([2, 3, 4]).strides(), vec![12, 4, 1]);
        assert_eq!(Shape::scalar().numel(), 1);
        assert_eq!(TensorType::f32([32, 784]).to_string(), "f32[32, 784]");
    }
}
