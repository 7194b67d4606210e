//! `matmul` and `linear`: matrix products through one GEMM helper, either a call to
//! `matrixmultiply::sgemm` (the default) or plain loops in the interpreter's order
//! ([`Gemm::Reference`]). The bias of `linear` is added afterwards, in its own loop, so each
//! output is `dot + b[o]` with one rounding for the addition, as in the interpreter.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, Gemm, LowerCx, broadcast_strides};
use crate::graph::Shape;

/// A matrix view: its first element's address and its strides in elements.
#[derive(Clone, Copy)]
struct Matrix {
    addr: Value,
    row_stride: usize,
    col_stride: usize,
}

/// `torch.matmul` on rank >= 2 operands: one product per batch, batch dimensions broadcast
/// (stride 0 along a dimension an operand broadcasts).
pub(crate) fn matmul(cx: &mut LowerCx, a: &Buffer, b: &Buffer, out: &Buffer) {
    let dims = out.shape().dims();
    let rank = dims.len();
    let (m, n) = (dims[rank - 2], dims[rank - 1]);
    let a_dims = a.shape().dims();
    let k = a_dims[a_dims.len() - 1];
    let batch = Shape::new(&dims[..rank - 2]);
    let batch_strides = |operand: &Shape, matrix: usize| -> Vec<usize> {
        let own = Shape::new(&operand.dims()[..operand.rank() - 2]);
        let strides = broadcast_strides(&own, &batch);
        strides.into_iter().map(|s| s * matrix).collect()
    };
    let strides = [
        batch_strides(a.shape(), m * k),
        batch_strides(b.shape(), k * n),
        batch.strides().into_iter().map(|s| s * m * n).collect(),
    ];
    let (a, b, c) = (a.addr, b.addr, out.addr);
    cx.strided_loop(batch.dims(), &strides, &mut |cx, at| {
        let a = matrix(cx, a, at[0], k, 1);
        let b = matrix(cx, b, at[1], n, 1);
        let c = matrix(cx, c, at[2], n, 1);
        gemm(cx, (m, k, n), a, b, c);
    });
}

/// `y = x · Wᵀ (+ b)` with `x: [..., in]`, `W: [out, in]`, `b: [out]`.
pub(crate) fn linear(cx: &mut LowerCx, x: &Buffer, w: &Buffer, bias: Option<&Buffer>, y: &Buffer) {
    let (outs, ins) = (w.shape().dims()[0], w.shape().dims()[1]);
    let x_dims = x.shape().dims();
    let rows: usize = x_dims[..x_dims.len() - 1].iter().product();
    let zero = cx.index(0);
    let a = matrix(cx, x.addr, zero, ins, 1);
    // Wᵀ[i][o] = W[o][i]: rows of Wᵀ step by 1, columns by `in`.
    let b = matrix(cx, w.addr, zero, 1, ins);
    let c = matrix(cx, y.addr, zero, outs, 1);
    gemm(cx, (rows, ins, outs), a, b, c);
    if let Some(bias) = bias {
        let (bias, y) = (bias.addr, y.addr);
        let strides = [vec![outs, 1], vec![0, 1]];
        cx.strided_loop(&[rows, outs], &strides, &mut |cx, at| {
            let acc = cx.load(types::F32, y, at[0]);
            let b = cx.load(types::F32, bias, at[1]);
            let sum = cx.b.ins().fadd(acc, b);
            cx.store(sum, y, at[0]);
        });
    }
}

fn matrix(
    cx: &mut LowerCx,
    base: Value,
    offset: Value,
    row_stride: usize,
    col_stride: usize,
) -> Matrix {
    Matrix {
        addr: cx.element_addr(base, offset, 4),
        row_stride,
        col_stride,
    }
}

/// `C = A · B` for `A: m × k`, `B: k × n`, `C: m × n`; `C` is only written.
fn gemm(cx: &mut LowerCx, (m, k, n): (usize, usize, usize), a: Matrix, b: Matrix, c: Matrix) {
    if m == 0 || n == 0 {
        return;
    }
    match cx.gemm {
        Gemm::Blocked => {
            let mut args = Vec::with_capacity(12);
            for size in [m, k, n] {
                args.push(cx.index(size));
            }
            for matrix in [a, b, c] {
                args.push(matrix.addr);
                args.push(cx.index(matrix.row_stride));
                args.push(cx.index(matrix.col_stride));
            }
            cx.b.ins().call(cx.imports.sgemm, &args);
        }
        Gemm::Reference => reference_gemm(cx, (m, k, n), a, b, c),
    }
}

/// Each `C[i][j]` is `acc = 0.0; for kk ascending: acc = acc + A[i][kk] * B[kk][j]`, the
/// interpreter's order, so the result is bit-identical to it.
fn reference_gemm(
    cx: &mut LowerCx,
    (m, k, n): (usize, usize, usize),
    a: Matrix,
    b: Matrix,
    c: Matrix,
) {
    let outer = [
        vec![a.row_stride, 0],
        vec![0, b.col_stride],
        vec![c.row_stride, c.col_stride],
    ];
    cx.strided_loop(&[m, n], &outer, &mut |cx, at| {
        let (a_row, b_col, c_at) = (at[0], at[1], at[2]);
        let zero = cx.f32(0.0);
        let acc = cx.var(zero);
        let inner = [vec![a.col_stride], vec![b.row_stride]];
        cx.strided_loop(&[k], &inner, &mut |cx, kk| {
            let ai = cx.b.ins().iadd(a_row, kk[0]);
            let bi = cx.b.ins().iadd(b_col, kk[1]);
            let x = cx.load(types::F32, a.addr, ai);
            let y = cx.load(types::F32, b.addr, bi);
            let product = cx.b.ins().fmul(x, y);
            let sum = cx.b.use_var(acc);
            let sum = cx.b.ins().fadd(sum, product);
            cx.b.def_var(acc, sum);
        });
        let result = cx.b.use_var(acc);
        cx.store(result, c.addr, c_at);
    });
}
