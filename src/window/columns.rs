//! im2col (an image's columns: row `c * taps + tap`, column the output position, the input
//! element that tap reads there, `+0.0` in the padding) and col2im (its adjoint: each column
//! element added to the input element its tap reads, taps in row-major order), the data
//! movement of a convolution on the GEMM. The innermost loop runs along a row of output
//! positions, where the taps read (stride 1) a contiguous run of the input: a copy, or an add
//! the compiler vectorizes. The order of col2im's additions is the lowering's definition (see
//! [`dropjit_col2im`]), so it gives the interpreter's bits.

use super::Geometry;
use crate::math;

/// Writes the columns of input channels `c_start .. c_stop` of one image `x` into `columns`
/// (channel `c`'s rows at row `c * taps`, the same place whatever the range).
///
/// # Safety
/// `geometry` is valid; `x` holds the image (`channels` planes of the input size) and
/// `columns` its `channels * taps` rows of output positions, neither overlapping the other,
/// and `c_start <= c_stop <= channels`.
pub unsafe extern "C" fn dropjit_im2col(
    geometry: *const Geometry,
    x: *const f32,
    columns: *mut f32,
    c_start: usize,
    c_stop: usize,
) {
    // SAFETY: the caller's contract.
    let dims = unsafe { (*geometry).dims() };
    let (taps, in_plane, out_plane) = (dims.taps(), dims.in_plane(), dims.out_plane());
    let stride = dims.stride[2];
    let o2 = dims.out_size[2];
    for c in c_start..c_stop {
        // SAFETY: channel `c`'s plane and rows are inside the buffers (the caller's contract).
        let (plane, rows) = unsafe {
            (
                std::slice::from_raw_parts(x.add(c * in_plane), in_plane),
                std::slice::from_raw_parts_mut(columns.add(c * taps * out_plane), taps * out_plane),
            )
        };
        dims.walk(|tap, first, source, (lo, hi, from)| {
            let out = &mut rows[tap * out_plane + first..][..o2];
            let Some(start) = source else {
                out.fill(0.0);
                return;
            };
            out[..lo].fill(0.0);
            out[hi..].fill(0.0);
            let input = &plane[start..];
            if stride == 1 {
                copy_row(&mut out[lo..hi], &input[from..from + (hi - lo)]);
            } else {
                for (i, value) in out[lo..hi].iter_mut().enumerate() {
                    *value = input[from + i * stride];
                }
            }
        });
    }
}

/// `dst.copy_from_slice(src)` in copies of eight values (the last one overlapping the one
/// before), which compile to vector moves: a row of output positions is short, and a call of
/// `memcpy` for each would cost more than the copy.
fn copy_row(dst: &mut [f32], src: &[f32]) {
    const LANES: usize = 8;
    let n = dst.len();
    assert_eq!(n, src.len(), "invariant: rows of one length");
    if n < LANES {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s;
        }
        return;
    }
    let mut at = 0;
    loop {
        let start = at.min(n - LANES);
        let chunk: [f32; LANES] = src[start..start + LANES].try_into().expect("eight values");
        dst[start..start + LANES].copy_from_slice(&chunk);
        at += LANES;
        if at >= n {
            break;
        }
    }
}

/// The adjoint of [`dropjit_im2col`] for one image: `out` (its `channels` planes) zeroed, then
/// each column element added to the input element its tap reads, for channel after channel,
/// taps in row-major order, positions in order. An input element thus sums its taps'
/// values in tap order from `+0.0` (at most one position per tap reads it): the order of
/// [`crate::graph::Op::ConvInputGrad`]'s definition.
///
/// # Safety
/// As [`dropjit_im2col`]'s, with `columns` read and `out` the image written.
pub unsafe extern "C" fn dropjit_col2im(
    geometry: *const Geometry,
    columns: *const f32,
    out: *mut f32,
) {
    // SAFETY: the caller's contract.
    let geometry = unsafe { &*geometry };
    let dims = geometry.dims();
    let (taps, in_plane, out_plane) = (dims.taps(), dims.in_plane(), dims.out_plane());
    let stride = dims.stride[2];
    let o2 = dims.out_size[2];
    for c in 0..geometry.channels as usize {
        // SAFETY: channel `c`'s plane and rows are inside the buffers (the caller's contract).
        let (plane, rows) = unsafe {
            (
                std::slice::from_raw_parts_mut(out.add(c * in_plane), in_plane),
                std::slice::from_raw_parts(columns.add(c * taps * out_plane), taps * out_plane),
            )
        };
        plane.fill(0.0);
        dims.walk(|tap, first, source, (lo, hi, from)| {
            let Some(start) = source else { return };
            let values = &rows[tap * out_plane + first..][..o2];
            let input = &mut plane[start..];
            if stride == 1 {
                let targets = &mut input[from..from + (hi - lo)];
                for (target, &value) in targets.iter_mut().zip(&values[lo..hi]) {
                    *target += value;
                }
            } else {
                for (i, &value) in values[lo..hi].iter().enumerate() {
                    input[from + i * stride] += value;
                }
            }
        });
    }
}

/// A convolution's epilogue over `rows` rows (output channels) of `positions` elements, in
/// one pass after its product: `values[r][p] += bias[r]` (unless `bias` is null: one rounding
/// per element after its sum, as the interpreter adds it), then, unless `relu` is null,
/// `relu[r][p] = relu(values[r][p])` ([`crate::math::relu`], the fused ReLU that reads the
/// convolution); `relu` may be `values` itself (the convolution's values needed by nothing
/// else), which then holds the ReLU's.
///
/// # Safety
/// `values` (and `relu`, unless null) hold `rows * positions` elements and `bias`, unless
/// null, `rows`; `relu` is `values` or does not overlap it.
pub unsafe extern "C" fn dropjit_conv_epilogue(
    values: *mut f32,
    bias: *const f32,
    relu: *mut f32,
    rows: usize,
    positions: usize,
) {
    if positions == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    let values = unsafe { std::slice::from_raw_parts_mut(values, rows * positions) };
    if !bias.is_null() {
        // SAFETY: the caller's contract.
        let bias = unsafe { std::slice::from_raw_parts(bias, rows) };
        for (row, &b) in values.chunks_exact_mut(positions).zip(bias) {
            row.iter_mut().for_each(|v| *v += b);
        }
    }
    if relu.is_null() {
        return;
    }
    if std::ptr::eq(relu, values.as_ptr()) {
        values.iter_mut().for_each(|v| *v = math::relu(*v));
    } else {
        // SAFETY: the caller's contract: its own buffer of as many elements.
        let relu = unsafe { std::slice::from_raw_parts_mut(relu, rows * positions) };
        for (r, &v) in relu.iter_mut().zip(values.iter()) {
            *r = math::relu(v);
        }
    }
}

/// `dst[r][j] += src[r][j]` for `rows` rows (`row_stride` apart) and columns `start .. stop`,
/// or, with a null `src`, `dst[r][j] = 0.0`: the block of a convolution's weight gradient a
/// unit owns, zeroed and then summed image after image.
///
/// # Safety
/// `dst` (and `src`, unless null) hold `rows` rows of `row_stride >= stop` elements, not
/// overlapping, and `start <= stop`.
pub unsafe extern "C" fn dropjit_add_block(
    dst: *mut f32,
    src: *const f32,
    rows: usize,
    row_stride: usize,
    start: usize,
    stop: usize,
) {
    for r in 0..rows {
        // SAFETY: row `r`'s columns `start .. stop` are inside both (the caller's contract).
        let target = unsafe {
            std::slice::from_raw_parts_mut(dst.add(r * row_stride + start), stop - start)
        };
        if src.is_null() {
            target.fill(0.0);
            continue;
        }
        // SAFETY: as above.
        let source =
            unsafe { std::slice::from_raw_parts(src.add(r * row_stride + start), stop - start) };
        for (t, &s) in target.iter_mut().zip(source) {
            *t += s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// im2col by its definition, one element at a time.
    fn im2col_reference(g: &Geometry, x: &[f32]) -> Vec<f32> {
        let d = g.dims();
        let (taps, in_plane, out_plane) = (d.taps(), d.in_plane(), d.out_plane());
        let mut columns = vec![f32::NAN; g.channels as usize * taps * out_plane];
        for c in 0..g.channels as usize {
            for tap in 0..taps {
                let k = [
                    tap / (d.kernel[1] * d.kernel[2]),
                    tap / d.kernel[2] % d.kernel[1],
                    tap % d.kernel[2],
                ];
                for p in 0..out_plane {
                    let y = [
                        p / (d.out_size[1] * d.out_size[2]),
                        p / d.out_size[2] % d.out_size[1],
                        p % d.out_size[2],
                    ];
                    let z: Option<Vec<usize>> = (0..3).map(|i| d.source(i, y[i], k[i])).collect();
                    columns[(c * taps + tap) * out_plane + p] = match z {
                        Some(z) => {
                            x[c * in_plane + (z[0] * d.in_size[1] + z[1]) * d.in_size[2] + z[2]]
                        }
                        None => 0.0,
                    };
                }
            }
        }
        columns
    }

    fn geometries() -> Vec<Geometry> {
        let mut out = Vec::new();
        for (stride, dilation, padding) in [
            (1, 1, 0),
            (1, 1, 1),
            (2, 1, 1),
            (1, 2, 2),
            (3, 2, 1),
            (2, 1, 3),
        ] {
            for (in_size, kernel) in [(7usize, 3usize), (5, 1), (4, 4), (2, 3), (0, 1)] {
                let span = (kernel - 1) * dilation + 1;
                let Some(room) = (in_size + 2 * padding).checked_sub(span) else {
                    continue;
                };
                let out_size = room / stride + 1;
                out.push(Geometry::new(
                    2,
                    &[in_size, in_size + 1],
                    &[out_size, (in_size + 1 + 2 * padding - span) / stride + 1],
                    &[kernel, kernel],
                    (
                        &[stride, stride],
                        &[dilation, dilation],
                        &[padding, padding],
                    ),
                ));
            }
        }
        out.push(Geometry::new(3, &[9], &[4], &[3], (&[2], &[1], &[0])));
        out.push(Geometry::new(
            1,
            &[3, 4, 5],
            &[3, 4, 5],
            &[3, 3, 3],
            (&[1, 1, 1], &[1, 1, 1], &[1, 1, 1]),
        ));
        out
    }

    #[test]
    fn im2col_reads_each_tap_where_the_definition_says() {
        for g in geometries() {
            let d = g.dims();
            let x: Vec<f32> = (0..g.channels as usize * d.in_plane())
                .map(|i| i as f32 + 1.0)
                .collect();
            let expected = im2col_reference(&g, &x);
            let mut columns = vec![f32::NAN; expected.len()];
            // Channel by channel, as a split of the rows would call it.
            for c in 0..g.channels as usize {
                // SAFETY: the buffers hold the image and its columns.
                unsafe { dropjit_im2col(&g, x.as_ptr(), columns.as_mut_ptr(), c, c + 1) };
            }
            assert_eq!(columns, expected, "{g:?}");
        }
    }

    #[test]
    fn col2im_adds_taps_in_order() {
        for g in geometries() {
            let d = g.dims();
            let (taps, in_plane, out_plane) = (d.taps(), d.in_plane(), d.out_plane());
            let rows = g.channels as usize * taps;
            let columns: Vec<f32> = (0..rows * out_plane)
                .map(|i| 1.0 / (i as f32 + 3.0))
                .collect();
            // The definition: every input element sums, from +0.0 in tap order, the column
            // values whose tap reads it.
            let x_index: Vec<f32> = (0..g.channels as usize * in_plane)
                .map(|i| i as f32)
                .collect();
            let sources = im2col_reference(&g, &x_index);
            let inside = im2col_reference(&g, &vec![1.0; x_index.len()]);
            let mut expected = vec![0.0f32; g.channels as usize * in_plane];
            for c in 0..g.channels as usize {
                for tap in 0..taps {
                    for p in 0..out_plane {
                        let row = (c * taps + tap) * out_plane + p;
                        // Tap reads input element `sources[row]` unless it is padding.
                        if inside[row] == 1.0 {
                            expected[sources[row] as usize] += columns[row];
                        }
                    }
                }
            }
            let mut out = vec![f32::NAN; expected.len()];
            // SAFETY: the buffers hold the columns and the image.
            unsafe { dropjit_col2im(&g, columns.as_ptr(), out.as_mut_ptr()) };
            assert_eq!(out, expected, "{g:?}");
        }
    }

    #[test]
    fn words_follow_the_field_order() {
        let g = Geometry::new(5, &[6, 7], &[4, 5], &[3, 3], (&[1, 2], &[1, 1], &[0, 1]));
        let w = g.words();
        assert_eq!(w[0], 5);
        assert_eq!(&w[1..4], &[1, 6, 7]);
        assert_eq!(&w[16..19], &[0, 0, 1]);
        assert_eq!(std::mem::size_of::<Geometry>(), 8 * Geometry::WORDS);
    }
}
