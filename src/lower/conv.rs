//! Convolution, for a phase's output elements: each one the interpreter's sum
//! ([`crate::graph::Conv`]), its group's channels and the kernel's taps in the weight's order,
//! `acc = acc + x * w` with one rounding each, a tap in the padding reading `+0.0` (the load
//! goes to the plane's first element instead, so it never leaves the buffer), then the bias.
//!
//! This direct loop is the definition compiled, one output element at a time; the matrix
//! product over an im2col, and its fusion with what follows, is the next step of the CNN work.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Buffer, LowerCx};
use crate::graph::{Conv, Shape};

/// `conv` of `x` with `w` (and `bias`) into the unit range's elements of `out`.
pub(crate) fn conv(
    cx: &mut LowerCx,
    conv: &Conv,
    (x, w, bias): (&Buffer, &Buffer, Option<&Buffer>),
    out: &Buffer,
) {
    let s = conv.spatial();
    let x_dims = x.shape().dims();
    let channels = x_dims[x_dims.len() - s - 1];
    let in_size = x_dims[x_dims.len() - s..].to_vec();
    let out_dims = out.shape().dims();
    let out_size = out_dims[out_dims.len() - s..].to_vec();
    let w_dims = w.shape().dims();
    let (out_channels, group_channels, kernel) = (w_dims[0], w_dims[1], w_dims[2..].to_vec());
    let per_group = out_channels / conv.groups;
    let in_plane: usize = in_size.iter().product();
    let out_plane: usize = out_size.iter().product();
    let taps: usize = kernel.iter().product();
    let in_strides = Shape::new(in_size.clone()).strides();
    let (start, stop) = cx.unit_positions(1, out.shape().numel());
    cx.range_loop(start, stop, &mut |cx, e| {
        // e = ((n * O) + o) * out_plane + position
        let position = cx.b.ins().urem_imm_u(e, out_plane as i64);
        let image_channel = cx.b.ins().udiv_imm_u(e, out_plane as i64);
        let o = cx.b.ins().urem_imm_u(image_channel, out_channels as i64);
        let n = cx.b.ins().udiv_imm_u(image_channel, out_channels as i64);
        let g = cx.b.ins().udiv_imm_u(o, per_group as i64);
        let y = unravel(cx, position, &out_size);
        // The first input plane of the group: (n * C + g * C/groups) * in_plane.
        let first_channel = cx.b.ins().imul_imm_u(n, channels as i64);
        let group_start = cx.b.ins().imul_imm_u(g, group_channels as i64);
        let first_channel = cx.b.ins().iadd(first_channel, group_start);
        let zero = cx.f32(0.0);
        let acc = cx.var(zero);
        // The weights of output channel o: w[o, c, tap] at (o * C/groups + c) * taps + tap.
        let w_row = cx.b.ins().imul_imm_u(o, (group_channels * taps) as i64);
        cx.counted_loop(group_channels, &mut |cx, c| {
            let channel = cx.b.ins().iadd(first_channel, c);
            let plane = cx.b.ins().imul_imm_u(channel, in_plane as i64);
            let c_taps = cx.b.ins().imul_imm_u(c, taps as i64);
            let w_base = cx.b.ins().iadd(w_row, c_taps);
            cx.counted_loop(taps, &mut |cx, tap| {
                let k = unravel(cx, tap, &kernel);
                let xv = if in_plane == 0 {
                    // Every tap is in the padding.
                    cx.f32(0.0)
                } else {
                    let mut inside: Option<Value> = None;
                    let mut offset = cx.index(0);
                    for i in 0..s {
                        let at = cx.b.ins().imul_imm_u(y[i], conv.stride[i] as i64);
                        let tap_at = cx.b.ins().imul_imm_u(k[i], conv.dilation[i] as i64);
                        let at = cx.b.ins().iadd(at, tap_at);
                        // Below the padding wraps around to a huge index: one unsigned test.
                        let at = cx.b.ins().iadd_imm_u(at, -(conv.padding[i] as i64));
                        let fits =
                            cx.b.ins()
                                .icmp_imm_u(IntCC::UnsignedLessThan, at, in_size[i] as i64);
                        inside = Some(match inside {
                            Some(before) => cx.b.ins().band(before, fits),
                            None => fits,
                        });
                        let step = cx.b.ins().imul_imm_u(at, in_strides[i] as i64);
                        offset = cx.b.ins().iadd(offset, step);
                    }
                    let inside = inside.expect("invariant: a convolution has a spatial dimension");
                    let zero_offset = cx.index(0);
                    let offset = cx.b.ins().select(inside, offset, zero_offset);
                    let index = cx.b.ins().iadd(plane, offset);
                    let loaded = cx.load(types::F32, x.addr, index);
                    let zero = cx.f32(0.0);
                    cx.b.ins().select(inside, loaded, zero)
                };
                let w_index = cx.b.ins().iadd(w_base, tap);
                let wv = cx.load(types::F32, w.addr, w_index);
                let product = cx.b.ins().fmul(xv, wv);
                let sum = cx.b.use_var(acc);
                let sum = cx.b.ins().fadd(sum, product);
                cx.b.def_var(acc, sum);
            });
        });
        let mut result = cx.b.use_var(acc);
        if let Some(bias) = bias {
            let b = cx.load(types::F32, bias.addr, o);
            result = cx.b.ins().fadd(result, b);
        }
        cx.store(result, out.addr, e);
    });
}

/// The row-major coordinates of `index` (pointer-sized) in `dims`.
fn unravel(cx: &mut LowerCx, mut index: Value, dims: &[usize]) -> Vec<Value> {
    let mut coords = vec![index; dims.len()];
    for i in (0..dims.len()).rev() {
        coords[i] = cx.b.ins().urem_imm_u(index, dims[i] as i64);
        index = cx.b.ins().udiv_imm_u(index, dims[i] as i64);
    }
    coords
}
