//! The vector form of an element-wise kernel: four `f32` lanes at a time, each drawing
//! dropout's mask made in the loop by [`super::bitplane`], with no keep bytes in memory.
//!
//! The plan decides which kernels take this path and how each reads its operands and masks
//! ([`crate::plan::Form::Vector`]: operands of the loop's shape walked contiguously, one
//! element splatted, or a row of the trailing dimensions, element `e` reading its element
//! `e % C` with `C % 4 == 0`, so a vector never crosses a row; masks made in the loop or read
//! as keep bytes, one per vector). So the bias, the activation and the dropout after a matrix
//! product are one vector pass ([`crate::passes::split_linear_bias()`]).
//!
//! The loop runs over the unit range's mask groups (a unit is 128 elements, one group), in
//! runs of up to [`crate::rng::planes::RUN_GROUPS`] groups when a member draws: each drawing
//! dropout's keep bits of run `r + 1` are decided by the generator ([`super::bitplane`]) a
//! step after every [`STEP_EVERY`] groups of run `r` and finished after its last (the first
//! run at once, before the loop); per group, each dropout's 128 keep bits are one i32x4 `K`
//! from the run's buffer; then 32 vectors `v` are loaded,
//! computed and stored (unrolled), the dropout of vector `v` selecting by `ishl(K, 31 - v)`
//! (bit `v` of each word in its lane's top bit; `blendvps` reads that bit alone). The last, partial
//! group is an ordinary group whose lanes are computed one by one and only its own elements
//! loaded and written. Each value is bit for bit the scalar loop's: the same IEEE operations.

use std::collections::BTreeMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

mod operands;

use operands::{Cursor, Operand};

use super::bitplane::{self, Planes};
use super::{LowerCx, arith, vector_arith};
use crate::graph::{Elementwise, Graph, NodeId};
use crate::plan::{Kernel, MaskForm, Read};
use crate::rng::mask::GROUP_SIZE;
use crate::rng::planes::RUN_GROUPS;

/// Groups computed between two steps of the next run's generator: a run of 16 groups takes
/// four steps, about what p = 0.1 needs (three planes a step on AVX-512).
const STEP_EVERY: usize = 4;

/// Vectors of four lanes in one group.
const VECTORS: usize = GROUP_SIZE / 4;

/// Flags of a vector access: in bounds, but buffers are only 4-byte aligned.
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Lowers the element-wise `kernel` as the vector loop over the unit range's groups, reading
/// its inputs as `reads` says and its members' masks as `masks` says (the plan's
/// [`crate::plan::Form::Vector`]).
pub(crate) fn kernel(
    cx: &mut LowerCx,
    graph: &Graph,
    kernel: &Kernel,
    reads: &[Read],
    masks: &[Option<MaskForm>],
) {
    let n = graph[kernel.nodes[0]].ty.shape.numel();
    let sources: Vec<Option<Source>> = (kernel.nodes.iter().zip(masks))
        .map(|(&id, mask)| {
            Some(match (*mask)? {
                MaskForm::InLoop => {
                    let d = graph[id].op.drawn_dropout();
                    let d = d.expect("invariant: a member with a mask form draws one");
                    Source::Planes(Planes::new(cx, d), d.sample_steps)
                }
                MaskForm::Bytes { inner } => Source::Bytes {
                    addr: cx.scratch_addr(id),
                    inner,
                },
            })
        })
        .collect();
    let externals = &kernel.inputs;
    let external_addrs: Vec<Value> = externals.iter().map(|&id| cx.node_addr(id)).collect();
    let output_addrs: Vec<Value> = kernel.outputs.iter().map(|&id| cx.node_addr(id)).collect();
    let reads: Vec<Operand> = (reads.iter().zip(external_addrs))
        .map(|(&read, addr)| Operand::new(cx, read, addr))
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
    let draws = sources
        .iter()
        .any(|s| matches!(s, Some(Source::Planes(..))));
    if n >= GROUP_SIZE {
        let stop = cx.b.ins().umin(end, full);
        if let Some(per_sample) = sample_groups(graph, kernel, masks) {
            // Sample after sample, each part of the range drawn at its sample's step.
            let range = (begin, stop);
            bitplane::for_each_sample(cx, range, per_sample, &mut |cx, part| {
                let sources: Vec<Option<Source>> = (sources.iter())
                    .map(|source| source.map(|source| source.for_sample(part.s, part.base)))
                    .collect();
                let body = Body {
                    sources: &sources,
                    ..body
                };
                body.pipelined_groups(cx, part.lo, part.hi);
            });
        } else if draws {
            body.pipelined_groups(cx, begin, stop);
        } else {
            let zero = cx.index(0);
            cx.range_loop(begin, stop, &mut |cx, g| body.group(cx, g, zero));
        }
    }
    if !n.is_multiple_of(GROUP_SIZE) {
        // The partial group, if the range holds it.
        let tail = cx.b.create_block();
        let done = cx.b.create_block();
        let holds = cx.b.ins().icmp(IntCC::UnsignedGreaterThan, end, full);
        cx.b.ins().brif(holds, tail, &[], done, &[]);
        cx.b.switch_to_block(tail);
        cx.b.seal_block(tail);
        let one = cx.index(1);
        body.fill(cx, full, one);
        body.partial(cx, full, n % GROUP_SIZE);
        cx.b.ins().jump(done, &[]);
        cx.b.switch_to_block(done);
        cx.b.seal_block(done);
    }
}

/// Mask groups per sample if a member draws samples at steps of their own (`sample_steps`):
/// the plan gives such a kernel the vector form only if every sample is whole groups.
fn sample_groups(graph: &Graph, kernel: &Kernel, masks: &[Option<MaskForm>]) -> Option<usize> {
    (kernel.nodes.iter().zip(masks)).find_map(|(&id, mask)| {
        let d = graph[id].op.drawn_dropout()?;
        if *mask != Some(MaskForm::InLoop) || !d.sample_steps {
            return None;
        }
        let input = &graph[graph.operands_of(id)[0]].ty.shape;
        let samples = (d.mask_samples(input))
            .expect("invariant: the node's type was inferred, so its attributes fit its input");
        Some(samples.per_sample / GROUP_SIZE)
    })
}

/// Where a drawing member's keep bits come from.
#[derive(Clone, Copy)]
enum Source {
    /// Made per run of groups in the loop; `true` if the dropout draws each sample at a step
    /// of its own (`sample_steps`).
    Planes(Planes, bool),
    /// Keep bytes at `addr`, one per `inner` elements.
    Bytes { addr: Value, inner: usize },
}

impl Source {
    /// The source for sample `s` (pointer-sized) of a loop whose sample starts at group
    /// `base`: a dropout with `sample_steps` draws at its own step, anything else as before.
    fn for_sample(self, s: Value, base: Value) -> Source {
        match self {
            Source::Planes(planes, true) => Source::Planes(planes.for_sample(s, base), true),
            other => other,
        }
    }
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
    /// Member `id`'s op.
    fn op(&self, id: NodeId) -> Elementwise<'_> {
        let op = self.graph[id].op.as_elementwise();
        op.expect("invariant: a vector kernel holds only element-wise nodes")
    }

    /// The drawing members' generators.
    fn planes(&self) -> impl Iterator<Item = &Planes> {
        (self.sources.iter().flatten()).filter_map(|source| match source {
            Source::Planes(planes, _) => Some(planes),
            Source::Bytes { .. } => None,
        })
    }

    /// Groups `begin .. stop`, whole, with every drawing member's keep bits made in the loop.
    /// Software pipelining: the first run's keep bits at once, then each later run's decided
    /// a step every [`STEP_EVERY`] groups of the run before, so the Philox work is spread
    /// over the memory traffic instead of stalling it in bursts.
    fn pipelined_groups(&self, cx: &mut LowerCx, begin: Value, stop: Value) {
        let run = cx.index(RUN_GROUPS);
        let stop = cx.b.ins().umax(stop, begin);
        let span = cx.b.ins().isub(stop, begin);
        let count = cx.b.ins().umin(span, run);
        self.start_runs(cx, begin, count);
        self.finish_runs(cx);
        bitplane::for_each_run(cx, begin, stop, &mut |cx, first, count| {
            let next = cx.b.ins().iadd(first, count);
            let left = cx.b.ins().isub(stop, next);
            let next_count = cx.b.ins().umin(left, run);
            self.start_runs(cx, next, next_count);
            let zero = cx.index(0);
            cx.range_loop(zero, count, &mut |cx, i| {
                let g = cx.b.ins().iadd(first, i);
                self.group(cx, g, i);
                self.step_runs_every(cx, i);
            });
            self.finish_runs(cx);
        });
    }

    /// Makes every drawing member's keep bits for groups `first .. first + count` at once.
    fn fill(&self, cx: &mut LowerCx, first: Value, count: Value) {
        self.start_runs(cx, first, count);
        self.finish_runs(cx);
    }

    /// Starts every drawing member's run of groups `first .. first + count`.
    fn start_runs(&self, cx: &mut LowerCx, first: Value, count: Value) {
        for planes in self.planes() {
            planes.start_run(cx, first, count);
        }
    }

    /// Steps every drawing member's run after every [`STEP_EVERY`]-th group (`i` counts them).
    fn step_runs_every(&self, cx: &mut LowerCx, i: Value) {
        let step = cx.b.create_block();
        let done = cx.b.create_block();
        let phase = cx.b.ins().band_imm_u(i, (STEP_EVERY - 1) as i64);
        let last = (cx.b.ins()).icmp_imm_u(IntCC::Equal, phase, (STEP_EVERY - 1) as i64);
        cx.b.ins().brif(last, step, &[], done, &[]);
        cx.b.switch_to_block(step);
        cx.b.seal_block(step);
        for planes in self.planes() {
            planes.step(cx);
        }
        cx.b.ins().jump(done, &[]);
        cx.b.switch_to_block(done);
        cx.b.seal_block(done);
    }

    /// Finishes every drawing member's run: its keep bits to its buffer.
    fn finish_runs(&self, cx: &mut LowerCx) {
        for planes in self.planes() {
            planes.finish(cx);
        }
    }

    /// The keep bits of every drawing member for group `i` of the run last filled.
    fn keeps(&self, cx: &mut LowerCx, i: Value) -> Vec<Option<Keep>> {
        (self.sources.iter())
            .map(|source| {
                source.map(|source| match source {
                    Source::Planes(planes, _) => Keep::Bits(planes.load(cx, i)),
                    Source::Bytes { addr, inner } => Keep::Bytes { addr, inner },
                })
            })
            .collect()
    }

    /// Group `g`, whole: 32 vectors of four elements; its keep bits are group `i` of the
    /// run last filled.
    fn group(&self, cx: &mut LowerCx, g: Value, i: Value) {
        let keeps = self.keeps(cx, i);
        let bytes = cx.b.ins().imul_imm_u(g, (GROUP_SIZE * 4) as i64);
        let mut cursors: Vec<Cursor> = (self.reads.iter())
            .map(|&read| read.cursor(cx, g, bytes))
            .collect();
        let outputs: Vec<Value> = (self.output_addrs.iter())
            .map(|&a| cx.b.ins().iadd(a, bytes))
            .collect();
        for v in 0..VECTORS {
            let offset = (v * 16) as i32;
            let mut values: BTreeMap<NodeId, Value> = BTreeMap::new();
            for (&id, cursor) in self.externals.iter().zip(&mut cursors) {
                values.insert(id, cursor.next_vector(cx, offset));
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
                let value = vector_arith::element(cx, self.op(id), &args, mask);
                values.insert(id, value);
            }
            for (id, &addr) in self.kernel.outputs.iter().zip(&outputs) {
                let value = lookup(&values, *id);
                cx.b.ins().store(vector_flags(), value, addr, offset);
            }
        }
    }

    /// The first `lanes` elements of group `g`, one by one on the scalar ops of [`super::arith`]
    /// (a loop); its keep bits are the first group of the run last filled, read lane by lane.
    fn partial(&self, cx: &mut LowerCx, g: Value, lanes: usize) {
        let first = cx.b.ins().imul_imm_u(g, GROUP_SIZE as i64);
        cx.counted_loop(lanes, &mut |cx, e| {
            let j = cx.b.ins().iadd(first, e);
            let mut values: BTreeMap<NodeId, Value> = BTreeMap::new();
            for (&id, read) in self.externals.iter().zip(self.reads) {
                let x = read.lane(cx, j);
                values.insert(id, x);
            }
            for (&id, source) in self.kernel.nodes.iter().zip(self.sources) {
                let args: Vec<Value> = operand_values(self.graph, id, &values);
                let kept = source.map(|source| match source {
                    Source::Planes(planes, _) => planes.lane(cx, e),
                    Source::Bytes { addr, inner } => {
                        let index = cx.b.ins().udiv_imm_u(j, inner as i64);
                        cx.load(types::I8, addr, index)
                    }
                });
                let value = arith::element(cx, self.op(id), &args, kept);
                values.insert(id, value);
            }
            for (id, &addr) in self.kernel.outputs.iter().zip(self.output_addrs) {
                let value = lookup(&values, *id);
                cx.store(value, addr, j);
            }
        });
    }
}

fn lookup(values: &BTreeMap<NodeId, Value>, id: NodeId) -> Value {
    *(values.get(&id)).expect("invariant: operands are computed first")
}

fn operand_values(graph: &Graph, id: NodeId, values: &BTreeMap<NodeId, Value>) -> Vec<Value> {
    (graph.operands_of(id).iter())
        .map(|&o| lookup(values, o))
        .collect()
}

/// The lane mask of vector `v`: bit `v` of each keep word moved to the top, `ishl(K, 31 - v)`
/// (the dropout selects by the top bit alone, [`vector_arith`]).
fn lane_mask(cx: &mut LowerCx, keep: Value, v: usize) -> Value {
    cx.b.ins().ishl_imm_u(keep, (31 - v) as i64)
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
