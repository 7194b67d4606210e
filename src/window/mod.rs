//! Sliding-window kernels for generated code to call, rustc-compiled: a convolution's im2col
//! and col2im ([`columns`]) and max pooling with its gradient ([`pool`]). Each walks one
//! window geometry ([`Geometry`]), written once for three spatial dimensions (a window of
//! fewer has leading dimensions of size 1), and each does exactly what its op's definition
//! does in the same order, so generated code calling it gives the interpreter's bits.
//!
//! The only `unsafe`: the raw buffers generated code hands over, sized by the plan from the
//! verified shapes the geometry is made of.

pub mod columns;
pub mod pool;

/// A window over one image, as generated code passes it (a pointer to these words): its
/// input channels (or planes), then per spatial dimension (three, the unused leading ones of
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
            assert!(
                values.len() <= 3,
                "invariant: at most three spatial dimensions"
            );
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
