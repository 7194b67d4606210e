//! Embedding lookup and its table gradient, the definition ([`crate::graph::embedding`]):
//! every index checked before any row is read; the gradient a scatter-add in position order.

use crate::error::Result;
use crate::graph::Op;
use crate::graph::embedding::padding_row;
use crate::math::Element;

use super::value::Array;

/// The first index of `indices` outside `0..bound`, as the op's error for node `node`.
fn check(op: &Op, node: &str, indices: &Array<i32>, bound: usize) -> Result<()> {
    let outside = |&(_, &i): &(usize, &i32)| usize::try_from(i).map_or(true, |i| i >= bound);
    match indices.data.iter().enumerate().find(outside) {
        Some((position, &index)) => Err(op.index_error(node, bound, index, position)),
        None => Ok(()),
    }
}

/// Row `indices[p]` of `weight` (`[num, dim]`) at each position `p`.
pub(crate) fn embedding<T: Element>(
    op: &Op,
    node: &str,
    indices: &Array<i32>,
    weight: &Array<T>,
) -> Result<Array<T>> {
    let (num, dim) = (weight.shape.dims()[0], weight.shape.dims()[1]);
    check(op, node, indices, num)?;
    let mut data = Vec::with_capacity(indices.data.len() * dim);
    for &i in &indices.data {
        let row = i as usize * dim;
        data.extend_from_slice(&weight.data[row..row + dim]);
    }
    let shape = crate::graph::embedding::output_shape(&indices.shape, dim);
    Ok(Array::filled(shape, data))
}

/// The table gradient `[num, dim]`: zeros, then `row indices[p] += g[p]` for each position in
/// order, the padding row left at zero.
pub(crate) fn embedding_grad<T: Element>(
    op: &Op,
    node: &str,
    g: &Array<T>,
    indices: &Array<i32>,
    num: usize,
    padding_idx: Option<i64>,
) -> Result<Array<T>> {
    check(op, node, indices, num)?;
    let dim = *g
        .shape
        .dims()
        .last()
        .expect("invariant: g is [*indices, dim]");
    let padding =
        padding_row(op.name(), padding_idx, num).expect("invariant: inference checked padding_idx");
    let mut data = vec![T::ZERO; num * dim];
    for (p, &i) in indices.data.iter().enumerate() {
        let i = i as usize;
        if Some(i) == padding {
            continue;
        }
        let (row, grad) = (
            &mut data[i * dim..(i + 1) * dim],
            &g.data[p * dim..(p + 1) * dim],
        );
        for (sum, &v) in row.iter_mut().zip(grad) {
            *sum = *sum + v;
        }
    }
    Ok(Array::filled(
        crate::graph::Shape::new(vec![num, dim]),
        data,
    ))
}
