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
use cranelift_codegen::ir::{Block, InstBuilder, Value, types};

use super::{LowerCx, philox};
use crate::graph::Dropout;
use crate::rng::mask::keep_threshold;

/// Planes above which [`Planes::keep`] makes four planes per Philox call: few significant
/// bits of `Q` (like `p = 0.25`) end sooner one plane at a time.
const SCALAR_PLANES: u32 = 2;

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
        if planes > SCALAR_PLANES {
            return self.keep_by_quads(cx, g, q, planes);
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
        let (open_next, keep_next) = decide(cx, open, keep, bits, q_bit);
        let k_next = cx.b.ins().iadd_imm_u(k, 1);
        next_planes(cx, [body, exit], k_next, planes, open_next, keep_next);
        kept
    }

    /// [`Planes::keep`] four planes at a time: one four-lane Philox makes planes `k..k + 4`
    /// (one per lane), a 4x4 transpose turns them into four plane vectors, and the early
    /// exit is tested once per four planes. Planes past `Q`'s last 1 bit change nothing
    /// (`q_k = 0` keeps no lane), so the last quad may overshoot.
    fn keep_by_quads(&self, cx: &mut LowerCx, g: Value, q: u32, planes: u32) -> Value {
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
        // The counter words every quad shares, and the plane offsets of its four lanes.
        let group_high = cx.b.ins().ushr_imm_u(g, 32);
        let group_high = cx.b.ins().ireduce(types::I32, group_high);
        let group_low = cx.b.ins().ireduce(types::I32, g);
        let c0 = cx.b.ins().splat(types::I32X4, group_low);
        let c2 = cx.b.ins().splat(types::I32X4, self.stream);
        let c3 = cx.b.ins().splat(types::I32X4, self.step);
        cx.b.ins()
            .jump(body, &[zero.into(), all.into(), none.into()]);

        cx.b.switch_to_block(body);
        let base = cx.b.ins().ishl_imm_u(k, 27);
        let base = cx.b.ins().bor(group_high, base);
        let mut c1 = cx.b.ins().scalar_to_vector(types::I32X4, base);
        for lane in 1u8..4 {
            let word = cx.b.ins().iadd_imm_u(base, i64::from(lane) << 27);
            c1 = cx.b.ins().insertlane(c1, word, lane);
        }
        let words = philox::emit_philox4x32_10_x4(&mut cx.b, [c0, c1, c2, c3], self.key);
        let planes_of = transpose(cx, words);
        let q_value = cx.b.ins().iconst(types::I32, i64::from(q as i32));
        let q_shifted = cx.b.ins().ishl(q_value, k);
        let (mut open_now, mut keep_now) = (open, keep);
        for (i, bits) in (0i64..).zip(planes_of) {
            let moved = cx.b.ins().ishl_imm_u(q_shifted, i);
            let q_bit = cx.b.ins().sshr_imm_u(moved, 31);
            let q_bit = cx.b.ins().splat(types::I32X4, q_bit);
            (open_now, keep_now) = decide(cx, open_now, keep_now, bits, q_bit);
        }
        let k_next = cx.b.ins().iadd_imm_u(k, 4);
        next_planes(cx, [body, exit], k_next, planes, open_now, keep_now);
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

/// Turns four Philox outputs of four lanes (word `w` of plane `i` in lane `i` of `words[w]`)
/// into four planes (plane `i`'s words in lanes 0..4): a 4x4 transpose of 32-bit words.
fn transpose(cx: &mut LowerCx, words: [Value; 4]) -> [Value; 4] {
    let [a, b, c, d] = words;
    let shuffle =
        |cx: &mut LowerCx, x, y, lanes| philox::emit_shuffle_words(&mut cx.b, x, y, lanes);
    let ab_low = shuffle(cx, a, b, [0, 4, 1, 5]);
    let ab_high = shuffle(cx, a, b, [2, 6, 3, 7]);
    let cd_low = shuffle(cx, c, d, [0, 4, 1, 5]);
    let cd_high = shuffle(cx, c, d, [2, 6, 3, 7]);
    [
        shuffle(cx, ab_low, cd_low, [0, 1, 4, 5]),
        shuffle(cx, ab_low, cd_low, [2, 3, 6, 7]),
        shuffle(cx, ab_high, cd_high, [0, 1, 4, 5]),
        shuffle(cx, ab_high, cd_high, [2, 3, 6, 7]),
    ]
}

/// An i32x4 with every lane `value`.
pub(crate) fn splat_i32(cx: &mut LowerCx, value: i64) -> Value {
    let lane = cx.b.ins().iconst(types::I32, value);
    cx.b.ins().splat(types::I32X4, lane)
}

/// One plane's decision for the lanes still `open` (their bits so far equal `Q`'s): a 0 bit
/// where `Q` has 1 (`q_bit` all ones) keeps, and any bit that differs from `Q`'s closes the lane.
/// Returns the new `(open, keep)`.
fn decide(cx: &mut LowerCx, open: Value, keep: Value, bits: Value, q_bit: Value) -> (Value, Value) {
    let below = cx.b.ins().band_not(open, bits);
    let newly = cx.b.ins().band(below, q_bit);
    let keep = cx.b.ins().bor(keep, newly);
    let differ = cx.b.ins().bxor(bits, q_bit);
    let open = cx.b.ins().band_not(open, differ);
    (open, keep)
}

/// The latch of a plane loop: back to `body` with plane `k_next` while planes are left and a
/// lane is open (the early exit), else on to `exit` with the keep bits; then continues in `exit`.
fn next_planes(
    cx: &mut LowerCx,
    [body, exit]: [Block; 2],
    k_next: Value,
    planes: u32,
    open: Value,
    keep: Value,
) {
    let planes_left = (cx.b.ins()).icmp_imm_u(IntCC::UnsignedLessThan, k_next, i64::from(planes));
    let any_open = cx.b.ins().vany_true(open);
    let more = cx.b.ins().band(planes_left, any_open);
    let again = [k_next.into(), open.into(), keep.into()];
    cx.b.ins().brif(more, body, &again, exit, &[keep.into()]);
    cx.b.seal_block(body);
    cx.b.switch_to_block(exit);
    cx.b.seal_block(exit);
}
