//! `matmul` and `linear`, for a phase's output rows: matrix products through one GEMM helper,
//! either a call to the blocked GEMM ([`crate::gemm`], the default) or plain loops in the interpreter's
//! order ([`Gemm::Reference`]). A call covers a run of rows; each output element sums in
//! the same order whichever run it falls in. The bias of `linear` is added afterwards, in its own loop, so each
//! output is `dot + b[o]` with one rounding for the addition, as in the interpreter.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, Gemm, LowerCx};
use crate::graph::Shape;
use crate::jit::Import;

/// A matrix view: its first element's address and its strides in elements.
#[derive(Clone, Copy)]
pub(super) struct Matrix {
    pub addr: Value,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// `torch.matmul` on rank >= 2 operands, each with whether its last two dimensions are
/// swapped (read in place, through its strides), for the unit range's output rows (batch
/// entries row-major, then rows): one product per batch entry's run of rows, batch dimensions
/// broadcast (stride 0 along a dimension an operand broadcasts).
pub(crate) fn matmul(
    cx: &mut LowerCx,
    (a, transpose_a): (&Buffer, bool),
    (b, transpose_b): (&Buffer, bool),
    out: &Buffer,
) {
    let dims = out.shape().dims();
    let rank = dims.len();
    let (m, n) = (dims[rank - 2], dims[rank - 1]);
    let a_dims = a.shape().dims();
    let k = a_dims[a_dims.len() - if transpose_a { 2 } else { 1 }];
    // Element (i, kk) of a's matrix and (kk, j) of b's, as (row, column) strides.
    let a_strides = if transpose_a { (1, m) } else { (k, 1) };
    let b_strides = if transpose_b { (1, k) } else { (n, 1) };
    let batch = Shape::new(&dims[..rank - 2]);
    let batch_strides = |operand: &Shape, matrix: usize| -> Vec<usize> {
        let own = Shape::new(&operand.dims()[..operand.rank() - 2]);
        let strides = own.broadcast_strides(&batch);
        strides.into_iter().map(|s| s * matrix).collect()
    };
    // Rows are the last dimension of the walk: A steps a row, B stays, C steps a row.
    let with_rows = |mut strides: Vec<usize>, row: usize| {
        strides.push(row);
        strides
    };
    let strides = [
        with_rows(batch_strides(a.shape(), m * k), a_strides.0),
        with_rows(batch_strides(b.shape(), k * n), 0),
        with_rows(batch.strides().into_iter().map(|s| s * m * n).collect(), n),
    ];
    let mut rows = batch.dims().to_vec();
    rows.push(m);
    let range = cx.unit_positions(1, batch.numel() * m);
    let (a, b, c) = (a.addr, b.addr, out.addr);
    cx.strided_segments(&rows, &strides, range, &mut |cx, at, count| {
        let a = matrix(cx, a, at[0], a_strides.0, a_strides.1);
        let b = matrix(cx, b, at[1], b_strides.0, b_strides.1);
        let c = matrix(cx, c, at[2], n, 1);
        let n = cx.index(n);
        gemm(cx, (count, k, n), a, b, c);
    });
}

/// `y = x · Wᵀ (+ b)` with `x: [..., in]`, `W: [out, in]`, `b: [out]`, for the unit range's
/// rows of `y`, or its columns if the plan cut the work `by_columns` (for few rows: every
/// `sgemm` call packs its whole right-hand matrix `Wᵀ`, and a slice of columns packs only its
/// part).
pub(crate) fn linear(
    cx: &mut LowerCx,
    x: &Buffer,
    w: &Buffer,
    bias: Option<&Buffer>,
    y: &Buffer,
    by_columns: bool,
) {
    let (outs, ins) = (w.shape().dims()[0], w.shape().dims()[1]);
    let x_dims = x.shape().dims();
    let rows: usize = x_dims[..x_dims.len() - 1].iter().product();
    let linear = Linear {
        x: x.addr,
        w: w.addr,
        bias: bias.map(|bias| bias.addr),
        y: y.addr,
        ins,
        outs,
    };
    if by_columns {
        let range = cx.unit_positions(1, outs);
        // Along the columns: W steps a row, y and b an element.
        let strides = [vec![ins], vec![1]];
        cx.strided_segments(&[outs], &strides, range, &mut |cx, at, count| {
            let zero = cx.index(0);
            let all_rows = cx.index(rows);
            let offsets = [zero, at[0], at[1]];
            linear_block(cx, &linear, offsets, at[1], (all_rows, count));
        });
    } else {
        let range = cx.unit_positions(1, rows);
        // Along the rows: x steps a row, y a row.
        let strides = [vec![ins], vec![outs]];
        cx.strided_segments(&[rows], &strides, range, &mut |cx, at, count| {
            let zero = cx.index(0);
            let all_columns = cx.index(outs);
            let offsets = [at[0], zero, at[1]];
            linear_block(cx, &linear, offsets, zero, (count, all_columns));
        });
    }
}

/// The buffers and sizes of a `linear`.
struct Linear {
    x: Value,
    w: Value,
    bias: Option<Value>,
    y: Value,
    ins: usize,
    outs: usize,
}

/// One block of `m` rows and `n` columns of a `linear`'s output: `offsets` are the elements
/// of its first row of `x`, its first row of `W` (= column of `Wᵀ`) and its first element of
/// `y`; `bias_at` its first element of `b`.
fn linear_block(
    cx: &mut LowerCx,
    l: &Linear,
    offsets: [Value; 3],
    bias_at: Value,
    (m, n): (Value, Value),
) {
    let a = matrix(cx, l.x, offsets[0], l.ins, 1);
    // Wᵀ[i][o] = W[o][i]: rows of Wᵀ step by 1, columns by `in`.
    let b = matrix(cx, l.w, offsets[1], 1, l.ins);
    let c = matrix(cx, l.y, offsets[2], l.outs, 1);
    gemm(cx, (m, l.ins, n), a, b, c);
    let Some(bias) = l.bias else {
        return;
    };
    let (y, outs) = (l.y, l.outs);
    let zero = cx.index(0);
    cx.range_loop(zero, m, &mut |cx, r| {
        let row = cx.b.ins().imul_imm_u(r, outs as i64);
        let row = cx.b.ins().iadd(offsets[2], row);
        cx.range_loop(zero, n, &mut |cx, o| {
            let at = cx.b.ins().iadd(row, o);
            let acc = cx.load(types::F32, y, at);
            let b_at = cx.b.ins().iadd(bias_at, o);
            let b = cx.load(types::F32, bias, b_at);
            let sum = cx.b.ins().fadd(acc, b);
            cx.store(sum, y, at);
        });
    });
}

pub(super) fn matrix(
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

/// `C = A · B` for `A: m × k`, `B: k × n`, `C: m × n`, with `m` and `n` known at run time
/// only; `C` is only written.
pub(super) fn gemm(
    cx: &mut LowerCx,
    (m, k, n): (Value, usize, Value),
    a: Matrix,
    b: Matrix,
    c: Matrix,
) {
    match cx.gemm {
        Gemm::Blocked => {
            let isa = cx.b.ins().iconst(types::I64, cx.isa as i64);
            let mut args = vec![isa, m, cx.index(k), n];
            for matrix in [a, b, c] {
                args.push(matrix.addr);
                args.push(cx.index(matrix.row_stride));
                args.push(cx.index(matrix.col_stride));
            }
            cx.call(Import::Sgemm, &args);
        }
        Gemm::Reference => reference_gemm(cx, (m, k, n), a, b, c),
    }
}

/// Each `C[i][j]` is `acc = 0.0; for kk ascending: acc = acc + A[i][kk] * B[kk][j]`, the
/// interpreter's order, so the result is bit-identical to it.
fn reference_gemm(
    cx: &mut LowerCx,
    (m, k, n): (Value, usize, Value),
    a: Matrix,
    b: Matrix,
    c: Matrix,
) {
    let zero = cx.index(0);
    cx.range_loop(zero, m, &mut |cx, i| {
        let a_row = cx.b.ins().imul_imm_u(i, a.row_stride as i64);
        let c_row = cx.b.ins().imul_imm_u(i, c.row_stride as i64);
        cx.range_loop(zero, n, &mut |cx, j| {
            let b_col = cx.b.ins().imul_imm_u(j, b.col_stride as i64);
            let c_at = cx.b.ins().imul_imm_u(j, c.col_stride as i64);
            let c_at = cx.b.ins().iadd(c_row, c_at);
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
    });
}
