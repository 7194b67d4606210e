//! `sum`, `mean` and `amax` over axes: for each output element, a loop over the reduced
//! elements in row-major order of their coordinates, folding as the interpreter does:
//! `acc = 0.0; acc = acc + x` (then `/ count` for `mean`), or `acc = -inf; acc = maximum(acc, x)`.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, LowerCx, arith};
use crate::graph::infer::reduced_axes;
use crate::graph::{ReduceOp, Shape};

/// Reduces `x` over `axes` into the unit range's elements of `out` (kept dimensions in order;
/// `keepdim` changes nothing about the order).
pub(crate) fn reduce(cx: &mut LowerCx, op: ReduceOp, axes: &[i64], x: &Buffer, out: &Buffer) {
    let axes = reduced_axes(x.shape(), axes).expect("invariant: the axes were inferred");
    let strides = x.shape().strides();
    let (mut kept, mut kept_strides) = (Vec::new(), Vec::new());
    let (mut reduced, mut reduced_strides) = (Vec::new(), Vec::new());
    for (d, (&dim, &stride)) in x.shape().dims().iter().zip(&strides).enumerate() {
        if axes.contains(&d) {
            reduced.push(dim);
            reduced_strides.push(stride);
        } else {
            kept.push(dim);
            kept_strides.push(stride);
        }
    }
    let count: usize = reduced.iter().product();
    let outer = [kept_strides, Shape::new(kept.clone()).strides()];
    let range = cx.unit_positions(1, out.shape().numel());
    let (x, out) = (x.addr, out.addr);
    cx.strided_range(&kept, &outer, range, &mut |cx, at| {
        let init = match op {
            ReduceOp::Sum | ReduceOp::Mean => cx.f32(0.0),
            ReduceOp::Max => cx.f32(f32::NEG_INFINITY),
        };
        let acc = cx.var(init);
        let base = at[0];
        cx.strided_loop(
            &reduced,
            std::slice::from_ref(&reduced_strides),
            &mut |cx, r| {
                let at = cx.b.ins().iadd(base, r[0]);
                let v = cx.load(types::F32, x, at);
                let folded = cx.b.use_var(acc);
                let folded = fold(cx, op, folded, v);
                cx.b.def_var(acc, folded);
            },
        );
        let result = cx.b.use_var(acc);
        let result = match op {
            ReduceOp::Mean => {
                let n = cx.f32(count as f32);
                cx.b.ins().fdiv(result, n)
            }
            ReduceOp::Sum | ReduceOp::Max => result,
        };
        cx.store(result, out, at[1]);
    });
}

fn fold(cx: &mut LowerCx, op: ReduceOp, acc: Value, x: Value) -> Value {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => cx.b.ins().fadd(acc, x),
        ReduceOp::Max => arith::maximum(cx, acc, x),
    }
}
