//! The data movement of a convolution on the GEMM, rustc-compiled for generated code to call:
//! im2col (an image's columns: row `c * taps + tap`, column the output position, the input
//! element that tap reads there, `+0.0` in the padding) and col2im (its adjoint: each column
//! element added to the input element its tap reads, taps in row-major order).
//!
//! Written once for three spatial dimensions: a convolution of fewer has leading dimensions
//! of size 1 ([`Geometry::new`]). The innermost loop runs along a row of output positions,
//! where the taps read (stride 1) a contiguous run of the input: a copy, or an add the
//! compiler vectorizes. The order of col2im's additions is the lowering's definition (see
//! [`col2im`]), so it gives the interpreter's bits.

/// A convolution's window over one image, as generated code passes it (a pointer to these
/// words): input channels, then per spatial dimension (three, the unused leading ones of
/// size 1) the input and output sizes, kernel, stride, dilation and padding at the start.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub channels: u64,
    pub in_size: [u64; 3],
    pub out_size: [u64; 3],
    pub kernel: [u64; 3],
    pub stride: [u64; 3],
    pub dilation: [u64; 3],
    pub padding: [u64; 3],
}

impl Geometry {
    /// Its words, in order: what generated code stores for a call.
    pub const WORDS: usize = 19;

    /// The geometry of `channels` input channels with per-dimension (1 to 3 spatial
    /// dimensions, all of one length) sizes, kernel and steps, padded to three dimensions.
    pub fn new(
        channels: usize,
        in_size: &[usize],
        out_size: &[usize],
        kernel: &[usize],
        (stride, dilation, padding): (&[usize], &[usize], &[usize]),
    ) -> Geometry {
        let three = |values: &[usize], fill: u64| -> [u64; 3] {
            assert!(values.len() <= 3, "invariant: at most three spatial dimensions");
            let mut out = [fill; 3];
            for (slot, &v) in out[3 - values.len()..].iter_mut().zip(values) {
                *slot = v as u64;
            }
            out
        };
        Geometry {
            channels: channels as u64,
            in_size: three(in_size, 1),
            out_size: three(out_size, 1),
            kernel: three(kernel, 1),
            stride: three(stride, 1),
            dilation: three(dilation, 1),
            padding: three(padding, 0),
        }
    }

    /// Its words, in [`Geometry::WORDS`] order.
    pub fn words(&self) -> [u64; Geometry::WORDS] {
        let mut words = [0u64; Geometry::WORDS];
        words[0] = self.channels;
        let arrays = [
            self.in_size,
            self.out_size,
            self.kernel,
            self.stride,
            self.dilation,
            self.padding,
        ];
        for (i, array) in arrays.iter().enumerate() {
            words[1 + 3 * i..4 + 3 * i].copy_from_slice(array);
        }
        words
    }

    fn dims(&self) -> Dims {
        let u = |a: [u64; 3]| a.map(|v| v as usize);
        Dims {
            in_size: u(self.in_size),
            out_size: u(self.out_size),
            kernel: u(self.kernel),
            stride: u(self.stride),
            dilation: u(self.dilation),
            padding: u(self.padding),
        }
    }
}

/// The geometry in `usize`.
struct Dims {
    in_size: [usize; 3],
    out_size: [usize; 3],
    kernel: [usize; 3],
    stride: [usize; 3],
    dilation: [usize; 3],
    padding: [usize; 3],
}

impl Dims {
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    fn in_plane(&self) -> usize {
        self.in_size.iter().product()
    }

    fn out_plane(&self) -> usize {
        self.out_size.iter().product()
    }

    /// The input coordinate tap `k` of output coordinate `y` reads along dimension `d`, if
    /// it is inside the input.
    fn source(&self, d: usize, y: usize, k: usize) -> Option<usize> {
        let at = (y * self.stride[d] + k * self.dilation[d]).checked_sub(self.padding[d])?;
        (at < self.in_size[d]).then_some(at)
    }

    /// The output positions `lo .. hi` of a row (the last dimension) whose tap `k` reads
    /// inside the input, and the input coordinate position `lo` reads.
    fn inside_run(&self, k: usize) -> (usize, usize, usize) {
        let (stride, size) = (self.stride[2], self.in_size[2]);
        let offset = k * self.dilation[2];
        let pad = self.padding[2];
        // y * stride + offset - pad in [0, size): y >= ceil((pad - offset) / stride) and
        // y * stride + offset < size + pad.
        let lo = pad.saturating_sub(offset).div_ceil(stride);
        let hi = (size + pad).saturating_sub(offset).div_ceil(stride);
        let hi = hi.min(self.out_size[2]);
        let lo = lo.min(hi);
        (lo, hi, (lo * stride + offset).saturating_sub(pad))
    }

    /// Calls `row(tap, first position, the input row's start or None, (lo, hi, source))` for
    /// every row of output positions of every tap, taps in row-major order and rows in
    /// order: the walk im2col and col2im share.
    fn walk(&self, mut row: impl FnMut(usize, usize, Option<usize>, (usize, usize, usize))) {
        let [o0, o1, o2] = self.out_size;
        let [i1, i2] = [self.in_size[1], self.in_size[2]];
        let mut tap = 0;
        for k0 in 0..self.kernel[0] {
            for k1 in 0..self.kernel[1] {
                for k2 in 0..self.kernel[2] {
                    let run = self.inside_run(k2);
                    for y0 in 0..o0 {
                        for y1 in 0..o1 {
                            let first = (y0 * o1 + y1) * o2;
                            let source = self
                                .source(0, y0, k0)
                                .zip(self.source(1, y1, k1))
                                .map(|(z0, z1)| (z0 * i1 + z1) * i2);
                            row(tap, first, source, run);
                        }
                    }
                    tap += 1;
                }
            }
        }
    }
}

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
                out[lo..hi].copy_from_slice(&input[from..from + (hi - lo)]);
            } else {
                for (i, value) in out[lo..hi].iter_mut().enumerate() {
                    *value = input[from + i * stride];
                }
            }
        });
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
                let k = [tap / (d.kernel[1] * d.kernel[2]), tap / d.kernel[2] % d.kernel[1], tap % d.kernel[2]];
                for p in 0..out_plane {
                    let y = [p / (d.out_size[1] * d.out_size[2]), p / d.out_size[2] % d.out_size[1], p % d.out_size[2]];
                    let z: Option<Vec<usize>> = (0..3).map(|i| d.source(i, y[i], k[i])).collect();
                    columns[(c * taps + tap) * out_plane + p] = match z {
                        Some(z) => x[c * in_plane + (z[0] * d.in_size[1] + z[1]) * d.in_size[2] + z[2]],
                        None => 0.0,
                    };
                }
            }
        }
        columns
    }

    fn geometries() -> Vec<Geometry> {
        let mut out = Vec::new();
        for (stride, dilation, padding) in [(1, 1, 0), (1, 1, 1), (2, 1, 1), (1, 2, 2), (3, 2, 1), (2, 1, 3)] {
            for (in_size, kernel) in [(7usize, 3usize), (5, 1), (4, 4), (2, 3), (0, 1)] {
                let span = (kernel - 1) * dilation + 1;
                let Some(room) = (in_size + 2 * padding).checked_sub(span) else { continue };
                let out_size = room / stride + 1;
                out.push(Geometry::new(
                    2,
                    &[in_size, in_size + 1],
                    &[out_size, (in_size + 1 + 2 * padding - span) / stride + 1],
                    &[kernel, kernel],
                    (&[stride, stride], &[dilation, dilation], &[padding, padding]),
                ));
            }
        }
        out.push(Geometry::new(3, &[9], &[4], &[3], (&[2], &[1], &[0])));
        out.push(Geometry::new(1, &[3, 4, 5], &[3, 4, 5], &[3, 3, 3], (&[1, 1, 1], &[1, 1, 1], &[1, 1, 1])));
        out
    }

    #[test]
    fn im2col_reads_each_tap_where_the_definition_says() {
        for g in geometries() {
            let d = g.dims();
            let x: Vec<f32> = (0..g.channels as usize * d.in_plane()).map(|i| i as f32 + 1.0).collect();
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
            let columns: Vec<f32> = (0..rows * out_plane).map(|i| 1.0 / (i as f32 + 3.0)).collect();
            // The definition: every input element sums, from +0.0 in tap order, the column
            // values whose tap reads it.
            let x_index: Vec<f32> = (0..g.channels as usize * in_plane).map(|i| i as f32).collect();
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
