#!/usr/bin/env python3
"""Check a dropout's output against RNG contract v1, bit for bit, independently of dropjit.

Written from the contract's text (src/rng/mask.rs, src/graph/dropout.rs) and the Philox paper
(Salmon et al., SC 2011) rather than from dropjit's Rust code, so that a shared misreading shows up
as a mismatch. Standard library only (no numpy): it reads .npy files itself.

    check_masks.py --x X.npy --y Y.npy --kind KIND --p P --seed S --step T --stream N \\
                   [--broadcast-dims 0,2]
    check_masks.py --self-test
    check_masks.py --host-words --seed S --name NAME [--count N]

Exit status: 0 when every element of y matches, 1 on any mismatch (the first ones are printed),
2 on bad arguments or unreadable files.
"""

import argparse
import ast
import math
import struct
import sys

MASK32 = 0xFFFFFFFF

# ---------------------------------------------------------------------------------------------
# Philox4x32-10


def mulhilo32(a, b):
    """The high and low 32-bit halves of the 64-bit product a * b."""
    product = a * b
    return product >> 32, product & MASK32


def philox4x32_10(counter, key):
    """Ten Philox4x32 rounds on a 4-word counter under a 2-word key (Random123's philox4x32)."""
    x0, x1, x2, x3 = counter
    k0, k1 = key
    for r in range(10):
        if r:
            # Key schedule: add the Weyl constants (golden ratio, sqrt(3) - 1) between rounds.
            k0 = (k0 + 0x9E3779B9) & MASK32
            k1 = (k1 + 0xBB67AE85) & MASK32
        hi0, lo0 = mulhilo32(0xD2511F53, x0)
        hi1, lo1 = mulhilo32(0xCD9E8D57, x2)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
    return x0, x1, x2, x3


KNOWN_ANSWERS = [
    # Random123 kat_vectors, philox4x32_10: counter, key, expected output.
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK32,) * 4, (MASK32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]

# ---------------------------------------------------------------------------------------------
# RNG contract v1


def key_of(seed):
    return seed & MASK32, seed >> 32


def threshold(p):
    """Q = 2^32 - T with T = p * 2^32 rounded half to even (Python's round does exactly that)."""
    return 2**32 - int(round(p * 4294967296.0))


def mask_uniforms(seed, stream, step, count):
    """U(j) for j in 0..count: 32 bit planes per group of 128, plane 0 the most significant."""
    key = key_of(seed)
    out = []
    for g in range((count + 127) // 128):
        lanes = [0] * 128
        for k in range(32):
            words = philox4x32_10((g & MASK32, (g >> 32) | (k << 27), stream, step), key)
            for e in range(128):
                lanes[e] |= ((words[e % 4] >> (e // 4)) & 1) << (31 - k)
        out.extend(lanes)
    return out[:count]


ALPHA_PRIME = -1.7580993408473766
CHANNEL_RANKS = {"dropout1d": (2, 3), "dropout2d": (3, 4), "dropout3d": (4, 5)}
KINDS = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]


def broadcast_dims(kind, rank, extra):
    """The dimensions that share one draw, or raise ValueError for an input the kind refuses."""
    if extra and kind not in ("dropout", "alpha_dropout"):
        raise ValueError(f"{kind} takes no --broadcast-dims")
    if kind in CHANNEL_RANKS:
        unbatched, batched = CHANNEL_RANKS[kind]
        if rank not in (unbatched, batched):
            raise ValueError(f"{kind} needs rank {unbatched} or {batched}, got {rank}")
        channel = 1 if rank == batched else 0
        return list(range(channel + 1, rank))
    if kind == "feature_alpha_dropout":
        if rank < 2:
            raise ValueError(f"feature_alpha_dropout needs rank 2 or more, got {rank}")
        return list(range(2, rank))
    if any(d >= rank for d in extra) or sorted(set(extra)) != extra:
        raise ValueError(f"--broadcast-dims {extra} do not fit rank {rank}")
    return list(extra)


# ---------------------------------------------------------------------------------------------
# f32 arithmetic on bit patterns


def f32_round(x):
    """x rounded to the nearest f32 (ties to even), as a Python float; overflow gives inf."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def bits_of(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def value_of(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def is_nan_bits(bits):
    return (bits & 0x7F800000) == 0x7F800000 and (bits & 0x007FFFFF) != 0


QUIET_BIT = 0x00400000


def scaled_bits(x_bits, scale):
    """bits of f32(x * scale). A NaN x comes out as itself, quieted (IEEE 754's NaN propagation
    on x86-64 and AArch64). The f64 product of two f32s is exact, so rounding it once is the
    correctly rounded f32 product."""
    if is_nan_bits(x_bits):
        return x_bits | QUIET_BIT
    return bits_of(f32_round(value_of(x_bits) * scale))


def affine_bits(x_bits, a, b):
    """bits of f32(f32(x * a) + b): two roundings, no fused multiply-add. An f64 sum of two f32s
    rounded to f32 is the correctly rounded f32 sum (53 >= 2 * 24 + 2)."""
    if is_nan_bits(x_bits):
        return x_bits | QUIET_BIT
    t = f32_round(value_of(x_bits) * a)
    return bits_of(f32_round(t + b))


def coefficients(kind, p):
    """The kept map and the dropped value: ('scale', s) or ('affine', a, b, c), each an f32."""
    if kind in ("alpha_dropout", "feature_alpha_dropout"):
        # Evaluated left to right in f64 as the contract writes them, then rounded once each.
        a = 1.0 / math.sqrt((1.0 - p) * (1.0 + p * ALPHA_PRIME * ALPHA_PRIME))
        b = -a * ALPHA_PRIME * p
        c = a * ALPHA_PRIME + b
        return ("affine", f32_round(a), f32_round(b), bits_of(f32_round(c)))
    return ("scale", f32_round(1.0 / (1.0 - p)))


# ---------------------------------------------------------------------------------------------
# .npy reading


def read_npy(path):
    """(descr, shape, data bytes) of a C-order .npy file; raises ValueError when it is not one."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:6] != b"\x93NUMPY" or len(raw) < 10:
        raise ValueError(f"{path}: not a .npy file")
    major = raw[6]
    if major == 1:
        (length,), start = struct.unpack("<H", raw[8:10]), 10
    elif major in (2, 3):
        (length,), start = struct.unpack("<I", raw[8:12]), 12
    else:
        raise ValueError(f"{path}: unknown .npy version {major}")
    header = ast.literal_eval(raw[start : start + length].decode("latin1" if major < 3 else "utf8"))
    if header["fortran_order"]:
        raise ValueError(f"{path}: fortran_order is not supported")
    shape = tuple(header["shape"])
    data = raw[start + length :]
    if len(data) != 4 * math.prod(shape):
        raise ValueError(f"{path}: {len(data)} data bytes do not fit shape {shape}")
    return header["descr"], shape, data


# ---------------------------------------------------------------------------------------------
# The check


def expected_output(x_bits, shape, args):
    """The bit patterns the contract defines for y, and (mask size, kept count)."""
    extra = [int(d) for d in args.broadcast_dims.split(",")] if args.broadcast_dims else []
    dims = broadcast_dims(args.kind, len(shape), extra)
    mask_shape = [1 if d in dims else n for d, n in enumerate(shape)]
    mask_len = math.prod(mask_shape)
    if args.p == 0.0:
        return list(x_bits), mask_shape, (mask_len, mask_len)  # the identity, bit for bit
    if args.p == 1.0:
        return [0] * len(x_bits), mask_shape, (mask_len, 0)  # +0.0 everywhere, alpha kinds too
    q = threshold(args.p)
    kept = [u < q for u in mask_uniforms(args.seed, args.stream, args.step, mask_len)]
    rule = coefficients(args.kind, args.p)
    y = []
    for i, xb in enumerate(x_bits):
        # Row-major coordinates of element i, broadcast ones pinned to 0, re-flattened.
        j, rest, stride = 0, i, 1
        coords = []
        for n in reversed(shape):
            coords.append(rest % n)
            rest //= n
        coords.reverse()
        for d in reversed(range(len(shape))):
            j += (0 if d in dims else coords[d]) * stride
            stride *= mask_shape[d]
        if rule[0] == "scale":
            y.append(scaled_bits(xb, rule[1]) if kept[j] else 0)
        else:
            y.append(affine_bits(xb, rule[1], rule[2]) if kept[j] else rule[3])
    return y, mask_shape, (mask_len, sum(kept))


def check(args):
    try:
        x_descr, x_shape, x_data = read_npy(args.x)
        y_descr, y_shape, y_data = read_npy(args.y)
    except (OSError, ValueError, KeyError, SyntaxError) as e:
        print(f"check_masks: cannot read input: {e}", file=sys.stderr)
        return 2
    label = f"{args.kind} p={args.p} seed={args.seed} stream={args.stream} step={args.step}"
    if (x_descr, y_descr) != ("<f4", "<f4") or x_shape != y_shape:
        print(f"check_masks: MISMATCH {label}: x is {x_descr}{list(x_shape)}, y is {y_descr}{list(y_shape)}")
        return 1
    count = math.prod(x_shape)
    x_bits = struct.unpack(f"<{count}I", x_data)
    y_bits = struct.unpack(f"<{count}I", y_data)
    try:
        expected, mask_shape, (mask_len, kept) = expected_output(x_bits, x_shape, args)
    except ValueError as e:
        print(f"check_masks: {e}", file=sys.stderr)
        return 2
    wrong = [i for i in range(count) if expected[i] != y_bits[i]]
    if not wrong:
        print(
            f"check_masks: OK {label}: {count} elements of {list(x_shape)} match bit for bit "
            f"(mask {mask_shape}: {kept} of {mask_len} kept)"
        )
        return 0
    print(f"check_masks: MISMATCH {label}: {len(wrong)} of {count} elements differ")
    for i in wrong[:10]:
        e, g = expected[i], y_bits[i]
        print(f"  y[{i}]: expected 0x{e:08x} ({value_of(e)!r}), got 0x{g:08x} ({value_of(g)!r})")
    return 1


def self_test():
    for counter, key, expected in KNOWN_ANSWERS:
        got = philox4x32_10(counter, key)
        if got != expected:
            print(f"check_masks: self-test FAILED: philox4x32_10({counter}, {key}) = {got}")
            return 1
    assert threshold(0.0) == 2**32 and threshold(1.0) == 0 and threshold(0.5) == 2**31
    assert threshold(0.1) == 2**32 - 429496730
    print(f"check_masks: self-test OK ({len(KNOWN_ANSWERS)} Random123 known answers)")
    return 0


def fnv1a32(data):
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & MASK32
    return h


def host_words(args):
    """The first words of a named host stream and the values drawn from them (for golden tests)."""
    stream = 0x80000000 | (fnv1a32(args.name.encode("utf8")) & 0x7FFFFFFF)
    words = []
    for b in range((args.count + 3) // 4):
        words.extend(philox4x32_10((b & MASK32, b >> 32, stream, 0), key_of(args.seed)))
    words = words[: args.count]
    print(f"stream 0x{stream:08x}")
    print("words   " + " ".join(f"0x{w:08x}" for w in words))
    print("uniform " + " ".join(f"0x{bits_of((w >> 8) * 2.0**-24):08x}" for w in words))
    normals = []
    for w1, w2 in zip(words[::2], words[1::2]):
        u1, u2 = ((w1 >> 8) + 1) * 2.0**-24, (w2 >> 8) * 2.0**-24
        r = math.sqrt(-2.0 * math.log(u1))
        normals += [f32_round(r * math.cos(2.0 * math.pi * u2)), f32_round(r * math.sin(2.0 * math.pi * u2))]
    print("normal  " + " ".join(f"0x{bits_of(z):08x}" for z in normals))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--host-words", action="store_true")
    parser.add_argument("--name")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--x")
    parser.add_argument("--y")
    parser.add_argument("--kind", choices=KINDS)
    parser.add_argument("--p", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--step", type=int, default=0)
    parser.add_argument("--stream", type=int)
    parser.add_argument("--broadcast-dims", default="")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if args.host_words:
        if args.seed is None or args.name is None:
            parser.error("--host-words needs --seed and --name")
        return host_words(args)
    missing = [n for n in ("x", "y", "kind", "p", "seed", "stream") if getattr(args, n) is None]
    if missing:
        parser.error("missing " + ", ".join("--" + n for n in missing))
    if not 0.0 <= args.p <= 1.0:
        parser.error(f"--p {args.p} is outside [0, 1]")
    if not (0 <= args.seed < 2**64 and 0 <= args.stream < 2**31 and 0 <= args.step < 2**32):
        parser.error("--seed is a u64, --stream below 2^31, --step a u32")
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
