//! Philox4x32-10 and RNG contract v1 ([`crate::rng::mask`]) emitted as Cranelift IR, so that
//! compiled dropout masks agree bit for bit with the interpreter's.
//!
//! A mask group's 128 uniforms are built in two steps:
//! 1. a loop over the 32 bit planes runs one Philox block per plane and stores its four words
//!    as one 16-byte row of the output (plane `k` in row `31 - k`);
//! 2. an in-place bit transpose turns those rows into the uniforms.
//!
//! Why a transpose: for word `w`, lane `4v + w` takes bit `v` of plane `k`'s word as its bit
//! `31 - k`, so the 32 words `w` of the 32 planes form a 32x32 bit matrix whose transpose is
//! exactly the 32 uniforms of lanes `w, w + 4, ..`. The four words of a plane are four such
//! matrices side by side, so one i32x4 row op transposes all four at once: 5 stages of 16 row
//! pairs, 480 vector ops per group, where spreading plane by plane costs 1024 vector
//! read-modify-writes. Measured on x64 (one core), the group costs little more than its 32
//! Philox blocks: about twice the rate of plane-by-plane i32x4 spreading, four times scalar.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};
use cranelift_frontend::FunctionBuilder;

use crate::rng::mask::{GROUP_SIZE, PLANES};
use crate::rng::philox::{M0, M1, W0, W1};

/// Bytes in one row of the transpose: the four u32 words of one plane.
const ROW_BYTES: i32 = 16;

/// The rows of a group: one per plane.
const ROWS: usize = PLANES as usize;

// The transpose fills a group's 128 lanes with exactly 32 rows of 4.
const _: () = assert!(GROUP_SIZE == ROWS * 4);

/// The stages of a 32x32 bit transpose: each swaps the `shift`-bit blocks that `mask` (the low
/// half of every `2 * shift`-bit field) selects between rows `r` and `r + shift`.
const TRANSPOSE_STAGES: [(i64, i64); 5] = [
    (16, 0x0000_FFFF),
    (8, 0x00FF_00FF),
    (4, 0x0F0F_0F0F),
    (2, 0x3333_3333),
    (1, 0x5555_5555),
];

/// Emits Philox4x32-10 on four i32 counter words and two i32 key words; returns four i32 words,
/// equal to [`crate::rng::philox4x32_10`] of the same inputs.
///
/// Straight-line code: 10 rounds unrolled, the key bumped by the Weyl constants between rounds.
pub fn emit_philox4x32_10(
    b: &mut FunctionBuilder,
    counter: [Value; 4],
    key: [Value; 2],
) -> [Value; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = b.ins().iadd_imm_u(k0, i64::from(W0));
            k1 = b.ins().iadd_imm_u(k1, i64::from(W1));
        }
        let (hi0, lo0) = emit_mulhilo(b, M0, c0);
        let (hi1, lo1) = emit_mulhilo(b, M1, c2);
        let x0 = b.ins().bxor(hi1, c1);
        let x2 = b.ins().bxor(hi0, c3);
        (c0, c1, c2, c3) = (b.ins().bxor(x0, k0), lo1, b.ins().bxor(x2, k1), lo0);
    }
    [c0, c1, c2, c3]
}

/// The high and low 32 bits of `m * x` for an i32 `x`: one 64-bit multiply, which x64 and
/// aarch64 both do in one instruction (a 32-bit `umulhi` would need a second multiply).
fn emit_mulhilo(b: &mut FunctionBuilder, m: u32, x: Value) -> (Value, Value) {
    let wide = b.ins().uextend(types::I64, x);
    let product = b.ins().imul_imm_u(wide, i64::from(m));
    let high = b.ins().ushr_imm_u(product, 32);
    let hi = b.ins().ireduce(types::I32, high);
    let lo = b.ins().ireduce(types::I32, product);
    (hi, lo)
}

/// Emits code that stores U(j) of the 128 lanes of mask group `group` (i64) as 128 u32 at
/// address `out` (pointer-sized int, 4-byte aligned), under RNG contract v1 (`rng::mask`):
/// plane k (0..32) is philox4x32_10((group as u32, (group >> 32) as u32 | k << 27, stream, step),
/// (seed as u32, seed >> 32)), and lane e takes bit (P[e % 4] >> (e / 4)) & 1 as bit 31 - k of U.
///
/// `seed` is i64, `stream` and `step` are i32. The caller guarantees `group < 2^59` (the
/// contract's bound) and 512 writable bytes at `out`; those bytes also serve as scratch.
/// Control flow: emission starts in the current block, which must not be filled, and ends in a
/// new sealed block where the caller continues.
pub fn emit_group_uniforms(
    b: &mut FunctionBuilder,
    seed: Value,
    stream: Value,
    step: Value,
    group: Value,
    out: Value,
) {
    let seed_high = b.ins().ushr_imm_u(seed, 32);
    let key = [
        b.ins().ireduce(types::I32, seed),
        b.ins().ireduce(types::I32, seed_high),
    ];
    let group_high = b.ins().ushr_imm_u(group, 32);
    let group_high = b.ins().ireduce(types::I32, group_high);
    let group_low = b.ins().ireduce(types::I32, group);

    // A do-while loop over the planes: its trip count is the constant 32, so the guard a
    // do-while needs is statically true and omitted. With the test at the bottom Cranelift
    // hoists loop-invariant work out of the body (the first round's products of the fixed
    // counter words, the constants); the key schedule stays as one `lea` per round.
    let body = b.create_block();
    let k = b.append_block_param(body, types::I32);
    let done = b.create_block();
    let first = b.ins().iconst(types::I32, 0);
    b.ins().jump(body, &[first.into()]);

    b.switch_to_block(body);
    let plane_bits = b.ins().ishl_imm_u(k, 27);
    let c1 = b.ins().bor(group_high, plane_bits);
    let words = emit_philox4x32_10(b, [group_low, c1, stream, step], key);
    let row = emit_plane_row(b, out, k);
    let flags = scratch_flags();
    for (w, word) in (0i32..).zip(words) {
        b.ins().store(flags, word, row, 4 * w);
    }
    let next = b.ins().iadd_imm_u(k, 1);
    let more = b
        .ins()
        .icmp_imm_u(IntCC::UnsignedLessThan, next, i64::from(PLANES));
    b.ins().brif(more, body, &[next.into()], done, &[]);
    b.seal_block(body);

    b.switch_to_block(done);
    b.seal_block(done);
    emit_transpose_rows(b, out);
}

/// The address of plane `k`'s row: `out + (31 - k) * 16`. Reversed so that the transpose,
/// which maps bit `c` of row `r` to bit `r` of row `c`, puts plane `k` at bit `31 - k`.
fn emit_plane_row(b: &mut FunctionBuilder, out: Value, k: Value) -> Value {
    let pointer = b.func.dfg.value_type(out);
    let last = b.ins().iconst(types::I32, i64::from(PLANES - 1));
    let reversed = b.ins().isub(last, k);
    let index = if pointer.bits() > 32 {
        b.ins().uextend(pointer, reversed)
    } else {
        reversed
    };
    let offset = b.ins().imul_imm_u(index, i64::from(ROW_BYTES));
    b.ins().iadd(out, offset)
}

/// Transposes, in place, the four 32x32 bit matrices held in the 32 i32x4 rows at `out`: bit
/// `c` of lane `w` of row `r` becomes bit `r` of lane `w` of row `c`. Row `v`, lane `w` then
/// holds U of mask lane `4v + w`.
fn emit_transpose_rows(b: &mut FunctionBuilder, out: Value) {
    let flags = scratch_flags();
    let mut rows: Vec<Value> = (0..ROWS)
        .map(|r| b.ins().load(types::I32X4, flags, out, row_offset(r)))
        .collect();
    for (shift, mask) in TRANSPOSE_STAGES {
        let lane_mask = b.ins().iconst(types::I32, mask);
        let mask = b.ins().splat(types::I32X4, lane_mask);
        let stride = shift as usize;
        for r in (0..ROWS).filter(|r| r & stride == 0) {
            // Swap the high blocks of row r with the low blocks of row r + stride:
            // t = ((a >> s) ^ b) & mask; b ^= t; a ^= t << s.
            let (upper, lower) = (rows[r], rows[r + stride]);
            let moved = b.ins().ushr_imm_u(upper, shift);
            let differ = b.ins().bxor(moved, lower);
            let t = b.ins().band(differ, mask);
            rows[r + stride] = b.ins().bxor(lower, t);
            let back = b.ins().ishl_imm_u(t, shift);
            rows[r] = b.ins().bxor(upper, back);
        }
    }
    for (r, row) in rows.into_iter().enumerate() {
        b.ins().store(flags, row, out, row_offset(r));
    }
}

/// The byte offset of row `r` from the start of the group's output.
fn row_offset(r: usize) -> i32 {
    i32::try_from(r).expect("invariant: a group has 32 rows") * ROW_BYTES
}

/// Flags for the output buffer: it cannot trap (the caller owns 512 bytes) but is only 4-byte
/// aligned, so the flags must not claim alignment (x64 would then fold vector loads into SSE
/// ops that fault on unaligned addresses).
fn scratch_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Emits four Philox4x32-10 blocks at once, one per lane: `counter` holds four i32x4 words
/// (word `i` of block `l` in lane `l` of `counter[i]`), `key` two i32 words shared by all.
/// Returns the four output words in the same layout; lane `l` equals
/// [`crate::rng::philox4x32_10`] of block `l`.
///
/// x64 has no 32-bit `umulhi` on vectors (Cranelift does not lower `umulhi.i32x4`), so each
/// product is two `pmuludq` of zero-extended halves (`imul.i64x2` of `uwiden_low`/`_high`)
/// whose high and low words are gathered by two `shufps`.
pub fn emit_philox4x32_10_x4(
    b: &mut FunctionBuilder,
    counter: [Value; 4],
    key: [Value; 2],
) -> [Value; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    // A vector constant, not a splat: the mid-end rewrites a widened splat into a splat of
    // i64, which no longer matches the `pmuludq` pattern.
    let wide_multiplier = |b: &mut FunctionBuilder, m: u32| {
        let bytes: Vec<u8> = (0..4).flat_map(|_| m.to_le_bytes()).collect();
        let constant = b.func.dfg.constants.insert(bytes.into());
        b.ins().vconst(types::I32X4, constant)
    };
    let (m0, m1) = (wide_multiplier(b, M0), wide_multiplier(b, M1));
    for round in 0..10 {
        if round > 0 {
            k0 = b.ins().iadd_imm_u(k0, i64::from(W0));
            k1 = b.ins().iadd_imm_u(k1, i64::from(W1));
        }
        let (hi0, lo0) = emit_mulhilo_x4(b, m0, c0);
        let (hi1, lo1) = emit_mulhilo_x4(b, m1, c2);
        let (key0, key1) = (
            b.ins().splat(types::I32X4, k0),
            b.ins().splat(types::I32X4, k1),
        );
        let x0 = b.ins().bxor(hi1, c1);
        let x2 = b.ins().bxor(hi0, c3);
        (c0, c1, c2, c3) = (b.ins().bxor(x0, key0), lo1, b.ins().bxor(x2, key1), lo0);
    }
    [c0, c1, c2, c3]
}

/// The high and low words of `m * x` per lane (`x` and `m` i32x4). Both factors are widened
/// the same way (low with low, high with high): only that form lowers to `pmuludq`.
fn emit_mulhilo_x4(b: &mut FunctionBuilder, m: Value, x: Value) -> (Value, Value) {
    let (x_low, m_low) = (b.ins().uwiden_low(x), b.ins().uwiden_low(m));
    let (x_high, m_high) = (b.ins().uwiden_high(x), b.ins().uwiden_high(m));
    let low = b.ins().imul(x_low, m_low);
    let high = b.ins().imul(x_high, m_high);
    // Products 0, 1 in `low` and 2, 3 in `high`, each (low word, high word).
    let hi = emit_shuffle_words(b, low, high, [1, 3, 5, 7]);
    let lo = emit_shuffle_words(b, low, high, [0, 2, 4, 6]);
    (hi, lo)
}

/// The i32x4 of words `lanes` picked from the eight 32-bit words of `x` (0..4) and `y`
/// (4..8), any 128-bit vectors: one `shuffle` (x64 picks `shufps` or `punpck*`).
pub fn emit_shuffle_words(b: &mut FunctionBuilder, x: Value, y: Value, lanes: [u8; 4]) -> Value {
    let little = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
    let x = b.ins().bitcast(types::I8X16, little, x);
    let y = b.ins().bitcast(types::I8X16, little, y);
    let bytes: Vec<u8> = (lanes.iter())
        .flat_map(|&lane| (0..4).map(move |byte| lane * 4 + byte))
        .collect();
    let mask = b.func.dfg.immediates.push(bytes.into());
    let picked = b.ins().shuffle(x, y, mask);
    b.ins().bitcast(types::I32X4, little, picked)
}

#[cfg(test)]
mod tests;
