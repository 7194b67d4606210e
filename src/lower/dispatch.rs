//! The function's frame and the one match over ops: every kernel of the schedule, in order,
//! goes to the lowering of its op family (all element-wise kernels, fused or not, to one).

use cranelift_codegen::ir::{Function, InstBuilder, types};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::{Buffer, BufferMap, Gemm, Imports, LowerCx};
use super::{dropout, elementwise, layout, linalg, reduce, softmax};
use crate::compile::schedule::{Kernel, Schedule};
use crate::graph::{Graph, NodeId, Op};

/// Lowers every kernel of `schedule` (for `graph`) into `func` (whose signature is the entry
/// ABI). Returns the nodes that can fail at run time: error code `i + 1` names the `i`-th.
pub(crate) fn lower_graph(
    func: &mut Function,
    graph: &Graph,
    schedule: &Schedule,
    buffers: &BufferMap,
    imports: Imports,
    gemm: Gemm,
    target: TargetFrontendConfig,
) -> Vec<NodeId> {
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let mut cx = LowerCx {
        b,
        ptr: target.pointer_type(),
        table: params[0],
        seed: params[1],
        step: params[2],
        error: params[3],
        buffers,
        imports,
        gemm,
        error_nodes: Vec::new(),
    };
    for kernel in &schedule.kernels {
        lower_kernel(&mut cx, graph, kernel);
    }
    let ok = cx.b.ins().iconst(types::I32, 0);
    cx.b.ins().return_(&[ok]);
    let error_nodes = std::mem::take(&mut cx.error_nodes);
    cx.b.finalize(target);
    error_nodes
}

/// The node's buffer and its operands' buffers, addresses loaded from the table.
fn buffers<'g>(cx: &mut LowerCx, graph: &'g Graph, id: NodeId) -> (Buffer<'g>, Vec<Buffer<'g>>) {
    let mut buffer = |id: NodeId| Buffer {
        addr: cx.node_addr(id),
        ty: &graph.node(id).ty,
    };
    let operands = graph.operands(id).into_iter().map(&mut buffer).collect();
    (buffer(id), operands)
}

/// The buffers of a kernel of one node (only element-wise nodes are fused).
fn single<'g>(
    cx: &mut LowerCx,
    graph: &'g Graph,
    kernel: &Kernel,
) -> (Buffer<'g>, Vec<Buffer<'g>>) {
    let [id] = kernel.nodes[..] else {
        panic!("invariant: only element-wise kernels have several nodes");
    };
    buffers(cx, graph, id)
}

/// One arm per op, matched on the kernel's first node.
fn lower_kernel(cx: &mut LowerCx, graph: &Graph, kernel: &Kernel) {
    let id = kernel.nodes[0];
    match &graph.node(id).op {
        // The caller's data, the graph's data, or (reshape) the operand's buffer under
        // another shape: the buffer plan points the table there, nothing to compute.
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Reshape { .. } => {
            panic!("invariant: leaves and reshapes belong to no kernel")
        }
        Op::Unary(_) | Op::Binary(_) | Op::Dropout(_) => elementwise::kernel(cx, graph, kernel),
        Op::MatMul => {
            let (out, args) = single(cx, graph, kernel);
            linalg::matmul(cx, &args[0], &args[1], &out);
        }
        Op::Linear { .. } => {
            let (out, args) = single(cx, graph, kernel);
            linalg::linear(cx, &args[0], &args[1], args.get(2), &out);
        }
        Op::Transpose { perm } => {
            let (out, args) = single(cx, graph, kernel);
            layout::transpose(cx, perm, &args[0], &out);
        }
        Op::Reduce { op, axes, .. } => {
            let (out, args) = single(cx, graph, kernel);
            reduce::reduce(cx, *op, axes, &args[0], &out);
        }
        Op::Softmax { axis } => {
            let (out, args) = single(cx, graph, kernel);
            softmax::softmax(cx, *axis, &args[0], &out);
        }
        Op::LogSoftmax { axis } => {
            let (out, args) = single(cx, graph, kernel);
            softmax::log_softmax(cx, *axis, &args[0], &out);
        }
        Op::CrossEntropy => {
            let (out, args) = single(cx, graph, kernel);
            softmax::cross_entropy(cx, id, &args[0], &args[1], &out);
        }
        Op::DropoutMask(d) => {
            let (out, args) = single(cx, graph, kernel);
            dropout::mask(cx, d, args[0].shape(), &out);
        }
    }
}
