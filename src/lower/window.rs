//! Where a sliding window's taps read: the one computation generated pooling loops share,
//! and the geometry the rustc-compiled window kernels ([`crate::window`]) are called with.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::LowerCx;
use crate::graph::Shape;

/// A window's steps over an input of `in_size` (per spatial dimension).
pub(crate) struct Window<'a> {
    pub stride: &'a [usize],
    pub dilation: &'a [usize],
    pub padding: &'a [usize],
    pub in_size: &'a [usize],
    in_strides: Vec<usize>,
}

impl<'a> Window<'a> {
    pub(crate) fn new(
        stride: &'a [usize],
        dilation: &'a [usize],
        padding: &'a [usize],
        in_size: &'a [usize],
    ) -> Window<'a> {
        Window {
            stride,
            dilation,
            padding,
            in_size,
            in_strides: Shape::new(in_size.to_vec()).strides(),
        }
    }

    /// Tap `k` of the window at output position `y` (coordinates, pointer-sized): whether it
    /// is inside the input (an i8 truth value) and its offset in the input's plane, `0` when
    /// outside, so a load there never leaves the buffer.
    pub(crate) fn tap(&self, cx: &mut LowerCx, y: &[Value], k: &[Value]) -> (Value, Value) {
        let mut inside: Option<Value> = None;
        let mut offset = cx.index(0);
        for i in 0..self.in_size.len() {
            let at = cx.b.ins().imul_imm_u(y[i], self.stride[i] as i64);
            let tap_at = cx.b.ins().imul_imm_u(k[i], self.dilation[i] as i64);
            let at = cx.b.ins().iadd(at, tap_at);
            // Below the padding wraps around to a huge index: one unsigned test.
            let at = cx.b.ins().iadd_imm_u(at, -(self.padding[i] as i64));
            let fits = (cx.b.ins()).icmp_imm_u(IntCC::UnsignedLessThan, at, self.in_size[i] as i64);
            inside = Some(match inside {
                Some(before) => cx.b.ins().band(before, fits),
                None => fits,
            });
            let step = cx.b.ins().imul_imm_u(at, self.in_strides[i] as i64);
            offset = cx.b.ins().iadd(offset, step);
        }
        let inside = inside.expect("invariant: a window has a spatial dimension");
        let zero = cx.index(0);
        (inside, cx.b.ins().select(inside, offset, zero))
    }
}

/// The row-major coordinates of `index` (pointer-sized) in `dims`.
pub(crate) fn unravel(cx: &mut LowerCx, mut index: Value, dims: &[usize]) -> Vec<Value> {
    let mut coords = vec![index; dims.len()];
    for i in (0..dims.len()).rev() {
        coords[i] = cx.b.ins().urem_imm_u(index, dims[i] as i64);
        index = cx.b.ins().udiv_imm_u(index, dims[i] as i64);
    }
    coords
}

/// `geometry`'s words in a stack buffer of the function, and their address: the first
/// argument of every window kernel.
pub(crate) fn store_geometry(cx: &mut LowerCx, geometry: &crate::window::Geometry) -> Value {
    let words = geometry.words();
    let addr = cx.stack_buffer((8 * words.len()) as u32);
    for (i, &word) in words.iter().enumerate() {
        let value = cx.b.ins().iconst(types::I64, word as i64);
        cx.b.ins()
            .store(MemFlagsData::trusted(), value, addr, (8 * i) as i32);
    }
    addr
}
