//! Transposes folded into the products that read them: `matmul(transpose(x), y)` reads `x` in
//! place, as a `matmul` with `transpose_a` (and likewise `transpose_b`), so the GEMM reads the
//! operand through its strides and no transposed copy is made.
//!
//! What it changes: each operand of a `matmul` that is a `transpose` swapping the last two
//! dimensions (and only those) is replaced by the transpose's operand, and the matmul's flag
//! for it flips (a flag already set and a transpose cancel). What it leaves alone: every other
//! transpose (it moves batch dimensions, which the GEMM cannot read in place), and the
//! transpose node itself, which keeps its other users (dead-code elimination removes it if none
//! are left). Each product computes the same sums in the same order: the values are bit for bit
//! the same.

use super::Stats;
use crate::graph::{Graph, NodeId, Op, inplace};

/// Folds last-two-dimension transposes into the `matmul`s that read them.
pub fn fold_transpose(graph: &mut Graph) -> Stats {
    let mut stats = Stats::default();
    for id in graph.topo_order() {
        let Op::MatMul {
            transpose_a,
            transpose_b,
        } = graph[id].op
        else {
            continue;
        };
        let mut operands = graph.operands_of(id);
        let mut flags = [transpose_a, transpose_b];
        for (operand, flag) in operands.iter_mut().zip(&mut flags) {
            if let Some(x) = swapped_last_two(graph, *operand) {
                *operand = x;
                *flag = !*flag;
            }
        }
        if flags != [transpose_a, transpose_b] {
            let op = Op::MatMul {
                transpose_a: flags[0],
                transpose_b: flags[1],
            };
            graph.rewrite(id, op, &operands);
            stats.rewired += 1;
        }
    }
    // A product that now reads `x` itself may read it after an in-place dropout overwrote it:
    // that dropout writes a buffer of its own instead.
    stats.rewired += inplace::withdraw_conflicts(graph);
    stats
}

/// `x` if `id` is `transpose(x)` swapping `x`'s last two dimensions and nothing else.
fn swapped_last_two(graph: &Graph, id: NodeId) -> Option<NodeId> {
    let Op::Transpose { perm } = &graph[id].op else {
        return None;
    };
    let rank = perm.len();
    let swaps_last_two = rank >= 2
        && (perm.iter().enumerate()).all(|(i, &p)| match i {
            _ if i == rank - 2 => p == rank - 1,
            _ if i == rank - 1 => p == rank - 2,
            _ => p == i,
        });
    swaps_last_two.then(|| graph.operands_of(id)[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{TensorType, verify::verify};
    use crate::passes::eliminate_dead_code;

    /// `c = matmul(a, b)` with inputs of these shapes, each read through a transpose where
    /// one is given.
    fn product(
        shapes: [&[usize]; 2],
        transposes: [Option<Vec<usize>>; 2],
        flags: (bool, bool),
    ) -> Graph {
        let mut g = Graph::new("g");
        let [a, b] = [("a", shapes[0]), ("b", shapes[1])].map(|(name, dims)| {
            g.add(name, Op::Input(TensorType::f32(dims.to_vec())), &[])
                .unwrap()
        });
        let mut operands = [a, b];
        for (i, (operand, perm)) in operands.iter_mut().zip(transposes).enumerate() {
            if let Some(perm) = perm {
                let t = Op::Transpose { perm };
                *operand = g.add(format!("t{i}"), t, &[*operand]).unwrap();
            }
        }
        let op = Op::MatMul {
            transpose_a: flags.0,
            transpose_b: flags.1,
        };
        let c = g.add("c", op, &operands).unwrap();
        g.add_output("c", c).unwrap();
        g
    }

    fn folded(mut g: Graph) -> (Graph, Stats) {
        let stats = fold_transpose(&mut g);
        eliminate_dead_code(&mut g);
        verify(&g).unwrap();
        (g, stats)
    }

    #[test]
    fn a_transposed_operand_is_read_in_place() {
        // aᵀ @ b with a: [2, 3, 4] -> [2, 4, 5], the transpose gone.
        let shapes: [&[usize]; 2] = [&[2, 3, 4], &[2, 3, 5]];
        let (g, stats) = folded(product(shapes, [Some(vec![0, 2, 1]), None], (false, false)));
        assert_eq!(stats.rewired, 1);
        let text = g.to_string();
        assert!(
            text.contains("matmul %a, %b {transpose_a = true}"),
            "{text}"
        );
        assert!(!text.contains("transpose %"), "{text}");
    }

    #[test]
    fn a_transpose_and_a_flag_cancel() {
        // b is [2, 3, 5]; transposed twice it is b again: a @ ... needs a: [2, 3, 4] as
        // [2, 4, 3] on the left, so transpose a by flag and b by both.
        let shapes: [&[usize]; 2] = [&[2, 3, 4], &[2, 3, 5]];
        let (g, _) = folded(product(shapes, [None, Some(vec![0, 2, 1])], (true, true)));
        let text = g.to_string();
        assert!(
            text.contains("matmul %a, %b {transpose_a = true}"),
            "{text}"
        );
    }

    #[test]
    fn transposes_of_batch_dimensions_stay() {
        let shapes: [&[usize]; 2] = [&[3, 2, 4], &[2, 4, 5]];
        let g = product(shapes, [Some(vec![1, 0, 2]), None], (false, false));
        let (g, stats) = folded(g);
        assert_eq!(stats, Stats::default());
        assert!(g.to_string().contains("transpose %a"), "{g}");
    }
}
