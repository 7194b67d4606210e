//! The program's functions and the one match over ops: [`lower`] builds one function per
//! phase in the frame of the entry ABI; a kernel's compute phase goes to the lowering of its
//! op family (element-wise kernels, fused or not, to the vector or the scalar loop the plan
//! chose), a draw phase to the dropout's keep-byte draw, a check phase to the index check.

use cranelift_codegen::ir::{InstBuilder, types};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::{Buffer, Choices, LowerCx};
use super::{conv, dropout, elementwise, indexed, layout, linalg, pool, reduce, simd, softmax};
use crate::graph::{Graph, NodeId, Op, embedding};
use crate::jit::{Codegen, Jit};
use crate::plan::{Form, Kernel, Part, Phase, Program, Unit};

/// Lowers every phase of `program` into one function of `codegen`, in order, computing
/// products and masks as `choices` says, and links them into machine code.
pub(crate) fn lower(program: &Program, choices: Choices, mut codegen: Codegen) -> Jit {
    let target = codegen.target_config();
    let mut error_nodes = Vec::new();
    for (i, phase) in program.phases.iter().enumerate() {
        let mut ctx = codegen.entry_context();
        let mut fctx = FunctionBuilderContext::new();
        let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let buffers = &program.memory.buffers;
        let imports = codegen.imports();
        let mut cx = LowerCx::new(b, target, buffers, imports, choices, error_nodes);
        lower_phase(&mut cx, program, phase);
        let ok = cx.b.ins().iconst(types::I32, 0);
        cx.b.ins().return_(&[ok]);
        error_nodes = cx.finish(target);
        codegen.define(ctx, &phase_header(program, i, phase));
    }
    codegen.finish(error_nodes)
}

/// The phase's work: what its part of its kernel computes, for its unit range.
fn lower_phase(cx: &mut LowerCx, program: &Program, phase: &Phase) {
    let graph = &program.graph;
    let kernel = &program.schedule.kernels[phase.kernel];
    match phase.part {
        Part::Draw(id) => dropout::draw_phase(cx, graph, id),
        Part::CheckIndices(id) => {
            let (_, args) = node_buffers(cx, graph, id);
            let op = &graph[id].op;
            let types: Vec<_> = args.iter().map(|a| a.ty).collect();
            let operand = op
                .checked_indices()
                .expect("invariant: a check phase's op checks");
            indexed::check_indices(cx, id, op.index_bound(&types), &args[operand]);
        }
        Part::Compute => {
            cx.chunk_units = phase.chunk_units;
            lower_kernel(cx, graph, kernel, phase.unit)
        }
    }
}

/// The comment line heading a phase's function in [`crate::CompiledGraph::clif`].
fn phase_header(program: &Program, i: usize, phase: &Phase) -> String {
    let graph = &program.graph;
    let name = |id: NodeId| format!("%{}", graph[id].name);
    let what = match phase.part {
        Part::Draw(id) => format!("keep bytes of {}", name(id)),
        Part::CheckIndices(id) => format!("indices of {}", name(id)),
        Part::Compute => {
            let nodes = &program.schedule.kernels[phase.kernel].nodes;
            let names: Vec<String> = nodes.iter().map(|&id| name(id)).collect();
            names.join(", ")
        }
    };
    format!(
        "; phase {i}: kernel {} ({what}): {} {}, {} per chunk",
        phase.kernel, phase.units, phase.unit, phase.chunk_units
    )
}

/// The node's buffer and its operands' buffers, addresses loaded from the table.
fn node_buffers<'g>(
    cx: &mut LowerCx,
    graph: &'g Graph,
    id: NodeId,
) -> (Buffer<'g>, Vec<Buffer<'g>>) {
    let mut buffer = |id: NodeId| Buffer {
        addr: cx.node_addr(id),
        ty: &graph[id].ty,
    };
    let operands = graph.operands_of(id).into_iter().map(&mut buffer).collect();
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
/// unit range, whose units are `unit`.
fn lower_kernel(cx: &mut LowerCx, graph: &Graph, kernel: &Kernel, unit: Unit) {
    let id = kernel.nodes[0];
    match &graph[id].op {
        // The caller's data, the graph's data, or (reshape) the operand's buffer under
        // another shape: the buffer plan points the table there, nothing to compute.
        Op::Input(_) | Op::Parameter(_) | Op::Constant(_) | Op::Reshape { .. } => {
            panic!("invariant: leaves and reshapes belong to no kernel")
        }
        Op::Tril { .. } => panic!("invariant: materialize_tril leaves no tril node to lower"),
        // The mode pass rewrote them into ordinary nodes (`passes::specialize_batch_norm`).
        Op::BatchNorm(_)
        | Op::BatchNormRunning(_)
        | Op::BatchNormInputGrad(_)
        | Op::BatchNormWeightGrad(_) => {
            panic!("invariant: specialize_batch_norm leaves no batch-norm node to lower")
        }
        Op::LayerNorm(_) | Op::LayerNormInputGrad(_) | Op::LayerNormWeightGrad(_) => {
            panic!("invariant: expand_layer_norm leaves no layer-norm node to lower")
        }
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Dropout(_)
        | Op::DropoutGrad(_)
        | Op::Expand { .. }
        | Op::Where => match &kernel.form {
            Form::Vector { reads, masks } => simd::kernel(cx, graph, kernel, reads, masks),
            Form::Scalar => elementwise::kernel(cx, graph, kernel),
        },
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let (out, args) = single(cx, graph, kernel);
            let (a, b) = ((&args[0], *transpose_a), (&args[1], *transpose_b));
            linalg::matmul(cx, a, b, &out);
        }
        Op::Linear { .. } => {
            let (out, args) = single(cx, graph, kernel);
            let by_columns = unit == Unit::Column;
            linalg::linear(cx, &args[0], &args[1], args.get(2), &out, by_columns);
        }
        Op::Conv(c) => match kernel.nodes[..] {
            // Its ReLU as the epilogue (plan::fusion, rule 5): the convolution's values go to
            // its own buffer if a later kernel reads them, else straight to the ReLU's.
            [_, relu] => {
                let mut buffer = |id: NodeId| Buffer {
                    addr: cx.node_addr(id),
                    ty: &graph[id].ty,
                };
                let args: Vec<Buffer> =
                    graph.operands_of(id).into_iter().map(&mut buffer).collect();
                let relu = buffer(relu);
                let out = kernel.outputs.contains(&id).then(|| buffer(id));
                let values = out.as_ref().unwrap_or(&relu);
                let operands = (&args[0], &args[1], args.get(2));
                conv::conv(cx, id, c, operands, values, Some(&relu));
            }
            _ => {
                let (out, args) = single(cx, graph, kernel);
                conv::conv(cx, id, c, (&args[0], &args[1], args.get(2)), &out, None);
            }
        },
        Op::Pool(p) => match kernel.nodes[..] {
            // A channel dropout as its epilogue (plan::fusion, rule 5): the pooled values go
            // through the dropout's keep bytes straight to its buffer.
            [_, dropout] => {
                let Op::Dropout(d) = &graph[dropout].op else {
                    panic!("invariant: a pool's epilogue is a dropout");
                };
                let input = graph.operands_of(id)[0];
                let mut buffer = |id: NodeId| Buffer {
                    addr: cx.node_addr(id),
                    ty: &graph[id].ty,
                };
                let (x, out) = (buffer(input), buffer(dropout));
                let keep = cx.scratch_addr(dropout);
                pool::max_pool(cx, p, &x, &out, (keep, d.scale()));
            }
            _ => {
                let (out, args) = single(cx, graph, kernel);
                pool::pool(cx, p, &args[0], &out);
            }
        },
        Op::AdaptiveAvgPool { output } => {
            let (out, args) = single(cx, graph, kernel);
            pool::adaptive_avg_pool(cx, output.len(), &args[0], &out);
        }
        Op::ConvInputGrad(c) => {
            let (out, args) = single(cx, graph, kernel);
            conv::input_grad(cx, id, c, (&args[0], &args[1]), &out);
        }
        Op::ConvWeightGrad(c) => {
            let (out, args) = single(cx, graph, kernel);
            conv::weight_grad(cx, id, c, (&args[0], &args[1]), &out);
        }
        Op::PoolGrad(p) => match kernel.nodes[..] {
            // The ReLU gradient reading it as its epilogue (plan::fusion, rule 5): the
            // pooling gradient reaches its own buffer only if a later kernel reads it.
            [_, relu_grad] => {
                let mut buffer = |id: NodeId| Buffer {
                    addr: cx.node_addr(id),
                    ty: &graph[id].ty,
                };
                let [g, x] = graph.operands_of(id)[..] else {
                    panic!("invariant: a pooling gradient has two operands");
                };
                let pre = graph.operands_of(relu_grad)[1];
                let (g, x, pre, relu) = (buffer(g), buffer(x), buffer(pre), buffer(relu_grad));
                let own = kernel.outputs.contains(&id).then(|| buffer(id));
                let out = own.as_ref().unwrap_or(&relu);
                pool::pool_grad(cx, p, (&g, &x), out, Some((&pre, &relu)));
            }
            _ => {
                let (out, args) = single(cx, graph, kernel);
                pool::pool_grad(cx, p, (&args[0], &args[1]), &out, None);
            }
        },
        Op::AdaptiveAvgPoolGrad { output } => {
            let (out, args) = single(cx, graph, kernel);
            pool::adaptive_avg_pool_grad(cx, output.len(), &args[0], &out);
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
        Op::Embedding(_) => {
            let (out, args) = single(cx, graph, kernel);
            indexed::embedding(cx, &args[0], &args[1], &out);
        }
        Op::EmbeddingGrad(e) => {
            let (out, args) = single(cx, graph, kernel);
            let padding = embedding::padding_row("embedding_grad", e.padding_idx, e.num_embeddings)
                .expect("invariant: inference checked padding_idx");
            indexed::embedding_grad(cx, &args[0], &args[1], padding, &out);
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
