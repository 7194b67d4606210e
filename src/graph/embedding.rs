//! Embedding lookup (`torch.nn.functional.embedding`): its attributes, its shape rule and its
//! definition.
//!
//! `embedding(indices, weight)`: `indices` are i32 of any shape `S`, `weight` is the table
//! `[num, dim]`; the value `[*S, dim]` holds row `indices[p]` of the table at each position
//! `p`, copied. An index outside `0..num` is a run-time error naming the node, the index and
//! its position (PyTorch: "index out of range in self"), on both engines, before any row is
//! read.
//!
//! Its gradient `embedding_grad(g, indices)` with respect to the table is `[num, dim]`: zeros,
//! then for each position `p` in row-major order, `row indices[p] += g[p]` element by element.
//! The sum of each table row is thus in position order from `+0.0` whatever the thread count
//! (the compiled scatter-add splits the table's columns, never its positions). The row
//! `padding_idx` (if any; negative counts from the end, as in PyTorch) gets no gradient: it
//! stays zero, and the forward reads it as any other row.

use crate::error::TypeError;
use crate::types::Shape;

/// The attributes of an embedding lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Embedding {
    /// The table row that gets no gradient (PyTorch's `padding_idx`; negative counts from the
    /// end).
    pub padding_idx: Option<i64>,
}

/// The attributes of an embedding's table gradient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingGrad {
    /// The table's rows (`num`).
    pub num_embeddings: usize,
    /// As the forward's.
    pub padding_idx: Option<i64>,
}

/// The row `padding_idx` names in a table of `num` rows, checked: `-num <= padding_idx < num`
/// (PyTorch's rule).
pub fn padding_row(
    op: &'static str,
    padding_idx: Option<i64>,
    num: usize,
) -> Result<Option<usize>, TypeError> {
    let Some(p) = padding_idx else {
        return Ok(None);
    };
    let num_i = i64::try_from(num).unwrap_or(i64::MAX);
    let row = if p < 0 { p.checked_add(num_i) } else { Some(p) };
    match row {
        Some(row) if (0..num_i).contains(&row) => Ok(Some(row as usize)),
        _ => Err(TypeError::Embedding {
            op,
            reason: format!("padding_idx has to be within -{num}..{num}, but is {p}"),
        }),
    }
}

/// The table `[num, dim]` of an embedding, checked.
pub fn table(op: &'static str, weight: &Shape) -> Result<(usize, usize), TypeError> {
    match *weight.dims() {
        [num, dim] => Ok((num, dim)),
        _ => Err(TypeError::Embedding {
            op,
            reason: format!("the table has to be [num_embeddings, embedding_dim], but is {weight}"),
        }),
    }
}

/// The value's shape: `indices`' shape followed by `dim`.
pub fn output_shape(indices: &Shape, dim: usize) -> Shape {
    let mut dims = indices.dims().to_vec();
    dims.push(dim);
    Shape::new(dims)
}
