//! The function's frame and the one match over ops: every node, in topological order, goes to
//! the lowering of its op family.

use cranelift_codegen::ir::{Function, InstBuilder, types};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::{Buffer, BufferMap, Gemm, Imports, LowerCx};
use super::{dropout, elementwise, layout, linalg, reduce, softmax};
use crate::graph::{Graph, NodeId, Op};

/// Lowers every node of `graph` into `func` (whose signature is the entry ABI). Returns the
/// nodes that can fail at run time: error code `i + 1` names the `i`-th.
pub(crate) fn lower_graph(
    func: &mut Function,
    graph: &Graph,
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
    for id in graph.topo_order() {
        lower_node(&mut cx, graph, id);
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

/// One arm per op.
fn lower_node(cx: &mut LowerCx, graph: &Graph, id: NodeId) {
    let node = graph.node(id);
    match &node.op {
        // The caller's data, the graph's data, or (reshape) the operand's buffer under
        // another shape: the buffer plan points the table there, nothing to compute.
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Reshape { .. } => {}
        Op::Unary(op) => {
            let (out, args) = buffers(cx, graph, id);
            elementwise::unary(cx, *op, &args[0], &out);
        }
        Op::Binary(op) => {
            let (out, args) = buffers(cx, graph, id);
            elementwise::binary(cx, *op, &args[0], &args[1], &out);
        }
        Op::MatMul => {
            let (out, args) = buffers(cx, graph, id);
            linalg::matmul(cx, &args[0], &args[1], &out);
        }
        Op::Linear { .. } => {
            let (out, args) = buffers(cx, graph, id);
            linalg::linear(cx, &args[0], &args[1], args.get(2), &out);
        }
        Op::Transpose { perm } => {
            let (out, args) = buffers(cx, graph, id);
            layout::transpose(cx, perm, &args[0], &out);
        }
        Op::Reduce { op, axes, .. } => {
            let (out, args) = buffers(cx, graph, id);
            reduce::reduce(cx, *op, axes, &args[0], &out);
        }
        Op::Softmax { axis } => {
            let (out, args) = buffers(cx, graph, id);
            softmax::softmax(cx, *axis, &args[0], &out);
        }
        Op::LogSoftmax { axis } => {
            let (out, args) = buffers(cx, graph, id);
            softmax::log_softmax(cx, *axis, &args[0], &out);
        }
        Op::CrossEntropy => {
            let (out, args) = buffers(cx, graph, id);
            softmax::cross_entropy(cx, id, &args[0], &args[1], &out);
        }
        Op::Dropout(d) => {
            let (out, args) = buffers(cx, graph, id);
            dropout::dropout(cx, id, d, &args[0], &out);
        }
    }
}
