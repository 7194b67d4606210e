//! The scalar loop of element-wise kernels: a group of unary, binary and dropout nodes that
//! share one shape ([`crate::plan::Kernel`]), lowered as ONE strided loop over that shape.
//!
//! The plan sends a kernel here unless it is a vector kernel ([`crate::plan::Form`], lowered by
//! [`super::simd`]): this is the loop for calls (`exp`, `log`, `selu`), other broadcasting
//! operands and narrow channel masks.
//!
//! Before the scalar loop, every drawing dropout of the group has written its keep bytes in its own
//! phase ([`dropout::draw_phase`]). The loop covers the unit range's blocks of 128 elements
//! ([`crate::plan::phase`]); its body, per element:
//! 1. loads each operand from outside the group once, at its broadcast offset (NumPy rules:
//!    stride 0 on broadcast dimensions);
//! 2. evaluates the members in order on SSA values, with the scalar arithmetic of
//!    [`super::arith`] (branch-free), each dropout reading its keep byte at the element's
//!    mask index;
//! 3. stores only the kernel's outputs.
//!
//! Values that no other kernel reads never touch memory. Unfused, every element-wise node is
//! a one-member kernel and takes the same path.

use std::collections::BTreeMap;

use cranelift_codegen::ir::{Value, types};

use super::dropout::{self, Keep};
use super::{LowerCx, arith};
use crate::graph::{Graph, NodeId};
use crate::plan::{ELEMENT_BLOCK, Kernel};

/// Lowers the element-wise `kernel` of `graph` as one loop over the unit range's elements.
pub(crate) fn kernel(cx: &mut LowerCx, graph: &Graph, kernel: &Kernel) {
    let shape = &graph[kernel.nodes[0]].ty.shape;
    assert!(
        (kernel.nodes.iter()).all(|&id| graph[id].ty.shape == *shape),
        "invariant: the members of a fused kernel share its loop shape"
    );
    let externals = &kernel.inputs;
    let keeps: Vec<Option<Keep>> = (kernel.nodes.iter())
        .map(|&id| match graph[id].op.drawn_dropout() {
            Some(d) => dropout::keep(cx, id, d, shape),
            None => None,
        })
        .collect();
    // One offset per external operand, one per drawn mask, and one for the outputs (which
    // all have the loop's shape).
    let mut strides: Vec<Vec<usize>> = (externals.iter())
        .map(|&id| graph[id].ty.shape.broadcast_strides(shape))
        .collect();
    strides.extend(keeps.iter().flatten().map(|keep| keep.strides.clone()));
    strides.push(shape.strides());
    let external_addrs: Vec<Value> = externals.iter().map(|&id| cx.node_addr(id)).collect();
    let output_addrs: Vec<Value> = kernel.outputs.iter().map(|&id| cx.node_addr(id)).collect();
    let range = cx.unit_positions(ELEMENT_BLOCK, shape.numel());
    cx.strided_range(shape.dims(), &strides, range, &mut |cx, at| {
        let (external_at, rest) = at.split_at(externals.len());
        let (mask_at, output_at) = rest.split_at(rest.len() - 1);
        let mut values: BTreeMap<NodeId, Value> = BTreeMap::new();
        for ((&id, &addr), &offset) in externals.iter().zip(&external_addrs).zip(external_at) {
            // f32 values, or a `where`'s condition: one byte.
            let ty = match graph[id].ty.dtype {
                crate::graph::DType::Bool => types::I8,
                _ => types::F32,
            };
            let value = cx.load(ty, addr, offset);
            values.insert(id, value);
        }
        let mut mask_at = mask_at.iter();
        for (&id, keep) in kernel.nodes.iter().zip(&keeps) {
            let args: Vec<Value> = (graph.operands_of(id).iter())
                .map(|operand| values[operand])
                .collect();
            let kept = keep.as_ref().map(|keep| {
                let offset = *mask_at
                    .next()
                    .expect("invariant: one offset per drawn mask");
                cx.load(types::I8, keep.addr, offset)
            });
            let op = graph[id].op.as_elementwise();
            let op = op.expect("invariant: a fused kernel holds only element-wise nodes");
            let value = arith::element(cx, op, &args, kept);
            values.insert(id, value);
        }
        for (id, &addr) in kernel.outputs.iter().zip(&output_addrs) {
            cx.store(values[id], addr, output_at[0]);
        }
    });
}
