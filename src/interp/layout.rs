//! Index arithmetic and data movement: walking a shape with arbitrary strides (broadcasting,
//! transposes, dropout masks), `reshape` and `transpose`.

use crate::graph::Shape;

use super::value::{Array, Value};

/// The element offsets met when walking `dims` in row-major order, where a step along
/// dimension `d` moves `strides[d]` elements. A stride of 0 re-reads (broadcasts) a dimension.
/// Rank 0 yields one offset, 0; a zero dimension yields none.
pub(crate) struct StridedOffsets {
    dims: Vec<usize>,
    strides: Vec<usize>,
    coords: Vec<usize>,
    offset: usize,
    remaining: usize,
}

impl StridedOffsets {
    /// Walks `dims` with `strides` (one per dimension).
    pub(crate) fn new(dims: &[usize], strides: &[usize]) -> StridedOffsets {
        assert_eq!(
            dims.len(),
            strides.len(),
            "invariant: one stride per dimension"
        );
        StridedOffsets {
            dims: dims.to_vec(),
            strides: strides.to_vec(),
            coords: vec![0; dims.len()],
            offset: 0,
            remaining: dims.iter().product(),
        }
    }
}

impl Iterator for StridedOffsets {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.offset;
        // Odometer: bump the last coordinate, carrying into earlier ones.
        for d in (0..self.dims.len()).rev() {
            self.coords[d] += 1;
            self.offset += self.strides[d];
            if self.coords[d] < self.dims[d] {
                break;
            }
            self.offset -= self.strides[d] * self.dims[d];
            self.coords[d] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for StridedOffsets {}

/// The elements of `a` read at every coordinate of `out` (which `a` broadcasts to).
pub(crate) fn broadcast_offsets(a: &Shape, out: &Shape) -> StridedOffsets {
    StridedOffsets::new(out.dims(), &a.broadcast_strides(out))
}

/// `x` broadcast to `out` (NumPy rules): `torch.expand`.
pub(crate) fn expand<T: Copy>(x: &Array<T>, out: &Shape) -> Array<T> {
    let data = broadcast_offsets(&x.shape, out)
        .map(|i| x.data[i])
        .collect();
    Array::filled(out.clone(), data)
}

/// The same elements under the node's inferred shape.
pub(crate) fn reshape<T: Clone>(x: &Value<T>, shape: &Shape) -> Value<T> {
    match x {
        Value::Float(a) => Value::Float(Array::filled(shape.clone(), a.data.clone())),
        Value::Int(a) => Value::Int(Array::filled(shape.clone(), a.data.clone())),
        Value::Bool(a) => Value::Bool(Array::filled(shape.clone(), a.data.clone())),
    }
}

/// Output dimension `i` is input dimension `perm[i]`.
pub(crate) fn transpose<T: Copy>(x: &Value<T>, perm: &[usize]) -> Value<T> {
    match x {
        Value::Float(a) => Value::Float(permute(a, perm)),
        Value::Int(a) => Value::Int(permute(a, perm)),
        Value::Bool(a) => Value::Bool(permute(a, perm)),
    }
}

fn permute<E: Copy>(x: &Array<E>, perm: &[usize]) -> Array<E> {
    let in_strides = x.shape.strides();
    let dims: Vec<usize> = perm.iter().map(|&p| x.shape.dims()[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let data = StridedOffsets::new(&dims, &strides)
        .map(|i| x.data[i])
        .collect();
    Array::filled(Shape(dims), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_offsets_walk_row_major() {
        let all: Vec<usize> = StridedOffsets::new(&[2, 3], &[3, 1]).collect();
        assert_eq!(all, [0, 1, 2, 3, 4, 5]);
        let columns: Vec<usize> = StridedOffsets::new(&[3, 2], &[1, 3]).collect();
        assert_eq!(columns, [0, 3, 1, 4, 2, 5]);
        assert_eq!(StridedOffsets::new(&[], &[]).collect::<Vec<_>>(), [0]);
        assert_eq!(StridedOffsets::new(&[2, 0], &[0, 1]).count(), 0);
    }

    #[test]
    fn broadcast_strides_zero_the_stretched_dimensions() {
        let out = Shape::new([2, 3, 4]);
        assert_eq!(Shape::new([3, 1]).broadcast_strides(&out), [0, 1, 0]);
        assert_eq!(Shape::new([2, 3, 4]).broadcast_strides(&out), [12, 4, 1]);
        assert_eq!(Shape::scalar().broadcast_strides(&out), [0, 0, 0]);
        let rows: Vec<usize> = broadcast_offsets(&Shape::new([3]), &Shape::new([2, 3])).collect();
        assert_eq!(rows, [0, 1, 2, 0, 1, 2]);
    }
}
