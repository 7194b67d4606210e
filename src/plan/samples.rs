//! Sample tiling: a graph of Monte Carlo samples ([`crate::passes::batch_samples()`]) runs its
//! shared prefix once, then its per-sample kernels a chunk of samples at a time, so a chunk's
//! values stay in cache from one kernel to the next instead of streaming every sample of
//! every value through memory.
//!
//! A chunk is a range of each per-sample phase's units: every unit of such a phase lies in one
//! sample, and a sample's units are consecutive. Nothing is recompiled and no address moves:
//! the dropouts find each sample's step from their units (`crate::lower`), so a chunk
//! computes exactly the bits the whole call would. The plan tiles only what it can prove
//! separable: every node of a per-sample kernel has the samples as its dimension 0 and reads
//! sample `s` of its per-sample operands for its sample `s` (no reduction, softmax or loss
//! across samples, no weight that varies by sample), and every phase's units align with the
//! samples. Otherwise the kernels run whole, as for any graph.
//!
//! Execution order: the shared kernels first (the schedule puts them there; nothing they
//! compute depends on a sample), then for each chunk the per-sample kernels in order. The
//! memory plan keeps every buffer the per-sample kernels touch live through the whole loop.

use std::collections::BTreeSet;
use std::fmt;

use super::phase::{Part, Phase, Unit};
use super::schedule::{Kernel, Schedule};
use crate::graph::samples::Operands;
use crate::graph::{self, Graph, NodeId, OpClass, Shape};
use crate::rng::mask::{GROUP_SIZE, groups_per_sample};

/// The most bytes of per-sample values one chunk computes: about a core's L2 (Zen 4 has 1 MiB),
/// so a chunk's values are still cached when the next kernel reads them.
const CHUNK_BYTES: usize = 1 << 20;

/// How a graph of samples runs its per-sample kernels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleTiling {
    /// The samples (dimension 0 of every per-sample value).
    pub samples: usize,
    /// Samples per chunk.
    pub chunk: usize,
    /// The first per-sample kernel of the schedule; every later kernel is one too.
    pub first_kernel: usize,
}

impl fmt::Display for SampleTiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "# samples: {} in chunks of {}, kernels from {} on run per chunk",
            self.samples, self.chunk, self.first_kernel
        )
    }
}

/// One call of a phase's function over units `begin .. end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseCall {
    /// The phase's index.
    pub phase: usize,
    pub begin: usize,
    pub end: usize,
}

/// The per-sample kernels of `schedule` if `graph` is a graph of samples whose per-sample
/// part is separable: returns the schedule with the shared kernels first (a valid order:
/// none reads a per-sample value) and the index of the first per-sample kernel.
pub(crate) fn order(graph: &Graph, schedule: Schedule) -> (Schedule, Option<(usize, usize)>) {
    let Some(samples) = sample_count(graph) else {
        return (schedule, None);
    };
    let per_sample = per_sample_kernels(graph, &schedule);
    let chunked: BTreeSet<NodeId> = (schedule.kernels.iter().zip(&per_sample))
        .filter(|(_, p)| **p)
        .flat_map(|(k, _)| k.nodes.iter().copied())
        .collect();
    if chunked.is_empty()
        || !chunked
            .iter()
            .all(|&id| separable(graph, id, samples, &chunked))
    {
        return (schedule, None);
    }
    let mut kernels: Vec<Kernel> = Vec::with_capacity(per_sample.len());
    let mut sampled: Vec<Kernel> = Vec::new();
    for (kernel, p) in schedule.kernels.into_iter().zip(per_sample) {
        if p {
            sampled.push(kernel);
        } else {
            kernels.push(kernel);
        }
    }
    let first = kernels.len();
    kernels.extend(sampled);
    (Schedule { kernels }, Some((samples, first)))
}

/// The tiling of the per-sample kernels from `first_kernel` on, if every one of their phases'
/// units align with the samples; `None` runs them whole.
pub(crate) fn tiling(
    graph: &Graph,
    schedule: &Schedule,
    phases: &[Phase],
    (samples, first_kernel): (usize, usize),
) -> Option<SampleTiling> {
    let mut bytes_per_sample = 0usize;
    for phase in phases.iter().filter(|p| p.kernel >= first_kernel) {
        units_per_sample(graph, &schedule.kernels[phase.kernel], phase, samples)?;
    }
    for kernel in &schedule.kernels[first_kernel..] {
        for &id in &kernel.outputs {
            bytes_per_sample = bytes_per_sample.saturating_add(graph[id].ty.bytes() / samples);
        }
    }
    let chunk = (CHUNK_BYTES / bytes_per_sample.max(1)).clamp(1, samples);
    Some(SampleTiling {
        samples,
        chunk,
        first_kernel,
    })
}

/// Sizes the thread split of every per-sample phase by the units of one chunk's call.
pub(crate) fn rechunk(
    graph: &Graph,
    schedule: &Schedule,
    phases: &mut [Phase],
    tiling: &SampleTiling,
    threads: usize,
) {
    for phase in phases
        .iter_mut()
        .filter(|p| p.kernel >= tiling.first_kernel)
    {
        let kernel = &schedule.kernels[phase.kernel];
        let units = units_per_sample(graph, kernel, phase, tiling.samples)
            .expect("invariant: the tiling checked every phase");
        super::phase::rechunk(graph, kernel, phase, units * tiling.chunk, threads);
    }
}

/// The calls a run makes: every phase over all its units, or with `tiling` the shared phases
/// so, then per chunk of samples the per-sample phases over that chunk's units.
pub(crate) fn calls(
    graph: &Graph,
    schedule: &Schedule,
    phases: &[Phase],
    tiling: Option<&SampleTiling>,
) -> Vec<PhaseCall> {
    let whole = |(phase, p): (usize, &Phase)| PhaseCall {
        phase,
        begin: 0,
        end: p.units,
    };
    let Some(t) = tiling else {
        return phases.iter().enumerate().map(whole).collect();
    };
    let (shared, sampled): (Vec<_>, Vec<_>) =
        (phases.iter().enumerate()).partition(|(_, p)| p.kernel < t.first_kernel);
    let mut calls: Vec<PhaseCall> = shared.into_iter().map(whole).collect();
    for first in (0..t.samples).step_by(t.chunk) {
        let stop = (first + t.chunk).min(t.samples);
        for &(phase, p) in &sampled {
            let units = units_per_sample(graph, &schedule.kernels[p.kernel], p, t.samples)
                .expect("invariant: the tiling checked every phase");
            calls.push(PhaseCall {
                phase,
                begin: first * units,
                end: stop * units,
            });
        }
    }
    calls
}

/// The samples of a graph that draws them: dimension 0 of every `sample_steps` dropout's
/// input, if there is one, it is the same for all and above 1.
fn sample_count(graph: &Graph) -> Option<usize> {
    let mut counts = graph.node_ids().filter_map(|id| {
        let op = &graph[id].op;
        let d = op.drawn_dropout().or(op.as_dropout_mask())?;
        d.sample_steps
            .then(|| graph[graph.operands_of(id)[0]].ty.shape.dims()[0])
    });
    let n = counts.next()?;
    (n > 1 && counts.all(|m| m == n)).then_some(n)
}

/// Per kernel: does it run per sample? A kernel holding a `sample_steps` dropout (or mask)
/// does, and so does every kernel reading what one of those computes.
fn per_sample_kernels(graph: &Graph, schedule: &Schedule) -> Vec<bool> {
    let mut computed_per_sample: BTreeSet<NodeId> = BTreeSet::new();
    let mut per_sample = Vec::with_capacity(schedule.kernels.len());
    for kernel in &schedule.kernels {
        let draws = kernel.nodes.iter().any(|&id| {
            let op = &graph[id].op;
            (op.drawn_dropout().or(op.as_dropout_mask())).is_some_and(|d| d.sample_steps)
        });
        // Reshapes alias their operand: reading one reads what its operand's kernel wrote.
        let reads =
            (kernel.inputs.iter()).any(|&id| computed_per_sample.contains(&alias_root(graph, id)));
        let p = draws || reads;
        if p {
            computed_per_sample.extend(kernel.nodes.iter().copied());
        }
        per_sample.push(p);
    }
    per_sample
}

/// The node whose buffer `id` views: itself, or through reshapes their first computed operand.
fn alias_root(graph: &Graph, mut id: NodeId) -> NodeId {
    while matches!(graph[id].op.class(), OpClass::View) {
        id = graph.operands_of(id)[0];
    }
    id
}

/// True if node `id` of a per-sample kernel computes its sample `s` from sample `s` of its
/// operands alone (`chunked` holds every node of a per-sample kernel): its value and every
/// per-sample operand have the samples in dimension 0, where it broadcasts at its own rank
/// (so the dimensions 0 meet), and the op mixes no samples ([`graph::samples::separable`]).
fn separable(graph: &Graph, id: NodeId, samples: usize, chunked: &BTreeSet<NodeId>) -> bool {
    let node = &graph[id];
    let out = &node.ty.shape;
    let leading = |shape: &Shape| shape.dims().first() == Some(&samples);
    let operands = graph.operands_of(id);
    let per_sample = |o: &NodeId| chunked.contains(&alias_root(graph, *o));
    let rank = operands.first().map_or(0, |&o| graph[o].ty.shape.rank());
    let Some(reads) = graph::samples::separable(&node.op, rank) else {
        return false;
    };
    let same_rank = reads == Operands::Broadcast;
    let aligned = operands.iter().filter(|o| per_sample(o)).all(|&o| {
        let shape = &graph[o].ty.shape;
        leading(shape) && (!same_rank || shape.rank() == out.rank())
    });
    let fixed = reads != Operands::FirstOnly || !operands[1..].iter().any(per_sample);
    leading(out) && aligned && fixed
}

/// How many of `phase`'s units each sample has, if its units align with the samples (each
/// unit in one sample, a sample's units consecutive).
fn units_per_sample(
    graph: &Graph,
    kernel: &Kernel,
    phase: &Phase,
    samples: usize,
) -> Option<usize> {
    let out = &graph[kernel.nodes[0]].ty.shape;
    let per_sample_elements = out.numel() / samples;
    match (phase.part, phase.unit) {
        (Part::Draw(id), Unit::MaskGroup) => {
            let d = graph[id].op.drawn_dropout()?;
            let input = &graph[graph.operands_of(id)[0]].ty.shape;
            let mask = d.mask_samples(input).ok()?;
            d.sample_steps.then(|| groups_per_sample(mask))
        }
        (Part::Compute, Unit::ElementBlock) => (per_sample_elements.is_multiple_of(GROUP_SIZE))
            .then_some(per_sample_elements / GROUP_SIZE),
        // Rows, reduction outputs and images are row-major with the samples outermost
        // (dimension 0 of the output, which the separability check required).
        (Part::Compute, Unit::Row | Unit::OutputElement) => phase
            .units
            .is_multiple_of(samples)
            .then_some(phase.units / samples),
        _ => None,
    }
}
