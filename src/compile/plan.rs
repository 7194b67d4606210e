//! The buffer plan: where each node's value lives during a run, as one table slot per node
//! (plus one per drawing dropout for its keep bytes). Generated code finds every buffer
//! through the table; `run` fills it.
//!
//! Every materialized node ([`Schedule::materialized`]) gets its own buffer: inputs and
//! parameters point at the caller's data, constants at the compiled graph's own copy, a reshape
//! at its operand's buffer, and every computed value (and dropout scratch) at its own range of
//! one arena allocated per run. Values that stay in a fused loop's registers get none. Memory
//! reuse comes later.

use super::Schedule;
use crate::graph::{Graph, NodeId, Op};
use crate::lower::{BufferMap, dropout_scratch_bytes};

/// Arena ranges start at multiples of this many bytes from the arena's start.
const ARENA_ALIGN: usize = 16;

/// Where one slot's buffer lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    /// The caller's value for the input named like the node.
    Input,
    /// The parameter store's value named like the node.
    Parameter,
    /// The constant node's data.
    Constant,
    /// The buffer of an earlier slot, under this node's shape (reshape).
    Alias(usize),
    /// The node's own value: `bytes` bytes at byte `offset` of the arena, or written straight
    /// into an output tensor when the node is an output.
    Value { offset: usize, bytes: usize },
    /// A dropout's keep bytes at byte `offset` of the arena.
    Scratch { offset: usize },
}

/// One entry of the address table.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    /// The node the buffer belongs to.
    pub node: NodeId,
    /// Where it lives.
    pub storage: Storage,
}

/// The slots of a graph and the arena size they need.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Table slot `i` is `slots[i]`.
    pub slots: Vec<Slot>,
    /// The same, by node, for lowering.
    pub buffers: BufferMap,
    /// Arena size in 4-byte words.
    pub arena_words: usize,
    /// By slot: the output a computed value is written to directly (the first output naming
    /// its node); other outputs are copied after the run.
    pub direct: Vec<Option<usize>>,
}

impl Plan {
    /// The slot of `id`'s value.
    pub(crate) fn slot_of(&self, id: NodeId) -> usize {
        self.buffers.node(id)
    }

    /// Follows aliases to the slot that owns the buffer.
    pub(crate) fn root(&self, mut slot: usize) -> usize {
        while let Storage::Alias(target) = self.slots[slot].storage {
            slot = target;
        }
        slot
    }
}

/// Assigns every node of `graph` that `schedule` materializes (in topological order) its
/// slot, and every drawing dropout its scratch slot.
pub(crate) fn plan(graph: &Graph, schedule: &Schedule) -> Plan {
    let materialized = schedule.materialized(graph);
    let mut slots: Vec<Slot> = Vec::new();
    let mut buffers = BufferMap::default();
    let mut arena = 0usize;
    let mut reserve = |bytes: usize| {
        let offset = arena;
        arena += bytes.div_ceil(ARENA_ALIGN) * ARENA_ALIGN;
        offset
    };
    for id in graph.topo_order() {
        let node = graph.node(id);
        // Fusion: a value held in a fused loop's registers needs no buffer.
        if materialized.contains(&id) {
            let bytes = node.ty.bytes();
            let storage = match &node.op {
                Op::Input(_) => Storage::Input,
                Op::Parameter(_) => Storage::Parameter,
                Op::Constant(_) => Storage::Constant,
                Op::Reshape { .. } => {
                    let operand = graph.operands(id)[0];
                    // Operands come first in topological order, so theirs is set.
                    Storage::Alias(buffers.node(operand))
                }
                Op::Unary(_)
                | Op::Binary(_)
                | Op::MatMul
                | Op::Linear { .. }
                | Op::Transpose { .. }
                | Op::Reduce { .. }
                | Op::Softmax { .. }
                | Op::LogSoftmax { .. }
                | Op::CrossEntropy
                | Op::Dropout(_) => Storage::Value {
                    offset: reserve(bytes),
                    bytes,
                },
            };
            buffers.set_node(id, slots.len());
            slots.push(Slot { node: id, storage });
        }
        if let Some(d) = node.op.as_dropout()
            && d.p > 0.0
            && d.p < 1.0
        {
            let input = &graph.node(graph.operands(id)[0]).ty.shape;
            let mask = d
                .mask_shape(input)
                .expect("invariant: the node's type was inferred");
            let offset = reserve(dropout_scratch_bytes(&mask));
            buffers.set_scratch(id, slots.len());
            slots.push(Slot {
                node: id,
                storage: Storage::Scratch { offset },
            });
        }
    }
    let mut direct = vec![None; slots.len()];
    for (index, output) in graph.outputs().iter().enumerate() {
        let slot = buffers.node(output.node);
        if matches!(slots[slot].storage, Storage::Value { .. }) && direct[slot].is_none() {
            direct[slot] = Some(index);
        }
    }
    Plan {
        slots,
        buffers,
        arena_words: arena / 4,
        direct,
    }
}
