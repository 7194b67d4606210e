//! Phases: the schedule's kernels cut into the pieces that threads share. Each phase is one
//! generated function of the entry ABI (`crate::jit`); a call computes the work units
//! `[begin, end)` of its phase. Phases run in order, each finished before the next starts.
//!
//! The units of a phase depend only on the shapes, never on the thread count, and every unit
//! computes its values the same way wherever the phase is split; threads only decide which
//! units each runs. That is what makes results bit-identical for any thread count. The work
//! units follow the class of the kernel's op ([`crate::graph::OpClass`]):
//! - element-wise: unless the kernel is a vector kernel that makes its masks in its loop
//!   ([`super::vector`]), first one phase per drawing dropout, whose units are the mask's
//!   groups of 128 elements (the keep bytes); then the loop, whose units are blocks of 128
//!   elements of the loop shape, row-major (a non-broadcast mask group is exactly one block,
//!   so threads split a vector kernel at multiples of 128 mask elements);
//! - movement (`transpose`): blocks of 128 output elements;
//! - products (`matmul`, `linear`): output rows (a batch entry's rows in order, batches
//!   row-major), or, where the op allows it (`linear`), output columns if there are fewer
//!   rows than columns (a slice of columns packs only its part of the weight); lowering reads
//!   which from the phase's [`Unit`];
//! - reductions: output elements; rows (`softmax`, `log_softmax`, `cross_entropy_grad`): the
//!   rows along their axis; whole (`cross_entropy`, whose batch mean sums in one fixed order;
//!   a dropout mask): one unit;
//! - an op with checked indices (`cross_entropy`'s targets) first gets a phase checking them
//!   by rows (the first failing row in row order is the error, on any thread count).
//!
//! A phase also fixes how many consecutive units one call runs when it is split (its chunk).
//! Chunks change no result (a unit computes the same bits in any call), only the cost of the
//! split: each chunk should outweigh handing it to a thread, and a matrix product's calls
//! each repack a whole operand, so it gets a few chunks per thread (unless it is too small
//! to split at all). Chunks are the only thing the thread count decides.

use std::fmt;

use super::schedule::{Kernel, Schedule};
use crate::graph::{Graph, NodeId, OpClass};
use crate::rng::mask::{self, GROUP_SIZE};

/// Elements in one work unit of an element-wise loop or a transpose: a mask group, so that
/// a (non-broadcast) dropout's groups never straddle two units.
pub const ELEMENT_BLOCK: usize = GROUP_SIZE;

/// Rough cost (in element operations) that one chunk should reach before a phase is split.
const CHUNK_COST: usize = 1 << 16;

/// The fewest rows or columns in a chunk of a matrix product.
const GEMM_CHUNK_MIN: usize = 16;

/// Chunks per thread of a matrix product: one, since every chunk packs the whole operand it
/// does not slice again (four chunks instead of two made SimpleNet's batch-256 training step on
/// two threads about 10% slower); a helper thread that starts late leaves its chunk to the
/// caller, which claims chunks from the start.
const GEMM_CHUNKS_PER_THREAD: usize = 1;

/// Multiply-adds below which a matrix product is not split.
const GEMM_SPLIT_COST: usize = 1 << 18;

/// Rough cost of one mask group's draw, in element operations: 32 Philox blocks and a bit
/// transpose for 128 keep bytes (about 1 µs, measured).
const DRAW_COST: usize = 32 * GROUP_SIZE;

/// One piece of a compiled graph's work: a function computing `units` fixed work units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    /// Its kernel's index in the schedule.
    pub kernel: usize,
    /// What of the kernel it computes.
    pub part: Part,
    /// What one unit is.
    pub unit: Unit,
    /// How many units it has.
    pub units: usize,
    /// Units per call when the phase is split across threads (at least 1).
    pub chunk_units: usize,
}

impl Phase {
    /// How many calls the phase is split into across threads: 1 runs it whole.
    pub fn chunks(&self) -> usize {
        self.units.div_ceil(self.chunk_units)
    }
}

/// What a phase computes of its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The keep bytes of this dropout, before its kernel's loop.
    Draw(NodeId),
    /// The indices of this node (`cross_entropy`'s class targets, an embedding's indices),
    /// checked against their bound before it computes: the only run-time failure.
    CheckIndices(NodeId),
    /// The kernel's values.
    Compute,
}

/// The work unit of a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// [`ELEMENT_BLOCK`] consecutive elements, row-major (the last block may be shorter).
    ElementBlock,
    /// One group of 128 mask elements.
    MaskGroup,
    /// One output row of a matrix product, or one row along a softmax axis.
    Row,
    /// One output column of a `linear` (one output feature).
    Column,
    /// One image of a convolution's batch (the only one of an unbatched input).
    Image,
    /// One input channel of a convolution's weight gradient: the weight's columns it owns.
    InputChannel,
    /// One plane (the spatial dimensions at one batch entry and channel) of a pool
    /// gradient's output, which its windows' gradients are added into.
    Plane,
    /// One output element of a reduction.
    OutputElement,
    /// The whole kernel.
    Whole,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Unit::ElementBlock => "blocks of 128 elements",
            Unit::MaskGroup => "mask groups",
            Unit::Row => "rows",
            Unit::Column => "columns",
            Unit::Image => "images",
            Unit::Plane => "planes",
            Unit::InputChannel => "input channels",
            Unit::OutputElement => "output elements",
            Unit::Whole => "whole kernel",
        };
        f.write_str(name)
    }
}

/// The phases of `schedule` (for `graph`), in execution order, chunked for `threads`.
pub(crate) fn phases(graph: &Graph, schedule: &Schedule, threads: usize) -> Vec<Phase> {
    let mut phases = Vec::new();
    for (k, kernel) in schedule.kernels.iter().enumerate() {
        for (member, &id) in kernel.nodes.iter().enumerate() {
            // A vector kernel makes most masks in its own loop (super::vector).
            if kernel.form.draws_in_loop(member) {
                continue;
            }
            if let Some(groups) = drawn_groups(graph, id) {
                let chunk_units = CHUNK_COST.div_ceil(DRAW_COST);
                phases.push(phase(
                    k,
                    Part::Draw(id),
                    Unit::MaskGroup,
                    groups,
                    chunk_units,
                ));
            }
        }
        let first = kernel.nodes[0];
        if let Some(operand) = graph[first].op.checked_indices() {
            let rows = graph[graph.operands_of(first)[operand]].ty.shape.numel();
            let part = Part::CheckIndices(first);
            phases.push(phase(k, part, Unit::Row, rows, CHUNK_COST));
        }
        let work = compute_work(graph, kernel);
        let chunk_units = work.chunk_units(threads);
        phases.push(phase(k, Part::Compute, work.unit, work.units, chunk_units));
    }
    phases
}

/// The images of the convolution `id`: its input's batch, or one for an unbatched input.
pub(crate) fn conv_images(graph: &Graph, id: NodeId) -> usize {
    let x = &graph[graph.operands_of(id)[0]].ty.shape;
    let out = &graph[id].ty.shape;
    let w = &graph[graph.operands_of(id)[1]].ty.shape;
    if x.rank() == w.rank() {
        out.dims()[0]
    } else {
        1
    }
}

/// Re-chunks the compute phase of `kernel` (of `graph`) for calls of `units` units each on
/// `threads` threads: a per-sample phase of a tiled graph ([`super::samples`]) runs a chunk
/// of samples per call, and a matrix product's split is sized by the rows of one call.
pub(crate) fn rechunk(
    graph: &Graph,
    kernel: &Kernel,
    phase: &mut Phase,
    units: usize,
    threads: usize,
) {
    let work = compute_work(graph, kernel);
    if phase.part == Part::Compute && work.gemm {
        let call = Work { units, ..work };
        phase.chunk_units = call.chunk_units(threads).max(1);
    }
}

fn phase(kernel: usize, part: Part, unit: Unit, units: usize, chunk_units: usize) -> Phase {
    Phase {
        kernel,
        part,
        unit,
        units,
        chunk_units: chunk_units.max(1),
    }
}

/// Units per chunk for units costing `cost` each.
fn chunk_for(cost: usize) -> usize {
    CHUNK_COST.div_ceil(cost.max(1))
}

/// The mask groups the dropout `id` draws, if it draws.
fn drawn_groups(graph: &Graph, id: NodeId) -> Option<usize> {
    let d = graph[id].op.drawn_dropout().filter(|d| d.is_random())?;
    let input = &graph[graph.operands_of(id)[0]].ty.shape;
    Some(mask::drawn_groups(d, input))
}

/// The work of a kernel's compute phase.
struct Work {
    unit: Unit,
    units: usize,
    /// Rough cost of one unit, in element operations.
    cost: usize,
    /// A matrix product: one `sgemm` call per chunk.
    gemm: bool,
}

impl Work {
    fn new(unit: Unit, units: usize, cost: usize) -> Work {
        Work {
            unit,
            units,
            cost,
            gemm: false,
        }
    }

    /// Rows or columns of a matrix product, each costing `cost` multiply-adds.
    fn gemm(unit: Unit, units: usize, cost: usize) -> Work {
        Work {
            gemm: true,
            ..Work::new(unit, units, cost)
        }
    }

    /// Units per chunk on `threads` threads. Every `sgemm` call packs a whole operand (the
    /// one it does not slice), so a product is cut into a few chunks per thread only.
    fn chunk_units(&self, threads: usize) -> usize {
        if !self.gemm {
            return chunk_for(self.cost);
        }
        // One thread has no one to share with: one call packs each operand once.
        if threads <= 1 || self.units * self.cost < GEMM_SPLIT_COST {
            return self.units;
        }
        let chunks = GEMM_CHUNKS_PER_THREAD * threads.max(1);
        self.units.div_ceil(chunks).max(GEMM_CHUNK_MIN)
    }
}

/// The work of the kernel's compute phase, from its first node's class.
fn compute_work(graph: &Graph, kernel: &Kernel) -> Work {
    let id = kernel.nodes[0];
    let node = &graph[id];
    let out = &node.ty.shape;
    let blocks = out.numel().div_ceil(ELEMENT_BLOCK);
    match node.op.class() {
        OpClass::Leaf(_) | OpClass::View => {
            panic!("invariant: leaves and views belong to no kernel")
        }
        OpClass::ElementWise(_) => {
            let cost = ELEMENT_BLOCK * kernel.nodes.len();
            Work::new(Unit::ElementBlock, blocks, cost)
        }
        OpClass::Movement => Work::new(Unit::ElementBlock, blocks, ELEMENT_BLOCK),
        OpClass::Reduction => {
            let outputs = out.numel();
            let input = graph[graph.operands_of(id)[0]].ty.shape.numel();
            let per_output = input.checked_div(outputs).unwrap_or(0);
            Work::new(Unit::OutputElement, outputs, per_output)
        }
        OpClass::Window if node.op.plane_spatial().is_some() => {
            // A plane costs its elements and its operands' (a pool's input; a gradient's
            // windows, each added into the input elements it took).
            let spatial = node.op.plane_spatial().unwrap_or(0);
            let plane: usize = out.dims()[out.rank() - spatial..].iter().product();
            let planes = out.numel().checked_div(plane).unwrap_or(0);
            let operand = &graph[graph.operands_of(id)[0]].ty.shape;
            let per_plane = operand.numel().checked_div(planes).unwrap_or(0);
            Work::new(Unit::Plane, planes, plane + 4 * per_plane)
        }
        OpClass::Window => {
            // Rough taps per output element: a convolution's weight elements per output
            // channel; a pool's input elements per output (exact for non-overlapping
            // windows).
            let operands = graph.operands_of(id);
            let shape = |i: usize| &graph[operands[i]].ty.shape;
            let taps = if operands.len() >= 2 {
                shape(1)
                    .numel()
                    .checked_div(shape(1).dims()[0])
                    .unwrap_or(0)
            } else {
                shape(0).numel().checked_div(out.numel()).unwrap_or(0)
            };
            Work::new(Unit::OutputElement, out.numel(), 2 * taps.max(1))
        }
        OpClass::Convolution => {
            // An image costs its output elements times the weight's elements per output
            // channel, in multiply-adds.
            let w = &graph[graph.operands_of(id)[1]].ty.shape;
            let per_output = w.numel().checked_div(w.dims()[0]).unwrap_or(0);
            let images = conv_images(graph, id);
            let per_image = out.numel().checked_div(images).unwrap_or(0);
            Work::gemm(Unit::Image, images, per_image.saturating_mul(per_output))
        }
        OpClass::ConvolutionInputGrad => {
            // An image costs its columns (the weight's elements times the output positions).
            let operands = graph.operands_of(id);
            let (g, w) = (&graph[operands[0]].ty.shape, &graph[operands[1]].ty.shape);
            let images = conv_images(graph, id);
            let per_image = g.numel().checked_div(images).unwrap_or(0);
            let per_output = w.numel().checked_div(w.dims()[0]).unwrap_or(0);
            Work::gemm(Unit::Image, images, per_image.saturating_mul(per_output))
        }
        OpClass::ConvolutionWeightGrad => {
            // An input channel owns its columns of the weight, for every output channel and
            // image (their products: the weight's elements times every image's output
            // positions, shared out by channel).
            let operands = graph.operands_of(id);
            let (g, x) = (&graph[operands[0]].ty.shape, &graph[operands[1]].ty.shape);
            let spatial = out.rank() - 2;
            let channels = x.dims()[x.rank() - spatial - 1];
            let per_weight = g.numel().checked_div(out.dims()[0]).unwrap_or(0);
            let cost = (out.numel().saturating_mul(per_weight))
                .checked_div(channels)
                .unwrap_or(0);
            Work::gemm(Unit::InputChannel, channels, cost.max(1))
        }
        OpClass::Rows { axis } => {
            let (outer, len, inner) = (out.around_axis(axis))
                .expect("invariant: the node's type was inferred, so its axis fits");
            // exp dominates: a call per element, twice.
            Work::new(Unit::Row, outer * inner, 16 * len)
        }
        OpClass::Product { by_columns } => {
            // [..., m, n] = [..., m, k] . [k, n]: the output's rows and columns, and k from the
            // first operand's last dimension.
            let dims = out.dims();
            let n = dims[dims.len() - 1];
            let rows = out.numel().checked_div(n).unwrap_or(0);
            let a = &graph[graph.operands_of(id)[0]].ty.shape;
            let k = *(a.dims().last()).expect("invariant: product operands have rank 1+");
            if by_columns && rows < n {
                // Every GEMM call packs its whole right-hand matrix: a slice of columns packs
                // only its part of it.
                Work::gemm(Unit::Column, n, rows * k)
            } else {
                Work::gemm(Unit::Row, rows, k * n)
            }
        }
        OpClass::Whole => Work::new(Unit::Whole, 1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse;

    /// `kernel part: units unit / chunk_units` per phase of the fused schedule of `source`.
    fn phase_lines(source: &str) -> Vec<String> {
        let graph = parse(source).expect("a valid test graph");
        let schedule = Schedule::fused(&graph);
        let part = |part: Part| match part {
            Part::Draw(id) => format!("draw %{}", graph[id].name),
            Part::CheckIndices(id) => format!("check %{}", graph[id].name),
            Part::Compute => "compute".to_string(),
        };
        (phases(&graph, &schedule, 2).iter())
            .map(|p| {
                let part = part(p.part);
                format!(
                    "{} {part}: {} {} / {}",
                    p.kernel, p.units, p.unit, p.chunk_units
                )
            })
            .collect()
    }

    #[test]
    /// On two threads: one chunk per thread for the two large products, by columns (32 rows).
    /// The relu + dropout kernels are vector kernels: no draw phases.
    fn simple_net_splits_its_large_products() {
        let lines = phase_lines(include_str!("../../ir/simple_net.ir"));
        assert_eq!(
            lines,
            [
                "0 compute: 256 columns / 128",
                "1 compute: 64 blocks of 128 elements / 256",
                "2 compute: 128 columns / 64",
                "3 compute: 32 blocks of 128 elements / 256",
                "4 compute: 32 rows / 32",
            ]
        );
    }

    #[test]
    /// A channel-wise dropout draws its keep bytes in a phase before its (scalar) loop.
    fn a_channel_dropout_draws_before_its_loop() {
        let lines = phase_lines(
            "graph g {
               %x: f32[4, 64, 8, 8] = input
               %y: f32[4, 64, 8, 8] = dropout2d %x {p = 0.5}
               output y = %y
             }",
        );
        assert_eq!(
            lines,
            [
                "0 draw %y: 2 mask groups / 16",
                "0 compute: 128 blocks of 128 elements / 512",
            ]
        );
    }

    #[test]
    fn cross_entropy_checks_by_rows_then_sums_as_one_unit() {
        let lines = phase_lines(
            "graph g {
               %x: f32[6, 3] = input
               %t: i32[6] = input
               %l: f32[] = cross_entropy %x, %t
               %s: f32[6, 3] = softmax %x {axis = 0}
               output l = %l
               output s = %s
             }",
        );
        assert_eq!(
            lines,
            [
                "0 check %l: 6 rows / 65536",
                "0 compute: 1 whole kernel / 65536",
                "1 compute: 3 rows / 683",
            ]
        );
    }
}
