//! The memory plan: which buffer holds each value during a run, as one address-table slot per
//! buffer. Generated code finds every buffer through the table; `run` fills it.
//!
//! Driven by the schedule: a computed value needs memory iff some kernel writes it (it is in a
//! kernel's `outputs`); values kept in registers get no slot. Values that share bytes (a
//! reshape and its operand, an in-place dropout and its input: see [`super::alias`]) share one
//! slot. Each slot's buffer lives in one of:
//! - the caller's input, the parameter store's value, or the constant's own data (leaves);
//! - the caller's output tensor, for a buffer holding a graph output: written there directly,
//!   so it needs no arena space and no copy;
//! - a range of the arena, one allocation per run, for everything else: computed values and
//!   each drawing dropout's keep bytes.
//!
//! Arena buffers are live from the kernel that first writes them to the last kernel that reads
//! them (keep bytes only within their dropout's kernel), and a range is reused once its buffer
//! is dead ([`super::arena`]).

use std::collections::BTreeMap;

use super::alias::{self, Groups, ScheduleIndex};
use super::arena::{self, Request};
use super::schedule::Schedule;
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::lower::{BufferMap, draws_in_loop, dropout_scratch_bytes};

/// Where a slot's buffer lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// The caller's value for the input named like the slot's owner.
    Input,
    /// The parameter store's value named like the slot's owner.
    Parameter,
    /// The owner's constant data.
    Constant,
    /// The run's output tensor with this index.
    Output(usize),
    /// The arena, from this byte offset.
    Arena { offset: usize },
}

/// What a slot's buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Contents {
    /// The values of these nodes, in topological order: a leaf or a computed value first, then
    /// its views and the in-place dropout results written over it.
    Values(Vec<NodeId>),
    /// The keep bytes of this dropout.
    KeepBytes(NodeId),
}

/// One entry of the address table.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    /// What it holds.
    pub contents: Contents,
    /// Where it lives.
    pub home: Home,
    /// Its size in bytes.
    pub bytes: usize,
    /// For arena buffers: the first and last kernel during which it is live.
    pub live: Option<(usize, usize)>,
}

impl Slot {
    /// The node the buffer belongs to: the first value it holds, or the dropout whose keep
    /// bytes it holds.
    pub(crate) fn owner(&self) -> NodeId {
        match &self.contents {
            Contents::Values(values) => values[0],
            Contents::KeepBytes(dropout) => *dropout,
        }
    }
}

/// An input that an in-place dropout overwrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InputWrite {
    /// The input node.
    pub input: NodeId,
    /// The (first) in-place dropout writing over it.
    pub dropout: NodeId,
}

/// The slots of a graph and the arena they need.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Table slot `i` is `slots[i]`.
    pub slots: Vec<Slot>,
    /// The slot of each node's value and each dropout's keep bytes, for lowering.
    pub buffers: BufferMap,
    /// The inputs a run overwrites, in topological order of the input.
    pub written_inputs: Vec<InputWrite>,
    arena_bytes: usize,
}

impl Plan {
    /// The arena size a run allocates, in bytes (a multiple of 16).
    pub(crate) fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// The arena size if no two arena buffers shared bytes.
    pub(crate) fn unshared_bytes(&self) -> usize {
        self.arena_slots().map(|s| arena::aligned(s.bytes)).sum()
    }

    /// The arena buffers, in slot order.
    pub(crate) fn arena_slots(&self) -> impl Iterator<Item = &Slot> {
        (self.slots.iter()).filter(|s| matches!(s.home, Home::Arena { .. }))
    }

    /// The slot of `id`'s value.
    pub(crate) fn slot_of(&self, id: NodeId) -> usize {
        self.buffers.node(id)
    }
}

/// Plans `graph`'s buffers for running `schedule`. Fails with
/// [`crate::Error::InplaceConflict`] for an in-place dropout whose input is read after it.
pub(crate) fn plan(graph: &Graph, schedule: &Schedule) -> Result<Plan> {
    let index = ScheduleIndex::new(graph, schedule);
    let groups = alias::group(graph, &index)?;
    let mut slots: Vec<Slot> = Vec::new();
    let mut buffers = BufferMap::default();
    let mut slot_of_group: BTreeMap<usize, usize> = BTreeMap::new();
    for id in graph.topo_order() {
        if let Some(g) = groups.of(id) {
            let slot = *slot_of_group.entry(g).or_insert_with(|| {
                slots.push(group_slot(graph, &index, &groups, g));
                slots.len() - 1
            });
            buffers.set_node(id, slot);
        }
        // A vector kernel makes its masks in its loop (lower::simd): no keep bytes.
        let scratch = keep_bytes(graph, id)
            .filter(|_| !draws_in_loop(graph, &schedule.kernels[index.kernel(id)], id));
        if let Some(bytes) = scratch {
            let kernel = index.kernel(id);
            buffers.set_scratch(id, slots.len());
            slots.push(Slot {
                contents: Contents::KeepBytes(id),
                home: Home::Arena { offset: 0 },
                bytes,
                live: Some((kernel, kernel)),
            });
        }
    }
    for output in graph.outputs() {
        assert!(
            groups.of(output.node).is_some(),
            "invariant: the schedule materializes every output"
        );
    }
    let arena_bytes = place_arena(&mut slots);
    let written_inputs = written_inputs(graph, &groups);
    Ok(Plan {
        slots,
        buffers,
        written_inputs,
        arena_bytes,
    })
}

/// The inputs that in-place dropouts write over, each with the first dropout doing so.
fn written_inputs(graph: &Graph, groups: &Groups) -> Vec<InputWrite> {
    let mut written: Vec<InputWrite> = Vec::new();
    for id in graph.topo_order() {
        if !matches!(graph.node(id).op, Op::Input(_)) {
            continue;
        }
        let first = (groups.shared.iter()).find(|&&d| {
            let g = groups
                .of(d)
                .expect("invariant: a sharing dropout is in memory");
            groups.members(g)[0] == id
        });
        if let Some(&dropout) = first {
            written.push(InputWrite { input: id, dropout });
        }
    }
    written
}

/// The slot of group `g`: at its leaf, in the first output it holds, or in the arena.
fn group_slot(graph: &Graph, index: &ScheduleIndex, groups: &Groups, g: usize) -> Slot {
    let members = groups.members(g).to_vec();
    let owner = graph.node(members[0]);
    let leaf = match &owner.op {
        Op::Input(_) => Some(Home::Input),
        Op::Parameter(_) => Some(Home::Parameter),
        Op::Constant(_) => Some(Home::Constant),
        Op::Unary(_)
        | Op::Binary(_)
        | Op::MatMul
        | Op::Linear { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Reduce { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::CrossEntropy
        | Op::Dropout(_)
        | Op::DropoutGrad(_)
        | Op::Expand { .. }
        | Op::CrossEntropyGrad
        | Op::DropoutMask(_) => None,
    };
    let output = (graph.outputs().iter()).position(|o| members.contains(&o.node));
    let (home, live) = match (leaf, output) {
        (Some(home), _) => (home, None),
        (None, Some(k)) => (Home::Output(k), None),
        (None, None) => (
            Home::Arena { offset: 0 },
            Some(live_range(graph, index, groups, g)),
        ),
    };
    Slot {
        bytes: owner.ty.bytes(),
        contents: Contents::Values(members),
        home,
        live,
    }
}

/// The kernels during which group `g`'s buffer is live: from the first that writes one of its
/// values to the last that writes or reads one.
fn live_range(graph: &Graph, index: &ScheduleIndex, groups: &Groups, g: usize) -> (usize, usize) {
    let writers = (groups.members(g).iter())
        .filter(|&&id| !matches!(graph.node(id).op, Op::Reshape { .. }))
        .map(|&id| index.kernel(id));
    let first = writers
        .clone()
        .min()
        .expect("invariant: a computed group has a writer");
    let readers = (groups.readers(graph, g).into_iter()).map(|id| index.kernel(id));
    let last = writers.chain(readers).max().unwrap_or(first);
    (first, last)
}

/// The keep-byte buffer size of a dropout (or dropout gradient) that draws a mask.
fn keep_bytes(graph: &Graph, id: NodeId) -> Option<usize> {
    let d = graph.node(id).op.drawn_dropout()?;
    if !(d.p > 0.0 && d.p < 1.0) {
        return None;
    }
    let input = &graph.node(graph.operands(id)[0]).ty.shape;
    let mask = d
        .mask_shape(input)
        .expect("invariant: the node's type was inferred");
    Some(dropout_scratch_bytes(&mask))
}

/// Gives every arena slot its offset; returns the arena size.
fn place_arena(slots: &mut [Slot]) -> usize {
    let in_arena: Vec<usize> = (0..slots.len())
        .filter(|&i| matches!(slots[i].home, Home::Arena { .. }))
        .collect();
    let requests: Vec<Request> = (in_arena.iter())
        .map(|&i| {
            let (first, last) = slots[i]
                .live
                .expect("invariant: arena slots have a live range");
            Request {
                bytes: slots[i].bytes,
                first,
                last,
            }
        })
        .collect();
    let (offsets, arena_bytes) = arena::place(&requests);
    for (&i, offset) in in_arena.iter().zip(offsets) {
        slots[i].home = Home::Arena { offset };
    }
    arena_bytes
}
