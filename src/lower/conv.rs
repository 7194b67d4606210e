//! Convolution and its two gradients on the GEMM, each per image: the image's columns
//! (im2col: row `c * taps + tap`, column the output position, the input element that tap
//! reads, `+0.0` in the padding, whose load goes to the plane's first element instead so it
//! never leaves the buffer) in the node's scratch, then one matrix product per group:
//! - forward: `out[n, group] = W[group] · columns[group]`, then the bias;
//! - weight gradient: `T = g[n, group] · columns[group]ᵀ`, added to the gradient image after
//!   image (one call);
//! - input gradient: `columns[group] = W[group]ᵀ · g[n, group]`, then col2im, taps in order.
//!
//! Each is its op's definition ([`crate::graph::Op`]) in the same order of operations, so with
//! [`crate::Gemm::Reference`] the interpreter's bits.

use cranelift_codegen::ir::{InstBuilder, Value};

use super::window::store_geometry;
use super::{Buffer, LowerCx, linalg};
use crate::graph::{Conv, Shape};
use crate::jit::Import;
use crate::window;

/// `conv` of `x` with `w` (and `bias`) for the unit range's images: per image, its columns
/// into the node's scratch (row `c * taps + tap`, column the output position: the input
/// element that tap reads, `+0.0` in the padding), then per group one product
/// `out[n, group] = W[group] · columns[group]` on the GEMM (its `k` runs over the group's
/// channels and taps in the weight's order: with [`crate::Gemm::Reference`], the
/// interpreter's sum, bit for bit), then in one pass the bias and, with `relu`, the ReLU that
/// reads it (fused by `plan::fusion`, rule 5) into that buffer (which may be `out` itself).
pub(crate) fn conv(
    cx: &mut LowerCx,
    id: crate::graph::NodeId,
    conv: &Conv,
    (x, w, bias): (&Buffer, &Buffer, Option<&Buffer>),
    out: &Buffer,
    relu: Option<&Buffer>,
) {
    let shapes = Shapes::new(conv, x.shape(), out.shape(), w.shape());
    let (channels, out_channels, group_channels) =
        (shapes.channels, shapes.out_channels, shapes.group_channels);
    let (per_group, out_plane, taps) = (shapes.per_group(), shapes.out_plane(), shapes.taps());
    let rows = channels * taps;
    let columns = cx.scratch_addr(id);
    // This chunk's block of columns (rows * out_plane elements), its images in turn.
    let chunk = cx.chunk_index();
    let block = cx.b.ins().imul_imm_u(chunk, (rows * out_plane) as i64);
    let image_columns = cx.element_addr(columns, block, 4);
    let (start, stop) = cx.unit_positions(1, shapes.images);
    cx.range_loop(start, stop, &mut |cx, n| {
        im2col(cx, &shapes, x.addr, n, image_columns);
        // One product per group: [O/g, (C/g) taps] · [(C/g) taps, positions].
        let out_image = cx.b.ins().imul_imm_u(n, (out_channels * out_plane) as i64);
        for group in 0..conv.groups {
            let w_at = cx.index(group * per_group * group_channels * taps);
            let a = linalg::matrix(cx, w.addr, w_at, group_channels * taps, 1);
            let cols_at = cx.index(group * group_channels * taps * out_plane);
            let b = linalg::matrix(cx, image_columns, cols_at, out_plane, 1);
            let c_at =
                cx.b.ins()
                    .iadd_imm_u(out_image, (group * per_group * out_plane) as i64);
            let c = linalg::matrix(cx, out.addr, c_at, out_plane, 1);
            let (m, n_cols) = (cx.index(per_group), cx.index(out_plane));
            linalg::gemm(cx, (m, group_channels * taps, n_cols), a, b, c);
        }
        if bias.is_some() || relu.is_some() {
            let null = cx.index(0);
            let image = cx.element_addr(out.addr, out_image, 4);
            let bias = bias.map_or(null, |b| b.addr);
            let relu = match relu {
                Some(relu) => cx.element_addr(relu.addr, out_image, 4),
                None => null,
            };
            let (rows, positions) = (cx.index(out_channels), cx.index(out_plane));
            cx.call(Import::ConvEpilogue, &[image, bias, relu, rows, positions]);
        }
    });
}

/// The input gradient of `conv` ([`crate::graph::Op::ConvInputGrad`]) for the unit range's
/// images: per image and group the product `columns = W[group]ᵀ · g[n, group]` (its `k` the
/// group's output channels in order) into the node's scratch, then col2im: the image's
/// gradient zeroed, and each column element added to the input element its tap reads, taps
/// in row-major order (with the reference GEMM the interpreter's sums, bit for bit).
pub(crate) fn input_grad(
    cx: &mut LowerCx,
    id: crate::graph::NodeId,
    conv: &Conv,
    (g, w): (&Buffer, &Buffer),
    out: &Buffer,
) {
    let shapes = Shapes::new(conv, out.shape(), g.shape(), w.shape());
    let (channels, out_channels, group_channels) =
        (shapes.channels, shapes.out_channels, shapes.group_channels);
    let (per_group, g_plane, taps) = (shapes.per_group(), shapes.out_plane(), shapes.taps());
    let group_rows = group_channels * taps;
    let rows = channels * taps;
    let columns = cx.scratch_addr(id);
    // This chunk's block of columns, its images in turn.
    let chunk = cx.chunk_index();
    let block = cx.b.ins().imul_imm_u(chunk, (rows * g_plane) as i64);
    let image_columns = cx.element_addr(columns, block, 4);
    let (start, stop) = cx.unit_positions(1, shapes.images);
    cx.range_loop(start, stop, &mut |cx, n| {
        let g_image = cx.b.ins().imul_imm_u(n, (out_channels * g_plane) as i64);
        for group in 0..conv.groups {
            // Wᵀ: element (r, o) is W[group * O/g + o][r].
            let w_at = cx.index(group * per_group * group_rows);
            let a = linalg::matrix(cx, w.addr, w_at, 1, group_rows);
            let g_at =
                cx.b.ins()
                    .iadd_imm_u(g_image, (group * per_group * g_plane) as i64);
            let b = linalg::matrix(cx, g.addr, g_at, g_plane, 1);
            let cols_at = cx.index(group * group_rows * g_plane);
            let c = linalg::matrix(cx, image_columns, cols_at, g_plane, 1);
            let (m, n_cols) = (cx.index(group_rows), cx.index(g_plane));
            linalg::gemm(cx, (m, per_group, n_cols), a, b, c);
        }
        // col2im: the image's gradient from +0.0, taps in order.
        let words = shapes.store(cx);
        let image = shapes.image(cx, out.addr, n);
        cx.call(Import::Col2im, &[words, image_columns, image]);
    });
}

/// The weight gradient of `conv` ([`crate::graph::Op::ConvWeightGrad`]) for the unit range's
/// input channels (the weight's columns they own, for every output channel): those columns
/// zeroed, then per image the channels' columns into the node's scratch, per group the
/// product `T = g[n, group] · columns[group]ᵀ` on the channels' part (its `k` the output
/// positions in order: with the reference GEMM the interpreter's per-image sum, bit for bit)
/// after them, and `dW = dW + T` there. Every element is one unit's, so the bits do not
/// depend on the threads.
pub(crate) fn weight_grad(
    cx: &mut LowerCx,
    id: crate::graph::NodeId,
    conv: &Conv,
    (g, x): (&Buffer, &Buffer),
    out: &Buffer,
) {
    let shapes = Shapes::new(conv, x.shape(), g.shape(), out.shape());
    let (channels, out_channels, group_channels) =
        (shapes.channels, shapes.out_channels, shapes.group_channels);
    let (per_group, g_plane, taps) = (shapes.per_group(), shapes.out_plane(), shapes.taps());
    let group_rows = group_channels * taps;
    let columns = cx.scratch_addr(id);
    let products_at = cx.index(channels * taps * g_plane);
    let products = cx.element_addr(columns, products_at, 4);
    let (c_start, c_stop) = cx.unit_positions(1, channels);
    // Per group, the unit's channels in it (`[l0, l1)` of its `C/g`) and the weight's block
    // of its output channels' rows.
    let parts: Vec<(Value, Value, Value)> = (0..conv.groups)
        .map(|group| {
            let base = cx.index(group * group_channels);
            let end = cx.index((group + 1) * group_channels);
            let local = |cx: &mut LowerCx, c: Value| {
                let c = cx.b.ins().umax(c, base);
                let c = cx.b.ins().umin(c, end);
                cx.b.ins().isub(c, base)
            };
            let (l0, l1) = (local(cx, c_start), local(cx, c_stop));
            let block = cx.index(group * per_group * group_rows);
            (l0, l1, block)
        })
        .collect();
    let null = cx.index(0);
    let taps_of = |cx: &mut LowerCx, l: Value| cx.b.ins().imul_imm_u(l, taps as i64);
    for &(l0, l1, block) in &parts {
        let dw = cx.element_addr(out.addr, block, 4);
        let (from, to) = (taps_of(cx, l0), taps_of(cx, l1));
        let (rows, stride) = (cx.index(per_group), cx.index(group_rows));
        cx.call(Import::AddBlock, &[dw, null, rows, stride, from, to]);
    }
    cx.counted_loop(shapes.images, &mut |cx, n| {
        let words = shapes.store(cx);
        let image = shapes.image(cx, x.addr, n);
        cx.call(Import::Im2col, &[words, image, columns, c_start, c_stop]);
        let g_image = cx.b.ins().imul_imm_u(n, (out_channels * g_plane) as i64);
        for (group, &(l0, l1, block)) in parts.iter().enumerate() {
            let g_at =
                cx.b.ins()
                    .iadd_imm_u(g_image, (group * per_group * g_plane) as i64);
            let a = linalg::matrix(cx, g.addr, g_at, g_plane, 1);
            // columnsᵀ from the unit's first channel: element (p, r) is columns[r][p].
            let first_row = cx.b.ins().iadd_imm_u(l0, (group * group_channels) as i64);
            let first_row = taps_of(cx, first_row);
            let cols_at = cx.b.ins().imul_imm_u(first_row, g_plane as i64);
            let b = linalg::matrix(cx, columns, cols_at, 1, g_plane);
            let (from, to) = (taps_of(cx, l0), taps_of(cx, l1));
            let t_at = cx.b.ins().iadd(block, from);
            let c = linalg::matrix(cx, products, t_at, group_rows, 1);
            let m = cx.index(per_group);
            let n_cols = cx.b.ins().isub(to, from);
            linalg::gemm(cx, (m, g_plane, n_cols), a, b, c);
            let dw = cx.element_addr(out.addr, block, 4);
            let t = cx.element_addr(products, block, 4);
            let (rows, stride) = (cx.index(per_group), cx.index(group_rows));
            cx.call(Import::AddBlock, &[dw, t, rows, stride, from, to]);
        }
    });
}

/// A convolution's sizes as its three kernels see them, from its input side (the input, or
/// the input gradient), its output side (the output, or the output's gradient) and its
/// weight; and the window geometry the window kernels are called with.
struct Shapes<'a> {
    conv: &'a Conv,
    /// 1 for an unbatched input.
    images: usize,
    channels: usize,
    in_size: Vec<usize>,
    out_size: Vec<usize>,
    out_channels: usize,
    /// Input channels per group (the weight's second dimension).
    group_channels: usize,
    kernel: Vec<usize>,
}

impl<'a> Shapes<'a> {
    fn new(conv: &'a Conv, input: &Shape, output: &Shape, weight: &Shape) -> Shapes<'a> {
        let s = conv.spatial();
        let (x, y, w) = (input.dims(), output.dims(), weight.dims());
        Shapes {
            conv,
            images: if x.len() == s + 2 { x[0] } else { 1 },
            channels: x[x.len() - s - 1],
            in_size: x[x.len() - s..].to_vec(),
            out_size: y[y.len() - s..].to_vec(),
            out_channels: w[0],
            group_channels: w[1],
            kernel: w[2..].to_vec(),
        }
    }

    /// Output channels per group.
    fn per_group(&self) -> usize {
        self.out_channels / self.conv.groups
    }

    /// Output positions per channel.
    fn out_plane(&self) -> usize {
        self.out_size.iter().product()
    }

    /// Kernel positions.
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// The window geometry's words in a stack buffer of the function, and their address.
    fn store(&self, cx: &mut LowerCx) -> Value {
        let conv = self.conv;
        let geometry = window::Geometry::new(
            self.channels,
            &self.in_size,
            &self.out_size,
            &self.kernel,
            (&conv.stride, &conv.dilation, &conv.padding),
        );
        store_geometry(cx, &geometry)
    }

    /// The address of image `n` (pointer-sized) of the input side's buffer at `x`.
    fn image(&self, cx: &mut LowerCx, x: Value, n: Value) -> Value {
        let in_plane: usize = self.in_size.iter().product();
        let at = cx.b.ins().imul_imm_u(n, (self.channels * in_plane) as i64);
        cx.element_addr(x, at, 4)
    }
}

/// The columns of image `n` (pointer-sized) of `x` into `columns` ([`window::columns::dropjit_im2col`]):
/// row `c * taps + tap`, column the output position, holding the input element that tap reads
/// there, `+0.0` in the padding.
fn im2col(cx: &mut LowerCx, geo: &Shapes, x: Value, n: Value, columns: Value) {
    let words = geo.store(cx);
    let image = geo.image(cx, x, n);
    let (start, stop) = (cx.index(0), cx.index(geo.channels));
    cx.call(Import::Im2col, &[words, image, columns, start, stop]);
}
