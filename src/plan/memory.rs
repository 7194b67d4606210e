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
use super::phase::{Part, Phase};
use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::graph::{Graph, Leaf, NodeId, OpClass};
use crate::rng::mask::{GROUP_SIZE, drawn_groups};

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
    /// The im2col columns of this convolution, one block per image.
    Columns(NodeId),
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
            Contents::KeepBytes(dropout) | Contents::Columns(dropout) => *dropout,
        }
    }
}

/// Which table slot holds each node's buffer address (and each dropout's keep-byte scratch,
/// each convolution's im2col columns).
#[derive(Clone, Debug, Default)]
pub(crate) struct BufferMap {
    nodes: Vec<Option<usize>>,
    scratch: Vec<Option<usize>>,
}

impl BufferMap {
    /// Records that `id`'s buffer address is in table slot `slot`.
    fn set_node(&mut self, id: NodeId, slot: usize) {
        set(&mut self.nodes, id, slot);
    }

    /// Records that the dropout `id`'s keep bytes are in table slot `slot`.
    fn set_scratch(&mut self, id: NodeId, slot: usize) {
        set(&mut self.scratch, id, slot);
    }

    /// The slot of `id`'s buffer.
    pub(crate) fn slot(&self, id: NodeId) -> usize {
        self.nodes
            .get(id.index())
            .copied()
            .flatten()
            .expect("invariant: every node has a slot")
    }

    /// The slot of the dropout `id`'s keep bytes.
    pub(crate) fn scratch(&self, id: NodeId) -> usize {
        let slot = self.scratch.get(id.index()).copied().flatten();
        slot.expect("invariant: every dropout drawing before its loop and every convolution has a scratch slot")
    }
}

fn set(map: &mut Vec<Option<usize>>, id: NodeId, slot: usize) {
    if map.len() <= id.index() {
        map.resize(id.index() + 1, None);
    }
    map[id.index()] = Some(slot);
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
pub(crate) struct MemoryPlan {
    /// Table slot `i` is `slots[i]`.
    pub slots: Vec<Slot>,
    /// The slot of each node's value and each dropout's keep bytes, for lowering.
    pub buffers: BufferMap,
    /// The inputs a run overwrites, in topological order of the input.
    pub written_inputs: Vec<InputWrite>,
    arena_bytes: usize,
}

impl MemoryPlan {
    /// The arena size a run allocates, in bytes (a multiple of 16).
    pub(crate) fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// The arena size if no two arena buffers shared bytes.
    pub(crate) fn unshared_bytes(&self) -> usize {
        // A sum for the record only: it may exceed what the arena, which reuses, can hold.
        (self.arena_slots()).fold(0, |sum, s| sum.saturating_add(arena::aligned(s.bytes)))
    }

    /// The arena buffers, in slot order.
    pub(crate) fn arena_slots(&self) -> impl Iterator<Item = &Slot> {
        (self.slots.iter()).filter(|s| matches!(s.home, Home::Arena { .. }))
    }

    /// The slot of `id`'s value.
    pub(crate) fn slot_of(&self, id: NodeId) -> usize {
        self.buffers.slot(id)
    }
}

/// Plans `graph`'s buffers for running `schedule` in `phases`, whose kernels from
/// `loop_from` on (if given) run again for each chunk of samples ([`super::samples`]): every
/// buffer live in that loop stays live to its end. A convolution's columns are one block per
/// chunk of its phase (a chunk's images take turns in it). Fails with [`Error::ArenaTooLarge`] if the values live
/// at once need more memory than one allocation can hold.
pub(crate) fn plan(
    graph: &Graph,
    schedule: &Schedule,
    phases: &[Phase],
    loop_from: Option<usize>,
) -> Result<MemoryPlan> {
    let index = ScheduleIndex::new(graph, schedule);
    let groups = alias::group(graph, &index);
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
        let scratch = (keep_bytes(graph, schedule, &index, id)
            .map(|b| (b, Contents::KeepBytes(id))))
        .or_else(|| {
            let chunks = || {
                let kernel = index.kernel(id);
                (phases.iter())
                    .filter(|p| p.kernel == kernel && p.part == Part::Compute)
                    .map(Phase::chunks)
                    .max()
                    .unwrap_or(1)
            };
            column_bytes(graph, id, chunks).map(|b| (b, Contents::Columns(id)))
        });
        if let Some((bytes, contents)) = scratch {
            let kernel = index.kernel(id);
            buffers.set_scratch(id, slots.len());
            slots.push(Slot {
                contents,
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
    if let Some(first) = loop_from {
        let last = schedule.kernels.len().saturating_sub(1);
        for live in slots.iter_mut().filter_map(|slot| slot.live.as_mut()) {
            if live.1 >= first {
                *live = (live.0.min(first), last);
            }
        }
    }
    let arena_bytes = place_arena(&mut slots).ok_or_else(|| Error::ArenaTooLarge {
        graph: graph.name().to_string(),
    })?;
    let written_inputs = written_inputs(graph, &groups);
    Ok(MemoryPlan {
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
        if graph[id].op.leaf() != Some(Leaf::Input) {
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
    let owner = &graph[members[0]];
    let leaf = owner.op.leaf().map(|leaf| match leaf {
        Leaf::Input => Home::Input,
        Leaf::Parameter => Home::Parameter,
        Leaf::Constant => Home::Constant,
    });
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
        .filter(|&&id| graph[id].op.class() != OpClass::View)
        .map(|&id| index.kernel(id));
    let first = writers
        .clone()
        .min()
        .expect("invariant: a computed group has a writer");
    let readers = (groups.readers(graph, g).into_iter()).map(|id| index.kernel(id));
    let last = writers.chain(readers).max().unwrap_or(first);
    (first, last)
}

/// The keep-byte buffer of `id`, if it is a dropout (or dropout gradient) that draws its mask
/// in a phase before its kernel's loop: its size in bytes. A vector kernel makes the masks of
/// its non-broadcast dropouts in its loop ([`super::vector`]): they need none.
fn keep_bytes(
    graph: &Graph,
    schedule: &Schedule,
    index: &ScheduleIndex,
    id: NodeId,
) -> Option<usize> {
    let d = graph[id].op.drawn_dropout().filter(|d| d.is_random())?;
    let kernel = &schedule.kernels[index.kernel(id)];
    let member =
        (kernel.nodes.iter().position(|&n| n == id)).expect("invariant: a node's kernel holds it");
    if kernel.form.draws_in_loop(member) {
        return None;
    }
    // Whole groups, so a draw phase always writes in bounds. With a sample per group the
    // bytes may pass any arena: saturated, the arena's checked placement refuses them.
    let input = &graph[graph.operands_of(id)[0]].ty.shape;
    Some(drawn_groups(d, input).saturating_mul(GROUP_SIZE))
}

/// Bytes of the im2col columns of the convolution `id` whose phase runs in `chunks` chunks:
/// per chunk one image's `C * prod(kernel)` rows of its output positions (every group's rows,
/// group after group), which the chunk's images take in turn, so chunks running at once never
/// share a column (the weight gradient, one call, has one block and the product it adds).
/// Saturated: the arena's checked placement refuses too many.
fn column_bytes(graph: &Graph, id: NodeId, chunks: impl Fn() -> usize) -> Option<usize> {
    let operands = graph.operands_of(id);
    let shape = |i: usize| &graph[operands[i]].ty.shape;
    let out = &graph[id].ty.shape;
    let (x, w, g, images, partial) = match graph[id].op.class() {
        OpClass::Convolution => (shape(0), shape(1), out, chunks(), 0),
        // One image's columns at a time, and a product per group to add: the weight's size.
        OpClass::ConvolutionWeightGrad => (shape(1), out, shape(0), 1, out.numel()),
        // An image's columns of the input gradient, before col2im.
        OpClass::ConvolutionInputGrad => (out, shape(1), shape(0), chunks(), 0),
        _ => return None,
    };
    let spatial = w.rank() - 2;
    let in_channels = x.dims()[x.rank() - spatial - 1];
    let taps: usize = w.dims()[2..].iter().product();
    let positions: usize = g.dims()[g.rank() - spatial..].iter().product();
    let columns = [images, in_channels, taps, positions]
        .into_iter()
        .fold(1usize, usize::saturating_mul);
    Some(columns.saturating_add(partial).saturating_mul(4))
}

/// Gives every arena slot its offset; returns the arena size, or `None` if no allocation
/// could hold it.
fn place_arena(slots: &mut [Slot]) -> Option<usize> {
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
    let (offsets, arena_bytes) = arena::place(&requests)?;
    for (&i, offset) in in_arena.iter().zip(offsets) {
        slots[i].home = Home::Arena { offset };
    }
    Some(arena_bytes)
}
