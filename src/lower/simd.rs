//! The vector form of an element-wise kernel: four `f32` lanes at a time, each drawing
//! dropout's mask made in the loop by [`super::bitplane`], with no keep bytes in memory.
//!
//! A kernel takes this path when [`vectorizable`]: its members all have exact `f32x4` forms
//! (`neg relu sqrt add sub mul div maximum` and the element-wise dropout kinds without
//! broadcast dimensions) and every operand from outside has the loop's shape, so every
//! buffer is walked contiguously. Everything else (calls like `exp`, broadcasting, channel
//! masks) stays on the scalar loop of [`super::elementwise`].
//!
//! The loop runs over the unit range's mask groups (a unit is 128 elements, one group): per
//! group, each dropout's 128 keep bits are one i32x4 `K`; then 32 vectors `v` are loaded,
//! computed and stored (unrolled), the dropout of vector `v` masking with
//! `sshr(ishl(K, 31 - v), 31)` (bit `v` of each word, spread over its lane). The last, partial
//! group is an ordinary group whose lanes are computed one by one and only its own elements
//! loaded and written. Each value is bit for bit the scalar loop's: the same IEEE operations.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::bitplane::Planes;
use super::{LowerCx, dropout, elementwise, vector_arith};
use crate::compile::schedule::Kernel;
use crate::graph::{DType, Graph, NodeId, Op, UnaryOp};
use crate::rng::mask::GROUP_SIZE;

/// Vectors of four lanes in one group.
const VECTORS: usize = GROUP_SIZE / 4;

/// True if `kernel` (element-wise) is lowered by [`kernel`]; see the module docs.
pub(crate) fn vectorizable(graph: &Graph, kernel: &Kernel) -> bool {
    let shape = &graph.node(kernel.nodes[0]).ty.shape;
    kernel.nodes.iter().all(|&id| {
        let node = graph.node(id);
        let operands_fit = (graph.operands(id).iter())
            .all(|&o| graph.node(o).ty.shape == *shape && graph.node(o).ty.dtype == DType::F32);
        operands_fit && node.ty.dtype == DType::F32 && has_vector_form(graph, id)
    })
}

/// True if the node has an exact `f32x4` form here.
fn has_vector_form(graph: &Graph, id: NodeId) -> bool {
    match &graph.node(id).op {
        Op::Unary(op) => match op {
            UnaryOp::Neg | UnaryOp::Relu | UnaryOp::Sqrt => true,
            UnaryOp::Selu | UnaryOp::Exp | UnaryOp::Log => false,
        },
        Op::Binary(_) => true,
        Op::Dropout(d) => {
            let input = &graph.node(graph.operands(id)[0]).ty.shape;
            !dropout::draws(d) || d.mask_shape(input).is_ok_and(|mask| mask == *input)
        }
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
        | Op::CrossEntropy => false,
    }
}

/// Flags of a vector access: in bounds, but buffers are only 4-byte aligned.
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Lowers the vectorizable element-wise `kernel` over the unit range's groups.
pub(crate) fn kernel(cx: &mut LowerCx, graph: &Graph, kernel: &Kernel, externals: &[NodeId]) {
    let n = graph.node(kernel.nodes[0]).ty.shape.numel();
    let planes: Vec<Option<Planes>> = (kernel.nodes.iter())
        .map(|&id| match graph.node(id).op.as_dropout() {
            Some(d) if dropout::draws(d) => Some(Planes::start(cx, d)),
            Some(_) | None => None,
        })
        .collect();
    let external_addrs: Vec<Value> = externals.iter().map(|&id| cx.node_addr(id)).collect();
    let output_addrs: Vec<Value> = kernel.outputs.iter().map(|&id| cx.node_addr(id)).collect();
    let body = Body {
        graph,
        kernel,
        externals,
        planes: &planes,
        external_addrs: &external_addrs,
        output_addrs: &output_addrs,
    };
    let (begin, end) = cx.unit_range();
    let full = cx.index(n / GROUP_SIZE);
    let stop = cx.b.ins().umin(end, full);
    cx.range_loop(begin, stop, &mut |cx, g| body.group(cx, g));
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

/// What the loop body of one kernel needs.
struct Body<'a> {
    graph: &'a Graph,
    kernel: &'a Kernel,
    externals: &'a [NodeId],
    planes: &'a [Option<Planes>],
    external_addrs: &'a [Value],
    output_addrs: &'a [Value],
}

impl Body<'_> {
    /// The keep bits of every drawing member for group `g`.
    fn keeps(&self, cx: &mut LowerCx, g: Value) -> Vec<Option<Value>> {
        (self.planes.iter())
            .map(|planes| planes.map(|p| p.keep(cx, g)))
            .collect()
    }

    /// Group `g`, whole: 32 vectors of four elements.
    fn group(&self, cx: &mut LowerCx, g: Value) {
        let keeps = self.keeps(cx, g);
        let bytes = cx.b.ins().imul_imm_u(g, (GROUP_SIZE * 4) as i64);
        let inputs: Vec<Value> = (self.external_addrs.iter())
            .map(|&a| cx.b.ins().iadd(a, bytes))
            .collect();
        let outputs: Vec<Value> = (self.output_addrs.iter())
            .map(|&a| cx.b.ins().iadd(a, bytes))
            .collect();
        for v in 0..VECTORS {
            let offset = (v * 16) as i32;
            let mut values: Vec<(NodeId, Value)> = Vec::new();
            for (&id, &addr) in self.externals.iter().zip(&inputs) {
                let x = cx.b.ins().load(types::F32X4, vector_flags(), addr, offset);
                values.push((id, x));
            }
            for (&id, keep) in self.kernel.nodes.iter().zip(&keeps) {
                let args: Vec<Value> = operand_values(self.graph, id, &values);
                let mask = keep.map(|k| lane_mask(cx, k, v));
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
        let keeps: Vec<Option<Value>> = (self.keeps(cx, g).into_iter())
            .map(|keep| {
                keep.map(|k| {
                    let words = cx.stack_buffer(16);
                    cx.b.ins().store(MemFlagsData::trusted(), k, words, 0);
                    words
                })
            })
            .collect();
        let first = cx.b.ins().imul_imm_u(g, GROUP_SIZE as i64);
        cx.counted_loop(lanes, &mut |cx, e| {
            let j = cx.b.ins().iadd(first, e);
            let mut values: Vec<(NodeId, Value)> = Vec::new();
            for (&id, &addr) in self.externals.iter().zip(self.external_addrs) {
                values.push((id, cx.load(types::F32, addr, j)));
            }
            for (&id, keep) in self.kernel.nodes.iter().zip(&keeps) {
                let args: Vec<Value> = operand_values(self.graph, id, &values);
                let kept = keep.map(|words| lane_bit(cx, words, e));
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
