//! Matrix products for generated code ([`crate::Gemm::Blocked`]): `C = A · B` on f32, packed
//! and blocked, with microkernels for AVX-512F, AVX2 + FMA and portable Rust.
//!
//! **One order.** Every element of `C` is one chain of fused multiply-adds over `k` in
//! ascending order, from +0.0: `c = fma(a[i][k], b[k][j], c)`. The blocking keeps the chain
//! whole (a later block of `k` continues from the value the earlier one left in `C`), so the
//! bits depend on nothing but the operands: not on the instruction set, the blocking, which
//! operand is packed, or which rows and columns a call covers. A product split across threads
//! gives the bits of one call, and every [`Isa`] gives the bits of [`reference()`].
//!
//! **The layout.** A microkernel computes a tile of `MR` rows by `NR` columns of `C` in
//! registers: at each `k` it loads `NR` packed values of `B` as vectors and broadcasts `MR`
//! values of `A` straight from memory (`A` is contiguous along one of its dimensions in every
//! product generated code makes, so it is never packed). `B` is packed block by block into
//! panels of `NR` columns, zero-padded. For a product whose `B` would be large and `A` small
//! (a `linear` on a small batch: `x · Wᵀ` packs all of `Wᵀ`), the driver computes `Cᵀ = Bᵀ · Aᵀ`
//! instead, which packs the small one; the chains are the same, so the bits are.

pub mod peak;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::cell::RefCell;

use crate::isa::Isa;

/// A matrix in memory: its first element and its strides (in elements) along rows and columns.
#[derive(Clone, Copy, Debug)]
struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl View {
    /// The view of the transposed matrix.
    fn t(self) -> View {
        View {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// The address of element `(i, j)`.
    fn at(self, i: usize, j: usize) -> *const f32 {
        (self.ptr)
            .wrapping_offset(i as isize * self.rs)
            .wrapping_offset(j as isize * self.cs)
    }
}

/// The definition: each element the fused multiply-add chain over `k` ascending from +0.0.
/// Slow; what every kernel is tested against.
///
/// # Panics
/// If a matrix's strides address an element outside its slice.
pub fn reference(
    (m, k, n): (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    c: (&mut [f32], usize, usize),
) {
    check_operands((m, k, n), &a, &b, &c);
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0.0f32;
            for p in 0..k {
                sum = a.0[i * a.1 + p * a.2].mul_add(b.0[p * b.1 + j * b.2], sum);
            }
            c.0[i * c.1 + j * c.2] = sum;
        }
    }
}

/// `C = A · B` on slices, with non-negative strides `(slice, row stride, column stride)`,
/// computed by `isa`: the checked form of the `sgemm` that generated code calls, for tests
/// and benches.
///
/// # Panics
/// If a matrix's strides address an element outside its slice, or the host cannot run `isa`.
pub fn product(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    c: (&mut [f32], usize, usize),
) {
    check_operands((m, k, n), &a, &b, &c);
    let stride = |s: usize| isize::try_from(s).expect("a stride within a slice fits isize");
    // SAFETY: every element the dimensions and strides address is inside its slice (checked
    // above); `c` is borrowed mutably, so it overlaps neither operand.
    unsafe {
        sgemm(
            isa,
            (m, k, n),
            (a.0.as_ptr(), stride(a.1), stride(a.2)),
            (b.0.as_ptr(), stride(b.1), stride(b.2)),
            (c.0.as_mut_ptr(), stride(c.1), stride(c.2)),
        )
    }
}

/// Panics unless each operand's strides keep its matrix inside its slice.
fn check_operands(
    (m, k, n): (usize, usize, usize),
    a: &(&[f32], usize, usize),
    b: &(&[f32], usize, usize),
    c: &(&mut [f32], usize, usize),
) {
    check_bounds(m, k, a.0.len(), a.1, a.2);
    check_bounds(k, n, b.0.len(), b.1, b.2);
    check_bounds(m, n, c.0.len(), c.1, c.2);
}

/// Panics unless a `rows x cols` matrix with these strides fits in `len` elements.
fn check_bounds(rows: usize, cols: usize, len: usize, rs: usize, cs: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = ((rows - 1).checked_mul(rs))
        .and_then(|r| (cols - 1).checked_mul(cs)?.checked_add(r))
        .expect("matrix extent overflows usize");
    assert!(
        last < len,
        "a {rows} x {cols} matrix with strides ({rs}, {cs}) needs {} elements, the slice has {len}",
        last + 1
    );
}

/// `C = A · B` for `A: m x k`, `B: k x n`, `C: m x n`, each given as its first element and its
/// row and column strides in elements, computed with `isa` (see the module's docs for the
/// order of the sums).
///
/// # Safety
/// Every element the dimensions and strides address is readable (`A`, `B`) or writable (`C`),
/// `C` overlaps neither operand, and `isa` runs on this host.
pub(crate) unsafe fn sgemm(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    a: (*const f32, isize, isize),
    b: (*const f32, isize, isize),
    c: (*mut f32, isize, isize),
) {
    let [a, b] = [a, b].map(|(ptr, rs, cs)| View { ptr, rs, cs });
    let c = View {
        ptr: c.0,
        rs: c.1,
        cs: c.2,
    };
    assert!(
        isa.is_available(),
        "invariant: the host runs {}",
        isa.name()
    );
    // SAFETY: the caller's contract, and the kernel's instruction set is available.
    unsafe {
        match isa {
            Isa::Portable => drive::<Portable>(m, k, n, a, b, c),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => drive::<x86::Avx2>(m, k, n, a, b, c),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => drive::<x86::Avx512>(m, k, n, a, b, c),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unreachable!("only x86-64 has them"),
        }
    }
}

/// A microkernel: the tile of `MR x NR` elements of `C` it keeps in registers, the depth of
/// `k` a packed block of `B` holds, and the tile itself.
trait Microkernel {
    /// f32 lanes per vector.
    const LANES: usize;
    const MR: usize;
    const NR: usize;
    const KC: usize;

    /// Continues the chains of the `MR x NR` tile `t` describes.
    ///
    /// # Safety
    /// Every address `t` describes is valid for its `kc` steps, the tile's elements are
    /// writable, and the kernel's instruction set runs on this host.
    unsafe fn tile(t: &Tile);

    /// `steps` rounds of fused multiply-adds on independent accumulator vectors, enough to
    /// keep every FMA unit busy: the peak this kernel is measured against
    /// ([`peak::fma_peak`]). Returns their sum, so the work is not optimized away.
    ///
    /// # Safety
    /// The kernel's instruction set runs on this host.
    unsafe fn fma_chains(steps: u64) -> f32;

    /// Packs `nr <= NR` columns of `B` whose steps are contiguous (column `j`'s value at step
    /// `p` at `src + j * cs + p`) into `dst`, step `p`'s values at `p * NR`, zero past `nr`:
    /// the transposing pack of `x · Wᵀ`.
    ///
    /// # Safety
    /// Those `kc` steps of the `nr` columns are readable, and `dst` holds `kc * NR` values.
    unsafe fn pack_columns(dst: &mut [f32], src: *const f32, cs: isize, kc: usize, nr: usize) {
        // SAFETY: the caller's contract.
        unsafe { pack_columns_scalar(dst, Self::NR, src, cs, (0, kc), (0, nr)) };
    }

    /// Packs `NR` contiguous columns of `B` (step `p`'s values at `src + p * rs`) into
    /// `dst`, step `p`'s at `p * NR`: the copying pack.
    ///
    /// # Safety
    /// Those `kc` steps of `NR` values are readable, and `dst` holds `kc * NR` values.
    unsafe fn pack_rows(dst: &mut [f32], src: *const f32, rs: isize, kc: usize) {
        for (p, row) in dst.chunks_exact_mut(Self::NR).take(kc).enumerate() {
            // SAFETY: step `p`'s `NR` values are readable (the caller's contract).
            let src = unsafe { std::slice::from_raw_parts(src.offset(p as isize * rs), Self::NR) };
            row.copy_from_slice(src);
        }
    }
}

/// [`Microkernel::pack_columns`] for steps `p0 .. p1` of columns `j0 .. NR` (`nr` of which
/// are in `B`), one value at a time.
///
/// # Safety
/// As [`Microkernel::pack_columns`]'s.
unsafe fn pack_columns_scalar(
    dst: &mut [f32],
    nr_stride: usize,
    src: *const f32,
    cs: isize,
    (p0, p1): (usize, usize),
    (j0, nr): (usize, usize),
) {
    for j in j0..nr_stride {
        let column = src.wrapping_offset(j as isize * cs);
        for p in p0..p1 {
            dst[p * nr_stride + j] = if j < nr {
                // SAFETY: step `p` of column `j < nr` is readable (the caller's contract).
                unsafe { *column.add(p) }
            } else {
                0.0
            };
        }
    }
}

/// One tile's work: the chains of the `MR x NR` tile at `c` (row stride `rsc`, columns
/// contiguous) continued for `kc` steps of `k`. Row `i`'s value of `A` at step `p` is at
/// `a + a_rows[i] + p * a_step`; the `NR` values of `B` at step `p` at `b + p * NR` (a packed
/// panel). With `first` the chains start from +0.0 instead of `C`'s values.
#[derive(Clone, Copy)]
struct Tile<'r> {
    kc: usize,
    a: *const f32,
    a_rows: &'r [isize; MAX_MR],
    a_step: isize,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    first: bool,
}

/// Plain Rust, any host: `f32::mul_add` is fused on every target.
struct Portable;

impl Microkernel for Portable {
    const LANES: usize = 1;
    const MR: usize = 4;
    const NR: usize = 4;
    const KC: usize = 256;

    unsafe fn tile(t: &Tile) {
        let (a, b, c, rsc) = (t.a, t.b, t.c, t.rsc);
        let mut acc = [[0.0f32; 4]; 4];
        for (i, row) in acc.iter_mut().enumerate() {
            for (j, value) in row.iter_mut().enumerate() {
                if !t.first {
                    // SAFETY: the tile's elements are valid (the caller's contract).
                    *value = unsafe { *c.offset(i as isize * rsc).add(j) };
                }
            }
        }
        for p in 0..t.kc {
            // SAFETY: step `p < kc` of `A` and `B` is valid (the caller's contract).
            let (b_row, a_at) = unsafe { (b.add(p * 4), a.offset(p as isize * t.a_step)) };
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let a = unsafe { *a_at.offset(t.a_rows[i]) };
                for (j, value) in row.iter_mut().enumerate() {
                    // SAFETY: as above.
                    *value = a.mul_add(unsafe { *b_row.add(j) }, *value);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &value) in row.iter().enumerate() {
                // SAFETY: the tile's elements are writable (the caller's contract).
                unsafe { *c.offset(i as isize * rsc).add(j) = value };
            }
        }
    }

    unsafe fn fma_chains(steps: u64) -> f32 {
        let mut acc = [0.0f32; peak::CHAINS];
        for _ in 0..steps {
            for acc in acc.iter_mut() {
                *acc = acc.mul_add(0.999_999, 1e-7);
            }
        }
        acc.iter().sum()
    }
}

/// The largest tile of any kernel (`MR * NR`), for the buffer of partial tiles.
const MAX_TILE: usize = 16 * 32;

/// The largest `MR` of any kernel.
const MAX_MR: usize = 16;

thread_local! {
    /// The packed block of `B`, reused by every call on this thread.
    static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Columns of `C` per packed block of `B` (with `K::KC` rows of `k`, about 256 KiB).
const NC: usize = 256;

/// The most steps of `k` a block of the product takes: a tile is stored to `C` after each, so
/// a `C` whose columns are not contiguous (stored through a buffer, element by element) gets
/// deeper blocks.
fn depth<K: Microkernel>(c: View) -> usize {
    if c.cs == 1 { K::KC } else { 4 * K::KC }
}

/// Computes `C = A · B` with kernel `K`.
///
/// # Safety
/// As [`sgemm`]'s.
unsafe fn drive<K: Microkernel>(m: usize, k: usize, n: usize, a: View, b: View, c: View) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                // SAFETY: `C`'s elements are writable (the caller's contract).
                unsafe { *c.at(i, j).cast_mut() = 0.0 };
            }
        }
        return;
    }
    // Of `C = A · B` and `Cᵀ = Bᵀ · Aᵀ`, take the one with less work, in sixteenths of a
    // cycle (one lane of a multiply-add, measured roughly on Zen 4): the tiles with their
    // padding, packing `B` (a copy, a transposing pack, or one value at a time), and storing
    // a `C` whose columns are not contiguous (through a buffer, once per block of `k`).
    let cost = |m: usize, n: usize, b: View, c: View| {
        let padded = m.next_multiple_of(K::MR) * n.next_multiple_of(K::NR) * k;
        let per_packed = match (b.cs, b.rs) {
            (1, _) => 4,
            (_, 1) => 8,
            _ => 32,
        };
        let scattered = if c.cs == 1 {
            0
        } else {
            48 * k.div_ceil(depth::<K>(c))
        };
        padded + k * n * per_packed + m * n * scattered
    };
    let (m, n, a, b, c) = if cost(n, m, a.t(), c.t()) < cost(m, n, b, c) {
        (n, m, b.t(), a.t(), c.t())
    } else {
        (m, n, a, b, c)
    };
    // `A` is read in place: `a_step` apart along `k`, rows `a.rs` apart.
    PACKED.with_borrow_mut(|packed| {
        let blocks_of_k = k.div_ceil(depth::<K>(c));
        let kc_even = k.div_ceil(blocks_of_k);
        let panel = kc_even * K::NR;
        let block = NC.div_ceil(K::NR) * panel;
        if packed.len() < block {
            packed.resize(block, 0.0);
        }
        let mut tile = [0.0f32; MAX_TILE];
        let mut a_rows = [0isize; MAX_MR];
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            let mut pc = 0;
            while pc < k {
                let kc = kc_even.min(k - pc);
                // SAFETY: rows `pc .. pc + kc` and columns `jc .. jc + nc` of `B` are valid.
                unsafe { pack_b::<K>(packed, panel, b, (pc, kc), (jc, nc)) };
                let first = pc == 0;
                for (panel_index, jr) in (0..nc).step_by(K::NR).enumerate() {
                    let nr = K::NR.min(nc - jr);
                    let b_panel = packed[panel_index * panel..].as_ptr();
                    set_rows(&mut a_rows, K::MR, a.rs);
                    for ir in (0..m).step_by(K::MR) {
                        let mr = K::MR.min(m - ir);
                        if mr < K::MR {
                            set_rows(&mut a_rows, mr, a.rs);
                        }
                        let c_at = c.at(ir, jc + jr).cast_mut();
                        let work = Tile {
                            kc,
                            a: a.at(ir, pc),
                            a_rows: &a_rows,
                            a_step: a.cs,
                            b: b_panel,
                            c: c_at,
                            rsc: c.rs,
                            first,
                        };
                        if mr == K::MR && nr == K::NR && c.cs == 1 {
                            // SAFETY: the tile lies inside `C`; `A`'s rows and steps are
                            // valid; the panel holds `kc` steps.
                            unsafe { K::tile(&work) };
                        } else {
                            let tile = &mut tile[..K::MR * K::NR];
                            if !first {
                                for i in 0..mr {
                                    for j in 0..nr {
                                        // SAFETY: element (i, j) of the tile is in `C`.
                                        tile[i * K::NR + j] = unsafe { *c.at(ir + i, jc + jr + j) };
                                    }
                                }
                            }
                            let buffered = Tile {
                                c: tile.as_mut_ptr(),
                                rsc: K::NR as isize,
                                ..work
                            };
                            // SAFETY: as above, with the tile in a local buffer.
                            unsafe { K::tile(&buffered) };
                            for i in 0..mr {
                                for j in 0..nr {
                                    // SAFETY: element (i, j) of the tile is in `C`.
                                    unsafe {
                                        *c.at(ir + i, jc + jr + j).cast_mut() = tile[i * K::NR + j]
                                    };
                                }
                            }
                        }
                    }
                }
                pc += kc;
            }
        }
    });
}

/// The offsets of a tile's rows of `A` (`rs` apart), for a tile of `rows` rows: rows past
/// the matrix's end read its last row again, so no address leaves `A` (their results are
/// dropped).
fn set_rows(a_rows: &mut [isize; MAX_MR], rows: usize, rs: isize) {
    for (i, row) in a_rows.iter_mut().enumerate() {
        *row = i.min(rows - 1) as isize * rs;
    }
}

/// Packs rows `pc .. pc + kc` and columns `jc .. jc + nc` of `B` into panels of `NR` columns:
/// panel `q` holds step `p`'s values at `q * panel + p * NR`, zero past column `nc`.
///
/// # Safety
/// Those elements of `B` are readable.
unsafe fn pack_b<K: Microkernel>(
    packed: &mut [f32],
    panel: usize,
    b: View,
    (pc, kc): (usize, usize),
    (jc, nc): (usize, usize),
) {
    for (q, jr) in (0..nc).step_by(K::NR).enumerate() {
        let nr = K::NR.min(nc - jr);
        let dst = &mut packed[q * panel..q * panel + kc * K::NR];
        if b.cs == 1 && nr == K::NR {
            // SAFETY: columns `jc + jr ..` of rows `pc ..` are readable and contiguous.
            unsafe { K::pack_rows(dst, b.at(pc, jc + jr), b.rs, kc) };
        } else if b.cs == 1 {
            for (p, row) in dst.chunks_exact_mut(K::NR).enumerate() {
                // SAFETY: columns `jc + jr ..` of row `pc + p` are readable and contiguous.
                let src = unsafe { std::slice::from_raw_parts(b.at(pc + p, jc + jr), nr) };
                row[..nr].copy_from_slice(src);
                row[nr..].fill(0.0);
            }
        } else if b.rs == 1 {
            // SAFETY: the panel's columns are readable for `kc` contiguous steps.
            unsafe { K::pack_columns(dst, b.at(pc, jc + jr), b.cs, kc, nr) };
        } else {
            for j in 0..K::NR {
                if j >= nr {
                    for p in 0..kc {
                        dst[p * K::NR + j] = 0.0;
                    }
                    continue;
                }
                let column = b.at(pc, jc + jr + j);
                for p in 0..kc {
                    // SAFETY: element (pc + p, jc + jr + j) of `B` is readable.
                    dst[p * K::NR + j] = unsafe { *column.offset(p as isize * b.rs) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
