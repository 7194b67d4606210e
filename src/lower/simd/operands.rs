//! How the vector loop of [`super`] reads an operand from outside its kernel: element for
//! element, one element splatted, or a row of the loop shape's trailing dimensions (a bias),
//! whose vectors are a run within a group when its period is a multiple of the group's size
//! and otherwise follow an index that wraps at the end of the row.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::vector_flags;
use crate::lower::LowerCx;
use crate::plan::Read;
use crate::rng::mask::GROUP_SIZE;

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
    /// The operand at `addr`, read as `read` says; a one-element operand is loaded here,
    /// before the loop, as a lane and as four.
    pub(super) fn new(cx: &mut LowerCx, read: Read, addr: Value) -> Operand {
        match read {
            Read::Full => Operand::Full(addr),
            Read::Splat => {
                let zero = cx.index(0);
                let lane = cx.load(types::F32, addr, zero);
                Operand::Splat(lane, cx.b.ins().splat(types::F32X4, lane))
            }
            Read::Row { period } => Operand::Row(addr, period),
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
