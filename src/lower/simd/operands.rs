//! How the vector loop of [`super`] reads an operand from outside its kernel: element for
//! element, one element splatted, or a row of the loop shape's trailing dimensions (a bias),
//! whose vectors are a run within a group when its period is a multiple of the group's size
//! and otherwise follow an index that wraps at the end of the row.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::vector_flags;
use crate::compile::schedule::Kernel;
use crate::graph::{Graph, NodeId};
use crate::lower::LowerCx;
use crate::rng::mask::GROUP_SIZE;

/// How the vector loop reads an operand from outside its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// The loop's shape: element for element.
    Full,
    /// One element (a scalar such as an optimizer's learning rate, broadcast to every
    /// element): loaded once and splatted.
    Splat,
    /// The loop shape's trailing dimensions, `period` elements (a multiple of 4): element `e`
    /// reads element `e % period`.
    Row { period: usize },
}

/// How `kernel`'s vector loop reads its external operand `id`, if it can.
pub(super) fn external_read(graph: &Graph, kernel: &Kernel, id: NodeId) -> Option<Read> {
    if kernel.nodes.contains(&id) {
        return None;
    }
    let loop_shape = &graph.node(kernel.nodes[0]).ty.shape;
    let shape = &graph.node(id).ty.shape;
    if shape == loop_shape {
        return Some(Read::Full);
    }
    if shape.numel() == 1 {
        return Some(Read::Splat);
    }
    // Leading ones aside, the operand's dimensions are the loop's last ones.
    let dims = shape.dims();
    let own = &dims[dims.iter().take_while(|&&d| d == 1).count()..];
    let trailing = loop_shape.dims().ends_with(own);
    let period: usize = own.iter().product();
    (trailing && period.is_multiple_of(4)).then_some(Read::Row { period })
}

/// An external operand of the vector loop, as the loop reads it ([`Read`]).
#[derive(Clone, Copy)]
pub(super) enum Operand {
    /// Its buffer's address.
    Full(Value),
    /// Its value as one lane and as four.
    Splat(Value, Value),
    /// Its buffer's address and its period.
    Row(Value, usize),
}

/// Where one group's vectors of an external operand are.
#[derive(Clone, Copy)]
pub(super) enum Cursor {
    /// Vector `v` at byte offset `16 v` from this address.
    Run(Value),
    /// The four lanes, for every vector.
    Splat(Value),
    /// A row crossed within the group: the next vector at element `index` of `addr`, which
    /// wraps to 0 at `period`.
    Wrapping {
        addr: Value,
        index: Value,
        period: usize,
    },
}

impl Operand {
    /// How the vector loop of `kernel` reads its external `id`, at `addr`; a one-element
    /// operand is loaded here, before the loop, as a lane and as four.
    pub(super) fn new(
        cx: &mut LowerCx,
        graph: &Graph,
        kernel: &Kernel,
        id: NodeId,
        addr: Value,
    ) -> Operand {
        match external_read(graph, kernel, id) {
            Some(Read::Full) => Operand::Full(addr),
            Some(Read::Splat) => {
                let zero = cx.index(0);
                let lane = cx.load(types::F32, addr, zero);
                Operand::Splat(lane, cx.b.ins().splat(types::F32X4, lane))
            }
            Some(Read::Row { period }) => Operand::Row(addr, period),
            None => panic!("invariant: a vector kernel's operands have a vector read"),
        }
    }

    /// The operand's value for element `j` (pointer-sized), one lane.
    pub(super) fn lane(self, cx: &mut LowerCx, j: Value) -> Value {
        match self {
            Operand::Full(addr) => cx.load(types::F32, addr, j),
            Operand::Splat(lane, _) => lane,
            Operand::Row(addr, period) => {
                let index = cx.b.ins().urem_imm_u(j, period as i64);
                cx.load(types::F32, addr, index)
            }
        }
    }

    /// Where group `g`'s vectors of the operand are; `bytes` is the group's first element's
    /// byte offset. A row whose period is a multiple of the group's size is not crossed
    /// within the group, so its vectors are a run like a full operand's.
    pub(super) fn cursor(self, cx: &mut LowerCx, g: Value, bytes: Value) -> Cursor {
        match self {
            Operand::Full(addr) => Cursor::Run(cx.b.ins().iadd(addr, bytes)),
            Operand::Splat(_, four) => Cursor::Splat(four),
            Operand::Row(addr, period) => {
                let first = cx.b.ins().imul_imm_u(g, GROUP_SIZE as i64);
                let index = cx.b.ins().urem_imm_u(first, period as i64);
                if period.is_multiple_of(GROUP_SIZE) {
                    Cursor::Run(cx.element_addr(addr, index, 4))
                } else {
                    Cursor::Wrapping {
                        addr,
                        index,
                        period,
                    }
                }
            }
        }
    }
}

impl Cursor {
    /// The group's next vector, vector `offset / 16` (in order: a wrapping row counts them).
    pub(super) fn next_vector(&mut self, cx: &mut LowerCx, offset: i32) -> Value {
        match self {
            Cursor::Run(addr) => cx.b.ins().load(types::F32X4, vector_flags(), *addr, offset),
            Cursor::Splat(four) => *four,
            Cursor::Wrapping {
                addr,
                index,
                period,
            } => {
                let at = cx.element_addr(*addr, *index, 4);
                let x = cx.b.ins().load(types::F32X4, vector_flags(), at, 0);
                // index + 4, or 0 at the end of the row (index + 4 <= period, both multiples of 4)
                let next = cx.b.ins().iadd_imm_u(*index, 4);
                let end = cx.b.ins().icmp_imm_u(IntCC::Equal, next, *period as i64);
                let zero = cx.index(0);
                *index = cx.b.ins().select(end, zero, next);
                x
            }
        }
    }
}
