//! A phase's function frame and the one match over ops: a kernel's compute phase goes to the
//! lowering of its op family (all element-wise kernels, fused or not, to one); a draw phase
//! to the dropout's keep-byte draw; a check phase to `cross_entropy`'s target check.

use cranelift_codegen::ir::{Function, InstBuilder, types};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::{Buffer, BufferMap, Gemm, Imports, LowerCx, Part, Phase};
use super::{dropout, elementwise, layout, linalg, reduce, softmax};
use crate::compile::schedule::{Kernel, Schedule};
use crate::graph::{Graph, NodeId, Op};

/// Lowers `phase` of `schedule` (for `graph`) into `func` (whose signature is the entry ABI).
/// `error_nodes` holds the nodes that can fail at run time, across all phases: error code
/// `i + 1` names the `i`-th; the phase appends its own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lower_phase(
    func: &mut Function,
    graph: &Graph,
    schedule: &Schedule,
    phase: &Phase,
    buffers: &BufferMap,
    imports: Imports,
    gemm: Gemm,
    target: TargetFrontendConfig,
    error_nodes: &mut Vec<NodeId>,
) {
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
        begin: params[4],
        end: params[5],
        buffers,
        imports,
        gemm,
        error_nodes: std::mem::take(error_nodes),
    };
    match phase.part {
        Part::Draw(id) => dropout::draw_phase(&mut cx, graph, id),
        Part::CheckTargets(id) => {
            let (_, args) = node_buffers(&mut cx, graph, id);
            softmax::check_targets(&mut cx, id, &args[0], &args[1]);
        }
        Part::Compute => lower_kernel(&mut cx, graph, &schedule.kernels[phase.kernel]),
    }
    let ok = cx.b.ins().iconst(types::I32, 0);
    cx.b.ins().return_(&[ok]);
    *error_nodes = std::mem::take(&mut cx.error_nodes);
    cx.b.finalize(target);
}

/// The node's buffer and its operands' buffers, addresses loaded from the table.
fn node_buffers<'g>(
    cx: &mut LowerCx,
    graph: &'g Graph,
    id: NodeId,
) -> (Buffer<'g>, Vec<Buffer<'g>>) {
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
    node_buffers(cx, graph, id)
}

/// One arm per op, matched on the kernel's first node: the kernel's values for the phase's
/// unit range.
fn lower_kernel(cx: &mut LowerCx, graph: &Graph, kernel: &Kernel) {
    let id = kernel.nodes[0];
    match &graph.node(id).op {
        // The caller's data, the graph's data, or (reshape) the operand's buffer under
        // another shape: the buffer plan points the table there, nothing to compute.
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Reshape { .. } => {
            panic!("invariant: leaves and reshapes belong to no kernel")
        }
        Op::Unary(_) | Op::Binary(_) | Op::Dropout(_) | Op::DropoutGrad(_) | Op::Expand { .. } => {
            elementwise::kernel(cx, graph, kernel)
        }
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
            softmax::cross_entropy(cx, &args[0], &args[1], &out);
        }
        Op::CrossEntropyGrad => {
            let (out, args) = single(cx, graph, kernel);
            softmax::cross_entropy_grad(cx, &args[0], &args[1], &args[2], &out);
        }
        Op::DropoutMask(d) => {
            let (out, args) = single(cx, graph, kernel);
            dropout::mask(cx, d, args[0].shape(), &out);
        }
    }
}
