//! Lowering: one graph becomes Cranelift functions of the entry ABI ([`crate::jit`]), one per
//! [`Phase`] of its kernels in the schedule's order ([`crate::compile::Schedule`]), every op
//! lowered (no interpreter fallback). A fused kernel of element-wise nodes is one loop.
//!
//! [`LowerCx`] is what every op's lowering works with: the `FunctionBuilder`, the map from
//! nodes to the table slots holding their buffers' addresses, the imported functions, the
//! phase's unit range `[begin, end)`, and the loop helpers every loop comes from:
//! - [`LowerCx::counted_loop`] emits `for i in 0..n` as a guarded do-while loop (body first,
//!   test at the bottom), because with the test at the top Cranelift hoisted almost nothing
//!   out of the body. Static counts get a static guard: a zero-trip loop emits nothing and a
//!   one-trip loop emits its body once. [`LowerCx::range_loop`] is the same over a run-time
//!   range, with a run-time guard.
//! - [`LowerCx::strided_loop`] walks a shape row-major and hands the body one element offset
//!   per operand, from per-dimension strides (0 broadcasts a dimension): broadcasting,
//!   transposes, reductions and dropout masks all use it. [`LowerCx::strided_range`] walks
//!   only the row-major positions `[start, stop)` of a shape, a unit range's part of it.
//!
//! The scalar arithmetic of every element-wise op lives in [`arith`], one definition each;
//! the op families' loops live in one file each (`elementwise` holds the fused loop).

pub mod arith;
mod dispatch;
mod dropout;
mod elementwise;
mod layout;
mod linalg;
pub mod phase;
pub mod philox;
mod reduce;
mod softmax;

use cranelift_codegen::ir::{
    FuncRef, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value, condcodes, types,
};
use cranelift_frontend::{FunctionBuilder, Variable};

pub(crate) use dispatch::lower_phase;
pub(crate) use dropout::scratch_bytes as dropout_scratch_bytes;
pub use phase::{ELEMENT_BLOCK, Part, Phase, Unit, phases};

use crate::graph::{NodeId, Shape, TensorType};

/// The Rust functions generated code calls, declared in the function being built.
#[derive(Clone, Copy, Debug)]
pub struct Imports {
    /// [`crate::math::exp_f32`].
    pub exp: FuncRef,
    /// [`crate::math::log_f32`].
    pub log: FuncRef,
    /// The `matrixmultiply::sgemm` wrapper (`C = A · B`, strided).
    pub sgemm: FuncRef,
}

/// How `matmul` and `linear` compute their dot products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Gemm {
    /// `matrixmultiply::sgemm`: blocked and vectorised; sums in its own order, so results
    /// differ from the interpreter's in the last bits.
    #[default]
    Blocked,
    /// Plain loops in the interpreter's order (from 0.0, k ascending, no FMA): bit-identical
    /// to the interpreter, and slow. For differential tests and reproducibility checks.
    Reference,
}

/// Which table slot holds each node's buffer address (and each dropout's keep-byte scratch).
#[derive(Clone, Debug, Default)]
pub(crate) struct BufferMap {
    nodes: Vec<Option<usize>>,
    scratch: Vec<Option<usize>>,
}

impl BufferMap {
    /// Records that `id`'s buffer address is in table slot `slot`.
    pub(crate) fn set_node(&mut self, id: NodeId, slot: usize) {
        set(&mut self.nodes, id, slot);
    }

    /// Records that the dropout `id`'s keep bytes are in table slot `slot`.
    pub(crate) fn set_scratch(&mut self, id: NodeId, slot: usize) {
        set(&mut self.scratch, id, slot);
    }

    /// The slot of `id`'s buffer.
    pub(crate) fn node(&self, id: NodeId) -> usize {
        self.nodes
            .get(id.index())
            .copied()
            .flatten()
            .expect("invariant: every node has a slot")
    }

    fn scratch(&self, id: NodeId) -> usize {
        let slot = self.scratch.get(id.index()).copied().flatten();
        slot.expect("invariant: every train-mode dropout has a scratch slot")
    }
}

fn set(map: &mut Vec<Option<usize>>, id: NodeId, slot: usize) {
    if map.len() <= id.index() {
        map.resize(id.index() + 1, None);
    }
    map[id.index()] = Some(slot);
}

/// A node's buffer: its address (loaded from the table) and its type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buffer<'g> {
    pub addr: Value,
    pub ty: &'g TensorType,
}

impl Buffer<'_> {
    /// The buffer's shape.
    pub fn shape(&self) -> &Shape {
        &self.ty.shape
    }
}

/// The state of lowering one phase into one function.
pub struct LowerCx<'a> {
    /// The function being built.
    pub b: FunctionBuilder<'a>,
    /// The pointer type, also used for every index.
    pub ptr: Type,
    table: Value,
    seed: Value,
    step: Value,
    error: Value,
    begin: Value,
    end: Value,
    buffers: &'a BufferMap,
    /// The imported Rust functions.
    pub imports: Imports,
    /// How `matmul` and `linear` are computed.
    pub gemm: Gemm,
    /// The nodes that can fail at run time; error code `i + 1` is `error_nodes[i]`.
    error_nodes: Vec<NodeId>,
}

/// Flags of every access to a tensor buffer: in bounds and aligned by construction.
fn buffer_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl LowerCx<'_> {
    /// An index (pointer-sized) constant.
    pub fn index(&mut self, n: usize) -> Value {
        let n = i64::try_from(n).expect("invariant: sizes fit in i64");
        self.b.ins().iconst(self.ptr, n)
    }

    /// An `f32` constant.
    pub fn f32(&mut self, x: f32) -> Value {
        self.b.ins().f32const(x)
    }

    /// The address of `id`'s buffer, loaded from the table.
    pub(crate) fn node_addr(&mut self, id: NodeId) -> Value {
        let slot = self.buffers.node(id);
        self.table_entry(slot)
    }

    /// The address of the dropout `id`'s keep-byte scratch buffer.
    pub(crate) fn scratch_addr(&mut self, id: NodeId) -> Value {
        let slot = self.buffers.scratch(id);
        self.table_entry(slot)
    }

    fn table_entry(&mut self, slot: usize) -> Value {
        let offset = i32::try_from(slot * 8).expect("invariant: the table is small");
        let flags = MemFlagsData::trusted().with_readonly();
        self.b.ins().load(self.ptr, flags, self.table, offset)
    }

    /// The generator's seed (i64) and the run's step (i32), entry parameters.
    pub fn seed_and_step(&self) -> (Value, Value) {
        (self.seed, self.step)
    }

    /// The phase's unit range `[begin, end)`, entry parameters (pointer-sized).
    pub fn unit_range(&self) -> (Value, Value) {
        (self.begin, self.end)
    }

    /// The positions `[begin * unit, min(end * unit, total))` covered by the unit range when
    /// each unit is `unit` consecutive positions out of `total`.
    pub fn unit_positions(&mut self, unit: usize, total: usize) -> (Value, Value) {
        let (begin, end) = self.unit_range();
        let start = self.b.ins().imul_imm_u(begin, unit as i64);
        let stop = self.b.ins().imul_imm_u(end, unit as i64);
        let total = self.index(total);
        (start, self.b.ins().umin(stop, total))
    }

    /// `base + index * size`.
    pub fn element_addr(&mut self, base: Value, index: Value, size: usize) -> Value {
        let scaled = self.b.ins().imul_imm_s(index, size as i64);
        self.b.ins().iadd(base, scaled)
    }

    /// Loads element `index` of type `ty` from `base`.
    pub fn load(&mut self, ty: Type, base: Value, index: Value) -> Value {
        let addr = self.element_addr(base, index, ty.bytes() as usize);
        self.b.ins().load(ty, buffer_flags(), addr, 0)
    }

    /// Stores `value` as element `index` of `base`.
    pub fn store(&mut self, value: Value, base: Value, index: Value) {
        let ty = self.b.func.dfg.value_type(value);
        let addr = self.element_addr(base, index, ty.bytes() as usize);
        self.b.ins().store(buffer_flags(), value, addr, 0);
    }

    /// A 16-byte aligned stack buffer of `bytes` bytes, and its address.
    pub fn stack_buffer(&mut self, bytes: u32) -> Value {
        let data = StackSlotData::new(StackSlotKind::ExplicitSlot, bytes, 4);
        let slot = self.b.create_sized_stack_slot(data);
        self.b.ins().stack_addr(self.ptr, slot, 0)
    }

    /// A mutable variable (for accumulators carried around loops) holding `init`.
    pub fn var(&mut self, init: Value) -> Variable {
        let ty = self.b.func.dfg.value_type(init);
        let var = self.b.declare_var(ty);
        self.b.def_var(var, init);
        var
    }

    /// `for i in 0..n { body(i) }` as a guarded do-while loop (see the module docs).
    pub fn counted_loop(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Value)) {
        if n == 0 {
            return;
        }
        let zero = self.index(0);
        if n == 1 {
            body(self, zero);
            return;
        }
        let looped = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(looped, self.ptr);
        self.b.ins().jump(looped, &[zero.into()]);
        self.b.switch_to_block(looped);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, 1);
        let more = self
            .b
            .ins()
            .icmp_imm_s(condcodes::IntCC::UnsignedLessThan, next, n as i64);
        self.b.ins().brif(more, looped, &[next.into()], exit, &[]);
        self.b.seal_block(looped);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// `for i in start..stop { body(i) }` over run-time bounds, as a do-while loop behind one
    /// guard.
    pub fn range_loop(
        &mut self,
        start: Value,
        stop: Value,
        body: &mut dyn FnMut(&mut Self, Value),
    ) {
        let looped = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(looped, self.ptr);
        let any = self
            .b
            .ins()
            .icmp(condcodes::IntCC::UnsignedLessThan, start, stop);
        self.b.ins().brif(any, looped, &[start.into()], exit, &[]);
        self.b.switch_to_block(looped);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, 1);
        let more = self
            .b
            .ins()
            .icmp(condcodes::IntCC::UnsignedLessThan, next, stop);
        self.b.ins().brif(more, looped, &[next.into()], exit, &[]);
        self.b.seal_block(looped);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// Like [`LowerCx::strided_loop`], over the row-major positions `[start, stop)` of `dims`
    /// only (`stop` at most the element count).
    pub fn strided_range(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        (start, stop): (Value, Value),
        body: &mut dyn FnMut(&mut Self, &[Value]),
    ) {
        let (dims, strides) = simplify(dims, strides);
        let last: Vec<usize> = strides
            .iter()
            .map(|s| s.last().copied().unwrap_or(0))
            .collect();
        self.strided_segments(&dims, &strides, (start, stop), &mut |cx, at, count| {
            let zero = cx.index(0);
            cx.range_loop(zero, count, &mut |cx, j| {
                let moved: Vec<Value> = (at.iter().zip(&last))
                    .map(|(&offset, &stride)| match stride {
                        0 => offset,
                        stride => {
                            let step = cx.b.ins().imul_imm_s(j, stride as i64);
                            cx.b.ins().iadd(offset, step)
                        }
                    })
                    .collect();
                body(cx, &moved);
            });
        });
    }

    /// Walks the row-major positions `[start, stop)` of `dims` (`stop` at most the element
    /// count) in segments along the last dimension: `segment(offsets, count)` gets the offsets
    /// of a segment's first position (one per entry of `strides`) and its length (at least
    /// 1); the segment's further positions step by each operand's last stride. A shape of rank
    /// 0 or 1 is one segment, without a loop.
    pub fn strided_segments(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        (start, stop): (Value, Value),
        segment: &mut dyn FnMut(&mut Self, &[Value], Value),
    ) {
        if dims.contains(&0) {
            return;
        }
        let (last, outer) = dims.split_last().map_or((1, &[][..]), |(&l, o)| (l, o));
        let any = (self.b.ins()).icmp(condcodes::IntCC::UnsignedLessThan, start, stop);
        let exit = self.b.create_block();
        if outer.is_empty() {
            let once = self.b.create_block();
            self.b.ins().brif(any, once, &[], exit, &[]);
            self.b.switch_to_block(once);
            self.b.seal_block(once);
            let offsets = self.segment_offsets(start, None, strides);
            let count = self.b.ins().isub(stop, start);
            segment(self, &offsets, count);
            self.b.ins().jump(exit, &[]);
        } else {
            let looped = self.b.create_block();
            let i = self.b.append_block_param(looped, self.ptr);
            self.b.ins().brif(any, looped, &[start.into()], exit, &[]);
            self.b.switch_to_block(looped);
            // i = row * last + column: a segment runs to the row's end or to `stop`.
            let row = self.b.ins().udiv_imm_u(i, last as i64);
            let whole = self.b.ins().imul_imm_u(row, last as i64);
            let column = self.b.ins().isub(i, whole);
            let offsets = self.segment_offsets(column, Some((row, outer)), strides);
            let last = self.index(last);
            let in_row = self.b.ins().isub(last, column);
            let left = self.b.ins().isub(stop, i);
            let count = self.b.ins().umin(in_row, left);
            segment(self, &offsets, count);
            let next = self.b.ins().iadd(i, count);
            let more = (self.b.ins()).icmp(condcodes::IntCC::UnsignedLessThan, next, stop);
            self.b.ins().brif(more, looped, &[next.into()], exit, &[]);
            self.b.seal_block(looped);
        }
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// The offsets of the position at `column` of the last dimension and (if given) row `row`
    /// of the `outer` dimensions, one per entry of `strides`. The row's coordinates come from
    /// dividing by the outer dimensions, innermost first (once per segment, not per element).
    fn segment_offsets(
        &mut self,
        column: Value,
        row: Option<(Value, &[usize])>,
        strides: &[Vec<usize>],
    ) -> Vec<Value> {
        let mut offsets: Vec<Value> = (strides.iter())
            .map(|s| {
                let stride = s.last().copied().unwrap_or(0);
                self.b.ins().imul_imm_u(column, stride as i64)
            })
            .collect();
        let Some((mut rest, outer)) = row else {
            return offsets;
        };
        for d in (0..outer.len()).rev() {
            let coordinate = if d == 0 {
                rest
            } else {
                let next = self.b.ins().udiv_imm_u(rest, outer[d] as i64);
                let whole = self.b.ins().imul_imm_u(next, outer[d] as i64);
                let coordinate = self.b.ins().isub(rest, whole);
                rest = next;
                coordinate
            };
            for (offset, s) in offsets.iter_mut().zip(strides) {
                if s[d] != 0 {
                    let step = self.b.ins().imul_imm_u(coordinate, s[d] as i64);
                    *offset = self.b.ins().iadd(*offset, step);
                }
            }
        }
        offsets
    }

    /// Walks `dims` row-major; the body gets, for each element, one offset (in elements) per
    /// entry of `strides`, the sum of coordinate times stride over the dimensions.
    pub fn strided_loop(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        body: &mut dyn FnMut(&mut Self, &[Value]),
    ) {
        if dims.contains(&0) {
            return;
        }
        let (dims, strides) = simplify(dims, strides);
        let zero = self.index(0);
        let start = vec![zero; strides.len()];
        self.nest(&dims, &strides, &start, body);
    }

    fn nest(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        offsets: &[Value],
        body: &mut dyn FnMut(&mut Self, &[Value]),
    ) {
        let Some((&n, inner_dims)) = dims.split_first() else {
            body(self, offsets);
            return;
        };
        self.counted_loop(n, &mut |cx, i| {
            let moved: Vec<Value> = offsets
                .iter()
                .zip(strides)
                .map(|(&offset, s)| match s[0] {
                    0 => offset,
                    stride => {
                        let step = cx.b.ins().imul_imm_s(i, stride as i64);
                        cx.b.ins().iadd(offset, step)
                    }
                })
                .collect();
            let inner: Vec<Vec<usize>> = strides.iter().map(|s| s[1..].to_vec()).collect();
            cx.nest(inner_dims, &inner, &moved, body);
        });
    }

    /// Returns from the function with the error code of `node` and two `i64` details if
    /// `failed` (an i8 condition) holds; continues otherwise.
    pub(crate) fn fail_if(&mut self, failed: Value, node: NodeId, details: [Value; 2]) {
        self.error_nodes.push(node);
        let code = self.error_nodes.len() as i64;
        let fail = self.b.create_block();
        let go_on = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(failed, fail, &[], go_on, &[]);
        self.b.switch_to_block(fail);
        self.b.seal_block(fail);
        for (k, detail) in details.into_iter().enumerate() {
            self.b
                .ins()
                .store(buffer_flags(), detail, self.error, (k * 8) as i32);
        }
        let code = self.b.ins().iconst(types::I32, code);
        self.b.ins().return_(&[code]);
        self.b.switch_to_block(go_on);
        self.b.seal_block(go_on);
    }
}

/// Drops dimensions of size 1 and merges neighbours that every operand walks contiguously
/// (`stride[d] == stride[d + 1] * dims[d + 1]`), so loops nest no deeper than they must.
fn simplify(dims: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for d in (0..dims.len()).filter(|&d| dims[d] != 1) {
        let mergeable = out_dims.last().is_some_and(|_| {
            strides
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| *o.last().expect("a kept dimension has strides") == s[d] * dims[d])
        });
        if mergeable {
            *out_dims.last_mut().expect("checked above") *= dims[d];
            for (s, o) in strides.iter().zip(&mut out_strides) {
                *o.last_mut().expect("checked above") = s[d];
            }
        } else {
            out_dims.push(dims[d]);
            for (s, o) in strides.iter().zip(&mut out_strides) {
                o.push(s[d]);
            }
        }
    }
    (out_dims, out_strides)
}

/// The strides that read an operand of shape `operand` at the coordinates of the (NumPy
/// broadcast) shape `out`: trailing dimensions align; a dimension of 1, or one the operand
/// lacks, gets stride 0.
pub(crate) fn broadcast_strides(operand: &Shape, out: &Shape) -> Vec<usize> {
    let own = operand.strides();
    let shift = out.rank() - operand.rank();
    (0..out.rank())
        .map(|d| match d.checked_sub(shift) {
            Some(i) if operand.dims()[i] != 1 => own[i],
            Some(_) | None => 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_merges_contiguous_dimensions_and_drops_ones() {
        let (dims, strides) = simplify(&[2, 1, 3, 4], &[vec![12, 12, 4, 1], vec![0, 0, 1, 0]]);
        assert_eq!(dims, [2, 3, 4]);
        assert_eq!(strides, [vec![12, 4, 1], vec![0, 1, 0]]);
        let (dims, strides) = simplify(&[2, 3, 4], &[vec![12, 4, 1]]);
        assert_eq!((dims, strides), (vec![24], vec![vec![1]]));
        let (dims, strides) = simplify(&[1, 1], &[vec![1, 1]]);
        assert_eq!((dims, strides), (vec![], vec![vec![]]));
    }
}
