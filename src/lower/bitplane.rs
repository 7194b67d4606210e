//! The keep bits of one mask group under RNG contract v1 ([`crate::rng::mask`]), decided
//! plane by plane with an early exit, as one `i32x4`: bit `v` of lane `w` keeps mask lane
//! `4v + w`, which is exactly how a Philox block's four words lay out a plane.
//!
//! Element `j` is kept iff `U(j) < Q`, and `U`'s bits come one plane at a time, most
//! significant first. At plane `k`, with `Q`'s bit `q_k` (all ones or zeros across the
//! vector): the open lanes whose bit is below `q_k` are kept, those whose bit differs
//! otherwise are dropped, and lanes whose bit equals `q_k` stay open:
//! ```text
//! keep |= open & ~B & q_k;    open &= ~(B ^ q_k)
//! ```
//! The loop stops when no lane is open (`vany_true`, one `ptest`) or after `Q`'s last 1 bit
//! (the lanes still open then have `U >= Q`: dropped). Same answers as comparing all 32 bits,
//! but `p = 0.5` (`Q = 2^31`) needs exactly one plane and a general `p` about 8 per group of
//! 128, instead of 32.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{LowerCx, philox};
use crate::graph::Dropout;
use crate::rng::mask::keep_threshold;

/// What drawing one dropout's keep vectors needs, set up once at the kernel's start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planes {
    /// The keep threshold `Q` (`0 ..= 2^32`).
    q: u64,
    key: [Value; 2],
    stream: Value,
    step: Value,
}

impl Planes {
    /// The key, stream and step of `d`'s masks in this run.
    pub(crate) fn start(cx: &mut LowerCx, d: &Dropout) -> Planes {
        let (seed, step) = cx.seed_and_step();
        let seed_high = cx.b.ins().ushr_imm_u(seed, 32);
        let key = [
            cx.b.ins().ireduce(types::I32, seed),
            cx.b.ins().ireduce(types::I32, seed_high),
        ];
        let stream = cx.b.ins().iconst(types::I32, i64::from(d.stream));
        Planes {
            q: keep_threshold(d.p),
            key,
            stream,
            step,
        }
    }

    /// The keep bits (i32x4, see the module docs) of mask group `g` (pointer-sized).
    pub(crate) fn keep(&self, cx: &mut LowerCx, g: Value) -> Value {
        if self.q >= 1 << 32 {
            return splat_i32(cx, -1);
        }
        if self.q == 0 {
            return splat_i32(cx, 0);
        }
        let q = self.q as u32;
        let planes = 32 - q.trailing_zeros();
        if planes == 1 {
            // Q = 2^31: plane 0 decides every lane; a 0 bit keeps.
            let zero = cx.b.ins().iconst(types::I32, 0);
            let bits = self.plane(cx, g, zero);
            return cx.b.ins().bnot(bits);
        }
        let body = cx.b.create_block();
        let k = cx.b.append_block_param(body, types::I32);
        let open = cx.b.append_block_param(body, types::I32X4);
        let keep = cx.b.append_block_param(body, types::I32X4);
        let exit = cx.b.create_block();
        let kept = cx.b.append_block_param(exit, types::I32X4);
        let (zero, all, none) = (
            cx.b.ins().iconst(types::I32, 0),
            splat_i32(cx, -1),
            splat_i32(cx, 0),
        );
        cx.b.ins()
            .jump(body, &[zero.into(), all.into(), none.into()]);

        cx.b.switch_to_block(body);
        let bits = self.plane(cx, g, k);
        // q_k: bit 31 - k of Q, spread over all 128 bits.
        let q_value = cx.b.ins().iconst(types::I32, i64::from(q as i32));
        let shifted = cx.b.ins().ishl(q_value, k);
        let q_bit = cx.b.ins().sshr_imm_u(shifted, 31);
        let q_bit = cx.b.ins().splat(types::I32X4, q_bit);
        let below = cx.b.ins().band_not(open, bits);
        let newly = cx.b.ins().band(below, q_bit);
        let keep_next = cx.b.ins().bor(keep, newly);
        let differ = cx.b.ins().bxor(bits, q_bit);
        let open_next = cx.b.ins().band_not(open, differ);
        let k_next = cx.b.ins().iadd_imm_u(k, 1);
        let planes_left =
            (cx.b.ins()).icmp_imm_u(IntCC::UnsignedLessThan, k_next, i64::from(planes));
        let any_open = cx.b.ins().vany_true(open_next);
        let more = cx.b.ins().band(planes_left, any_open);
        let again = [k_next.into(), open_next.into(), keep_next.into()];
        cx.b.ins()
            .brif(more, body, &again, exit, &[keep_next.into()]);
        cx.b.seal_block(body);

        cx.b.switch_to_block(exit);
        cx.b.seal_block(exit);
        kept
    }

    /// Plane `k` (i32) of group `g`: one Philox block, its four words as one i32x4.
    fn plane(&self, cx: &mut LowerCx, g: Value, k: Value) -> Value {
        let group_high = cx.b.ins().ushr_imm_u(g, 32);
        let group_high = cx.b.ins().ireduce(types::I32, group_high);
        let group_low = cx.b.ins().ireduce(types::I32, g);
        let plane_bits = cx.b.ins().ishl_imm_u(k, 27);
        let c1 = cx.b.ins().bor(group_high, plane_bits);
        let counter = [group_low, c1, self.stream, self.step];
        let words = philox::emit_philox4x32_10(&mut cx.b, counter, self.key);
        let mut vector = cx.b.ins().scalar_to_vector(types::I32X4, words[0]);
        for (lane, &word) in (1u8..).zip(&words[1..]) {
            vector = cx.b.ins().insertlane(vector, word, lane);
        }
        vector
    }
}

/// An i32x4 with every lane `value`.
pub(crate) fn splat_i32(cx: &mut LowerCx, value: i64) -> Value {
    let lane = cx.b.ins().iconst(types::I32, value);
    cx.b.ins().splat(types::I32X4, lane)
}
