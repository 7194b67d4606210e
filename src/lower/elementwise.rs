//! Element-wise kernels: a group of unary, binary and dropout nodes that share one shape
//! ([`crate::compile::schedule::Kernel`]), lowered as ONE strided loop over that shape.
//!
//! A kernel whose members all have exact `f32x4` forms and whose operands all have its shape,
//! one element or its trailing dimensions (a bias row) becomes the vector loop of
//! [`super::simd`] (masks made in the loop). The rest take the scalar loop below, the fallback
//! for calls (`exp`, `log`, `selu`), other broadcasting operands and narrow channel masks.
//!
//! Before the scalar loop, every drawing dropout of the group has written its keep bytes in its own
//! phase ([`dropout::draw_phase`]). The loop covers the unit range's blocks of 128 elements
//! ([`super::phase`]); its body, per element:
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
use super::{ELEMENT_BLOCK, LowerCx, arith, broadcast_strides, simd};
use crate::compile::schedule::Kernel;
use crate::graph::{Graph, NodeId, Op};

/// Lowers the element-wise `kernel` of `graph` as one loop over the unit range's elements.
pub(crate) fn kernel(cx: &mut LowerCx, graph: &Graph, kernel: &Kernel) {
    let shape = &graph.node(kernel.nodes[0]).ty.shape;
    assert!(
        (kernel.nodes.iter()).all(|&id| graph.node(id).ty.shape == *shape),
        "invariant: the members of a fused kernel share its loop shape"
    );
    let externals = external_operands(graph, kernel);
    if simd::vectorizable(graph, kernel) {
        simd::kernel(cx, graph, kernel, &externals);
        return;
    }
    let keeps: Vec<Option<Keep>> = (kernel.nodes.iter())
        .map(|&id| match graph.node(id).op.drawn_dropout() {
            Some(d) => dropout::keep(cx, id, d, shape),
            None => None,
        })
        .collect();
    // One offset per external operand, one per drawn mask, and one for the outputs (which
    // all have the loop's shape).
    let mut strides: Vec<Vec<usize>> = (externals.iter())
        .map(|&id| broadcast_strides(&graph.node(id).ty.shape, shape))
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
            let value = cx.load(types::F32, addr, offset);
            values.insert(id, value);
        }
        let mut mask_at = mask_at.iter();
        for (&id, keep) in kernel.nodes.iter().zip(&keeps) {
            let args: Vec<Value> = (graph.operands(id).iter())
                .map(|operand| values[operand])
                .collect();
            let kept = keep.as_ref().map(|keep| {
                let offset = *mask_at
                    .next()
                    .expect("invariant: one offset per drawn mask");
                cx.load(types::I8, keep.addr, offset)
            });
            let value = element(cx, &graph.node(id).op, &args, kept);
            values.insert(id, value);
        }
        for (id, &addr) in kernel.outputs.iter().zip(&output_addrs) {
            cx.store(values[id], addr, output_at[0]);
        }
    });
}

/// The operands of `kernel`'s members computed outside it, each once, in first-use order.
fn external_operands(graph: &Graph, kernel: &Kernel) -> Vec<NodeId> {
    let mut externals: Vec<NodeId> = Vec::new();
    for &id in &kernel.nodes {
        for operand in graph.operands(id) {
            if !kernel.nodes.contains(&operand) && !externals.contains(&operand) {
                externals.push(operand);
            }
        }
    }
    externals
}

/// One member's value at the current element, from its operands' values (and its keep byte,
/// for a drawing dropout).
pub(super) fn element(cx: &mut LowerCx, op: &Op, args: &[Value], kept: Option<Value>) -> Value {
    match op {
        Op::Unary(op) => arith::unary(cx, *op, args[0]),
        Op::Binary(op) => arith::binary(cx, *op, args[0], args[1]),
        Op::Dropout(d) => dropout::element(cx, d, args[0], kept),
        Op::DropoutGrad(d) => dropout::grad_element(cx, d, args[0], kept),
        // The operand was loaded at its broadcast offset: that is the expansion.
        Op::Expand { .. } => args[0],
        Op::Input(_)
        | Op::Parameter(_)
        | Op::Constant(_)
        | Op::DropoutMask(_)
        | Op::MatMul
        | Op::Linear { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Reduce { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::CrossEntropy
        | Op::CrossEntropyGrad => panic!("invariant: a fused kernel holds only element-wise nodes"),
    }
}
