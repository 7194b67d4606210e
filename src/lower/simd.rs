//! The vector form of an element-wise kernel: four `f32` lanes at a time, each drawing
//! dropout's mask made in the loop by [`super::bitplane`], with no keep bytes in memory.
//!
//! A kernel takes this path when [`vectorizable`]: its members all have exact `f32x4` forms
//! (`neg relu sqrt add sub mul div maximum`, the gradient selects `relu_grad equal
//! maximum_weight`, and the dropouts and dropout gradients whose masks fit, below) and every
//! operand from outside has the loop's shape, so every buffer is walked contiguously, or one
//! element (a scalar like an optimizer's learning rate: loaded once and splatted), or is a
//! row: the loop shape's trailing dimensions, `C` elements with `C % 4 == 0` (a linear's bias
//! `[C]` or `[1, C]` over `[N, C]`), element `e` reading its element `e % C`, so the bias, the
//! activation and the dropout after a matrix product are one vector pass
//! ([`crate::passes::split_linear_bias`]). A vector never crosses a row, since `C % 4 == 0`.
//! Everything else (calls like `exp`, other broadcasts) stays on the scalar loop of
//! [`super::elementwise`]. A drawing dropout's mask fits if it is
//! - one mask element per element: made in the loop ([`draws_in_loop`]), no keep bytes;
//! - or broadcast over trailing dimensions only, one mask element per `inner` elements with
//!   `inner` a multiple of 4 (Dropout1d/2d/3d, FeatureAlphaDropout, DropPath): its few keep
//!   bytes are drawn before the loop as on the scalar path, one byte per vector.
//!
//! The loop runs over the unit range's mask groups (a unit is 128 elements, one group): per
//! group, each dropout's 128 keep bits are one i32x4 `K`; then 32 vectors `v` are loaded,
//! computed and stored (unrolled), the dropout of vector `v` masking with
//! `sshr(ishl(K, 31 - v), 31)` (bit `v` of each word, spread over its lane). The last, partial
//! group is an ordinary group whose lanes are computed one by one and only its own elements
//! loaded and written. Each value is bit for bit the scalar loop's: the same IEEE operations.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

mod operands;

use operands::{Cursor, Operand};

use super::bitplane::Planes;
use super::{LowerCx, dropout, elementwise, vector_arith};
use crate::compile::schedule::Kernel;
use crate::graph::{BinaryOp, DType, Dropout, Graph, NodeId, Op, UnaryOp};
use crate::rng::mask::GROUP_SIZE;

/// Vectors of four lanes in one group.
const VECTORS: usize = GROUP_SIZE / 4;

/// True if `kernel` (element-wise) is lowered by [`kernel`]; see the module docs.
pub(crate) fn vectorizable(graph: &Graph, kernel: &Kernel) -> bool {
    let shape = &graph.node(kernel.nodes[0]).ty.shape;
    kernel.nodes.iter().all(|&id| {
        let node = graph.node(id);
        let operands_fit = (graph.operands(id).iter()).all(|&o| {
            let ty = &graph.node(o).ty;
            ty.dtype == DType::F32
                && (ty.shape == *shape || operands::external_read(graph, kernel, o).is_some())
        });
        operands_fit && node.ty.dtype == DType::F32 && has_vector_form(graph, id)
    })
}

/// Where a drawing dropout's vector loop finds its keep bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MaskForm {
    /// One mask element per element: made in the loop, 128 bits per group.
    InLoop,
    /// Keep bytes drawn before the loop, one per `inner` consecutive elements (a multiple of
    /// 4, so one byte per vector): the channel kinds' masks.
    Bytes { inner: usize },
}

/// How the drawing dropout `id` reads its mask in a vector loop, if it can.
fn mask_form(graph: &Graph, id: NodeId, d: &Dropout) -> Option<MaskForm> {
    let input = &graph.node(graph.operands(id)[0]).ty.shape;
    let mask = d.mask_shape(input).ok()?;
    if mask == *input {
        return Some(MaskForm::InLoop);
    }
    // Broadcast over trailing dimensions only: mask element j / inner for element j.
    let (x, m) = (input.dims(), mask.dims());
    let first = (0..x.len()).find(|&i| x[i] != m[i])?;
    let inner: usize = x[first..].iter().product();
    let trailing = m[first..].iter().all(|&d| d == 1);
    (trailing && inner.is_multiple_of(4)).then_some(MaskForm::Bytes { inner })
}

/// True if the dropout `id` of `kernel` makes its mask in its vector loop, without keep
/// bytes (and so without a draw phase or a scratch buffer).
pub(crate) fn draws_in_loop(graph: &Graph, kernel: &Kernel, id: NodeId) -> bool {
    let in_loop = (graph.node(id).op.drawn_dropout())
        .is_some_and(|d| dropout::draws(d) && mask_form(graph, id, d) == Some(MaskForm::InLoop));
    in_loop && vectorizable(graph, kernel)
}

/// True if the node has an exact `f32x4` form here.
fn has_vector_form(graph: &Graph, id: NodeId) -> bool {
    match &graph.node(id).op {
        Op::Unary(op) => match op {
            UnaryOp::Neg | UnaryOp::Relu | UnaryOp::Sqrt => true,
            UnaryOp::Selu | UnaryOp::Exp | UnaryOp::Log => false,
        },
        Op::Binary(op) => match op {
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Max
            | BinaryOp::ReluGrad
            | BinaryOp::Equal
            | BinaryOp::MaxWeight => true,
            BinaryOp::SeluGrad => false,
        },
        Op::Dropout(d) | Op::DropoutGrad(d) => {
            !dropout::draws(d) || mask_form(graph, id, d).is_some()
        }
        // Its operand has another shape (read at broadcast strides): the scalar loop's.
        Op::Expand { .. } => false,
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
        | Op::CrossEntropyGrad => false,
    }
}

/// Flags of a vector access: in bounds, but buffers are only 4-byte aligned.
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Lowers the vectorizable element-wise `kernel` over the unit range's groups.
pub(crate) fn kernel(cx: &mut LowerCx, graph: &Graph, kernel: &Kernel, externals: &[NodeId]) {
    let n = graph.node(kernel.nodes[0]).ty.shape.numel();
    let sources: Vec<Option<Source>> = (kernel.nodes.iter())
        .map(|&id| {
            let d = graph
                .node(id)
                .op
                .drawn_dropout()
                .filter(|d| dropout::draws(d))?;
            Some(match mask_form(graph, id, d) {
                Some(MaskForm::InLoop) => Source::Planes(Planes::start(cx, d)),
                Some(MaskForm::Bytes { inner }) => Source::Bytes {
                    addr: cx.scratch_addr(id),
                    inner,
                },
                None => panic!("invariant: a vector kernel's dropouts have a mask form"),
            })
        })
        .collect();
    let external_addrs: Vec<Value> = externals.iter().map(|&id| cx.node_addr(id)).collect();
    let output_addrs: Vec<Value> = kernel.outputs.iter().map(|&id| cx.node_addr(id)).collect();
    let reads: Vec<Operand> = (externals.iter().zip(&external_addrs))
        .map(|(&id, &addr)| Operand::new(cx, graph, kernel, id, addr))
        .collect();
    let body = Body {
        graph,
        kernel,
        externals,
        reads: &reads,
        sources: &sources,
        output_addrs: &output_addrs,
    };
    let (begin, end) = cx.unit_range();
    let full = cx.index(n / GROUP_SIZE);
    if n >= GROUP_SIZE {
        let stop = cx.b.ins().umin(end, full);
        cx.range_loop(begin, stop, &mut |cx, g| body.group(cx, g));
    }
    if !n.is_multiple_of(GROUP_SIZE) {
        // The partial group, if the range holds it.
        let tail = cx.b.create_block();
        let done = cx.b.create_block();
        let holds = cx.b.ins().icmp(IntCC::UnsignedGreaterThan, end, full);
        cx.b.ins().brif(holds, tail, &[], done, &[]);
        cx.b.switch_to_block(tail);
        cx.b.seal_block(tail);
        body.partial(cx, full, n % GROUP_SIZE);
        cx.b.ins().jump(done, &[]);
        cx.b.switch_to_block(done);
        cx.b.seal_block(done);
    }
}

/// Where a drawing member's keep bits come from.
#[derive(Clone, Copy)]
enum Source {
    /// Made per group in the loop.
    Planes(Planes),
    /// Keep bytes at `addr`, one per `inner` elements.
    Bytes { addr: Value, inner: usize },
}

/// A drawing member's keep bits for one group.
#[derive(Clone, Copy)]
enum Keep {
    /// The group's 128 keep bits (i32x4).
    Bits(Value),
    /// Keep bytes at `addr`, one per `inner` elements.
    Bytes { addr: Value, inner: usize },
}

/// What the loop body of one kernel needs.
struct Body<'a> {
    graph: &'a Graph,
    kernel: &'a Kernel,
    externals: &'a [NodeId],
    /// Per external: how the loop reads it.
    reads: &'a [Operand],
    sources: &'a [Option<Source>],
    output_addrs: &'a [Value],
}

impl Body<'_> {
    /// The keep bits of every drawing member for group `g`.
    fn keeps(&self, cx: &mut LowerCx, g: Value) -> Vec<Option<Keep>> {
        (self.sources.iter())
            .map(|source| {
                source.map(|source| match source {
                    Source::Planes(planes) => Keep::Bits(planes.keep(cx, g)),
                    Source::Bytes { addr, inner } => Keep::Bytes { addr, inner },
                })
            })
            .collect()
    }

    /// Group `g`, whole: 32 vectors of four elements.
    fn group(&self, cx: &mut LowerCx, g: Value) {
        let keeps = self.keeps(cx, g);
        let bytes = cx.b.ins().imul_imm_u(g, (GROUP_SIZE * 4) as i64);
        let mut cursors: Vec<Cursor> = (self.reads.iter())
            .map(|&read| read.cursor(cx, g, bytes))
            .collect();
        let outputs: Vec<Value> = (self.output_addrs.iter())
            .map(|&a| cx.b.ins().iadd(a, bytes))
            .collect();
        for v in 0..VECTORS {
            let offset = (v * 16) as i32;
            let mut values: Vec<(NodeId, Value)> = Vec::new();
            for (&id, cursor) in self.externals.iter().zip(&mut cursors) {
                values.push((id, cursor.next_vector(cx, offset)));
            }
            for (&id, keep) in self.kernel.nodes.iter().zip(&keeps) {
                let args: Vec<Value> = operand_values(self.graph, id, &values);
                let mask = keep.map(|keep| match keep {
                    Keep::Bits(k) => lane_mask(cx, k, v),
                    Keep::Bytes { addr, inner } => {
                        let first = cx.b.ins().imul_imm_u(g, GROUP_SIZE as i64);
                        let j = cx.b.ins().iadd_imm_u(first, (4 * v) as i64);
                        byte_mask(cx, addr, inner, j)
                    }
                });
                let value = vector_arith::element(cx, &self.graph.node(id).op, &args, mask);
                values.push((id, value));
            }
            for (id, &addr) in self.kernel.outputs.iter().zip(&outputs) {
                let value = lookup(&values, *id);
                cx.b.ins().store(vector_flags(), value, addr, offset);
            }
        }
    }

    /// The first `lanes` elements of group `g`, one by one on the scalar ops of [`super::arith`]
    /// (a loop: the keep bits go to the stack, so lane `e` reads bit `e / 4` of word `e % 4`).
    fn partial(&self, cx: &mut LowerCx, g: Value, lanes: usize) {
        // Keep bits go to the stack, to be read lane by lane.
        let keeps: Vec<Option<Keep>> = (self.keeps(cx, g).into_iter())
            .map(|keep| {
                keep.map(|keep| match keep {
                    Keep::Bits(k) => {
                        let words = cx.stack_buffer(16);
                        cx.b.ins().store(MemFlagsData::trusted(), k, words, 0);
                        Keep::Bits(words)
                    }
                    Keep::Bytes { .. } => keep,
                })
            })
            .collect();
        let first = cx.b.ins().imul_imm_u(g, GROUP_SIZE as i64);
        cx.counted_loop(lanes, &mut |cx, e| {
            let j = cx.b.ins().iadd(first, e);
            let mut values: Vec<(NodeId, Value)> = Vec::new();
            for (&id, read) in self.externals.iter().zip(self.reads) {
                let x = read.lane(cx, j);
                values.push((id, x));
            }
            for (&id, keep) in self.kernel.nodes.iter().zip(&keeps) {
                let args: Vec<Value> = operand_values(self.graph, id, &values);
                let kept = keep.map(|keep| match keep {
                    Keep::Bits(words) => lane_bit(cx, words, e),
                    Keep::Bytes { addr, inner } => {
                        let index = cx.b.ins().udiv_imm_u(j, inner as i64);
                        cx.load(types::I8, addr, index)
                    }
                });
                let value = elementwise::element(cx, &self.graph.node(id).op, &args, kept);
                values.push((id, value));
            }
            for (id, &addr) in self.kernel.outputs.iter().zip(self.output_addrs) {
                let value = lookup(&values, *id);
                cx.store(value, addr, j);
            }
        });
    }
}

fn lookup(values: &[(NodeId, Value)], id: NodeId) -> Value {
    let found = values.iter().find(|(v, _)| *v == id);
    found.expect("invariant: operands are computed first").1
}

fn operand_values(graph: &Graph, id: NodeId, values: &[(NodeId, Value)]) -> Vec<Value> {
    (graph.operands(id).iter())
        .map(|&o| lookup(values, o))
        .collect()
}

/// All ones in the lanes of vector `v` whose keep bit is set: `sshr(ishl(K, 31 - v), 31)`.
fn lane_mask(cx: &mut LowerCx, keep: Value, v: usize) -> Value {
    let moved = cx.b.ins().ishl_imm_u(keep, (31 - v) as i64);
    cx.b.ins().sshr_imm_u(moved, 31)
}

/// The keep bit of lane `e` (pointer-sized) as an i8 truth value: bit `e / 4` of word
/// `e % 4` of the keep bits stored at `words`.
fn lane_bit(cx: &mut LowerCx, words: Value, e: Value) -> Value {
    let w = cx.b.ins().band_imm_u(e, 3);
    let word = cx.load(types::I32, words, w);
    let v = cx.b.ins().ushr_imm_u(e, 2);
    let v = cx.b.ins().ireduce(types::I32, v);
    let moved = cx.b.ins().ushr(word, v);
    let bit = cx.b.ins().band_imm_u(moved, 1);
    cx.b.ins().ireduce(types::I8, bit)
}

/// The lane mask (i32x4) of the vector starting at element `j`, whose four elements share
/// keep byte `j / inner` at `addr`: all ones if it is 1.
fn byte_mask(cx: &mut LowerCx, addr: Value, inner: usize, j: Value) -> Value {
    let index = cx.b.ins().udiv_imm_u(j, inner as i64);
    let byte = cx.load(types::I8, addr, index);
    let wide = cx.b.ins().uextend(types::I32, byte);
    let zero = cx.b.ins().iconst(types::I32, 0);
    let all = cx.b.ins().isub(zero, wide);
    cx.b.ins().splat(types::I32X4, all)
}
