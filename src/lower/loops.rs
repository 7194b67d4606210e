//! The loop helpers every loop of generated code comes from, methods of [`LowerCx`]; the
//! module docs of [`super`] say why each has the shape it has.

use cranelift_codegen::ir::{InstBuilder, Value, condcodes};

use super::LowerCx;

impl LowerCx<'_> {
    /// `for i in 0..n { body(i) }` as a guarded do-while loop (see the module docs).
    pub fn counted_loop(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Value)) {
        if n == 0 {
            return;
        }
        let zero = self.index(0);
        if n == 1 {
            body(self, zero);
            return;
        }
        let looped = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(looped, self.ptr);
        self.b.ins().jump(looped, &[zero.into()]);
        self.b.switch_to_block(looped);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, 1);
        let more = self
            .b
            .ins()
            .icmp_imm_s(condcodes::IntCC::UnsignedLessThan, next, n as i64);
        self.b.ins().brif(more, looped, &[next.into()], exit, &[]);
        self.b.seal_block(looped);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// `for i in start..stop { body(i) }` over run-time bounds, as a do-while loop behind one
    /// guard.
    pub fn range_loop(
        &mut self,
        start: Value,
        stop: Value,
        body: &mut dyn FnMut(&mut Self, Value),
    ) {
        let looped = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(looped, self.ptr);
        let any = self
            .b
            .ins()
            .icmp(condcodes::IntCC::UnsignedLessThan, start, stop);
        self.b.ins().brif(any, looped, &[start.into()], exit, &[]);
        self.b.switch_to_block(looped);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, 1);
        let more = self
            .b
            .ins()
            .icmp(condcodes::IntCC::UnsignedLessThan, next, stop);
        self.b.ins().brif(more, looped, &[next.into()], exit, &[]);
        self.b.seal_block(looped);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// Like [`LowerCx::strided_loop`], over the row-major positions `[start, stop)` of `dims`
    /// only (`stop` at most the element count).
    pub fn strided_range(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        (start, stop): (Value, Value),
        body: &mut dyn FnMut(&mut Self, &[Value]),
    ) {
        let (dims, strides) = simplify(dims, strides);
        let last: Vec<usize> = strides
            .iter()
            .map(|s| s.last().copied().unwrap_or(0))
            .collect();
        self.strided_segments(&dims, &strides, (start, stop), &mut |cx, at, count| {
            let zero = cx.index(0);
            cx.range_loop(zero, count, &mut |cx, j| {
                let moved: Vec<Value> = (at.iter().zip(&last))
                    .map(|(&offset, &stride)| match stride {
                        0 => offset,
                        stride => {
                            let step = cx.b.ins().imul_imm_s(j, stride as i64);
                            cx.b.ins().iadd(offset, step)
                        }
                    })
                    .collect();
                body(cx, &moved);
            });
        });
    }

    /// Walks the row-major positions `[start, stop)` of `dims` (`stop` at most the element
    /// count) in segments along the last dimension: `segment(offsets, count)` gets the offsets
    /// of a segment's first position (one per entry of `strides`) and its length (at least
    /// 1); the segment's further positions step by each operand's last stride. A shape of rank
    /// 0 or 1 is one segment, without a loop.
    pub fn strided_segments(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        (start, stop): (Value, Value),
        segment: &mut dyn FnMut(&mut Self, &[Value], Value),
    ) {
        if dims.contains(&0) {
            return;
        }
        let (last, outer) = dims.split_last().map_or((1, &[][..]), |(&l, o)| (l, o));
        let any = (self.b.ins()).icmp(condcodes::IntCC::UnsignedLessThan, start, stop);
        let exit = self.b.create_block();
        if outer.is_empty() {
            let once = self.b.create_block();
            self.b.ins().brif(any, once, &[], exit, &[]);
            self.b.switch_to_block(once);
            self.b.seal_block(once);
            let offsets = self.segment_offsets(start, None, strides);
            let count = self.b.ins().isub(stop, start);
            segment(self, &offsets, count);
            self.b.ins().jump(exit, &[]);
        } else {
            let looped = self.b.create_block();
            let i = self.b.append_block_param(looped, self.ptr);
            self.b.ins().brif(any, looped, &[start.into()], exit, &[]);
            self.b.switch_to_block(looped);
            // i = row * last + column: a segment runs to the row's end or to `stop`.
            let row = self.b.ins().udiv_imm_u(i, last as i64);
            let whole = self.b.ins().imul_imm_u(row, last as i64);
            let column = self.b.ins().isub(i, whole);
            let offsets = self.segment_offsets(column, Some((row, outer)), strides);
            let last = self.index(last);
            let in_row = self.b.ins().isub(last, column);
            let left = self.b.ins().isub(stop, i);
            let count = self.b.ins().umin(in_row, left);
            segment(self, &offsets, count);
            let next = self.b.ins().iadd(i, count);
            let more = (self.b.ins()).icmp(condcodes::IntCC::UnsignedLessThan, next, stop);
            self.b.ins().brif(more, looped, &[next.into()], exit, &[]);
            self.b.seal_block(looped);
        }
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// The offsets of the position at `column` of the last dimension and (if given) row `row`
    /// of the `outer` dimensions, one per entry of `strides`. The row's coordinates come from
    /// dividing by the outer dimensions, innermost first (once per segment, not per element).
    fn segment_offsets(
        &mut self,
        column: Value,
        row: Option<(Value, &[usize])>,
        strides: &[Vec<usize>],
    ) -> Vec<Value> {
        let mut offsets: Vec<Value> = (strides.iter())
            .map(|s| {
                let stride = s.last().copied().unwrap_or(0);
                self.b.ins().imul_imm_u(column, stride as i64)
            })
            .collect();
        let Some((mut rest, outer)) = row else {
            return offsets;
        };
        for d in (0..outer.len()).rev() {
            let coordinate = if d == 0 {
                rest
            } else {
                let next = self.b.ins().udiv_imm_u(rest, outer[d] as i64);
                let whole = self.b.ins().imul_imm_u(next, outer[d] as i64);
                let coordinate = self.b.ins().isub(rest, whole);
                rest = next;
                coordinate
            };
            for (offset, s) in offsets.iter_mut().zip(strides) {
                if s[d] != 0 {
                    let step = self.b.ins().imul_imm_u(coordinate, s[d] as i64);
                    *offset = self.b.ins().iadd(*offset, step);
                }
            }
        }
        offsets
    }

    /// Walks `dims` row-major; the body gets, for each element, one offset (in elements) per
    /// entry of `strides`, the sum of coordinate times stride over the dimensions.
    pub fn strided_loop(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        body: &mut dyn FnMut(&mut Self, &[Value]),
    ) {
        if dims.contains(&0) {
            return;
        }
        let (dims, strides) = simplify(dims, strides);
        let zero = self.index(0);
        let start = vec![zero; strides.len()];
        self.nest(&dims, &strides, &start, body);
    }

    fn nest(
        &mut self,
        dims: &[usize],
        strides: &[Vec<usize>],
        offsets: &[Value],
        body: &mut dyn FnMut(&mut Self, &[Value]),
    ) {
        let Some((&n, inner_dims)) = dims.split_first() else {
            body(self, offsets);
            return;
        };
        self.counted_loop(n, &mut |cx, i| {
            let moved: Vec<Value> = offsets
                .iter()
                .zip(strides)
                .map(|(&offset, s)| match s[0] {
                    0 => offset,
                    stride => {
                        let step = cx.b.ins().imul_imm_s(i, stride as i64);
                        cx.b.ins().iadd(offset, step)
                    }
                })
                .collect();
            let inner: Vec<Vec<usize>> = strides.iter().map(|s| s[1..].to_vec()).collect();
            cx.nest(inner_dims, &inner, &moved, body);
        });
    }
}

/// Drops dimensions of size 1 and merges neighbours that every operand walks contiguously
/// (`stride[d] == stride[d + 1] * dims[d + 1]`), so loops nest no deeper than they must.
fn simplify(dims: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for d in (0..dims.len()).filter(|&d| dims[d] != 1) {
        let mergeable = out_dims.last().is_some_and(|_| {
            strides
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| *o.last().expect("a kept dimension has strides") == s[d] * dims[d])
        });
        if mergeable {
            *out_dims.last_mut().expect("checked above") *= dims[d];
            for (s, o) in strides.iter().zip(&mut out_strides) {
                *o.last_mut().expect("checked above") = s[d];
            }
        } else {
            out_dims.push(dims[d]);
            for (s, o) in strides.iter().zip(&mut out_strides) {
                o.push(s[d]);
            }
        }
    }
    (out_dims, out_strides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_merges_contiguous_dimensions_and_drops_ones() {
        let (dims, strides) = simplify(&[2, 1, 3, 4], &[vec![12, 12, 4, 1], vec![0, 0, 1, 0]]);
        assert_eq!(dims, [2, 3, 4]);
        assert_eq!(strides, [vec![12, 4, 1], vec![0, 1, 0]]);
        let (dims, strides) = simplify(&[2, 3, 4], &[vec![12, 4, 1]]);
        assert_eq!((dims, strides), (vec![24], vec![vec![1]]));
        let (dims, strides) = simplify(&[1, 1], &[vec![1, 1]]);
        assert_eq!((dims, strides), (vec![], vec![vec![]]));
    }
}
