//! Layout simplification: reshapes and transposes that move no data, or that chain, are
//! rewritten away.
//!
//! What it changes, visiting nodes operands-first:
//! - `reshape(reshape(x, s1), s2) -> reshape(x, s2)`: a reshape only reinterprets row-major
//!   order, so the middle shape never matters (a `-1` in `s2` resolves the same way, from the
//!   same element count);
//! - `transpose(transpose(x, p), q) -> transpose(x, r)` with `r[i] = p[q[i]]`: output dimension
//!   `i` is the middle's dimension `q[i]`, which is `x`'s dimension `p[q[i]]`;
//! - `reshape(x, s) -> x` when the result has `x`'s shape, and `transpose(x, [0, 1, ..]) -> x`:
//!   the identity, so users and outputs read `x` and the node goes.
//!
//! What it leaves alone: every other node, and the inner node of a collapsed chain, which keeps
//! its other users (dead-code elimination removes it if none are left). Each rewritten node
//! keeps its name. The values are bit for bit the same: no arithmetic is involved.

use super::Stats;
use crate::graph::{Graph, NodeId, Op, inplace};

/// Collapses reshape and transpose chains and removes identity reshapes and transposes.
pub fn simplify_layout(graph: &mut Graph) -> Stats {
    let mut stats = Stats::default();
    for id in graph.topo_order() {
        let is_identity = match graph[id].op.clone() {
            Op::Reshape { .. } => {
                collapse_reshapes(graph, id, &mut stats);
                let input = graph.operands_of(id)[0];
                graph[input].ty == graph[id].ty
            }
            Op::Transpose { perm } => {
                let perm = collapse_transposes(graph, id, perm, &mut stats);
                perm.iter().enumerate().all(|(i, &p)| i == p)
            }
            // Every other op moves data or computes: not a layout to simplify.
            _ => false,
        };
        if is_identity {
            // reshape(x, shape of x) -> x;  transpose(x, identity) -> x
            let input = graph.operands_of(id)[0];
            graph.replace_all_uses(id, input);
            graph.remove(id);
            stats.removed += 1;
        }
    }
    // An in-place dropout that overwrote an identity transpose's copy now reads `x` itself,
    // which others may read too: it writes a buffer of its own instead.
    stats.rewired += inplace::withdraw_conflicts(graph);
    stats
}

/// `reshape(reshape(x, s1), s2) -> reshape(x, s2)`. The operand was visited first, so it is
/// itself no longer a reshape of a reshape: one step collapses a whole chain.
fn collapse_reshapes(graph: &mut Graph, id: NodeId, stats: &mut Stats) {
    let inner = graph.operands_of(id)[0];
    if let Op::Reshape { .. } = graph[inner].op {
        let x = graph.operands_of(inner)[0];
        graph.set_operand(id, 0, x);
        stats.rewired += 1;
    }
}

/// `transpose(transpose(x, p), q) -> transpose(x, r)`, `r[i] = p[q[i]]`; returns the node's
/// permutation afterwards.
fn collapse_transposes(
    graph: &mut Graph,
    id: NodeId,
    outer: Vec<usize>,
    stats: &mut Stats,
) -> Vec<usize> {
    let inner = graph.operands_of(id)[0];
    let Op::Transpose { perm: inner_perm } = &graph[inner].op else {
        return outer;
    };
    let perm: Vec<usize> = outer.iter().map(|&q| inner_perm[q]).collect();
    let x = graph.operands_of(inner)[0];
    graph.rewrite(id, Op::Transpose { perm: perm.clone() }, &[x]);
    stats.rewired += 1;
    perm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{TensorType, UnaryOp, verify::verify};

    fn input(g: &mut Graph, dims: &[usize]) -> NodeId {
        g.add("x", Op::Input(TensorType::f32(dims.to_vec())), &[])
            .unwrap()
    }

    fn reshape(g: &mut Graph, name: &str, shape: &[i64], x: NodeId) -> NodeId {
        let op = Op::Reshape {
            shape: shape.to_vec(),
        };
        g.add(name, op, &[x]).unwrap()
    }

    fn transpose(g: &mut Graph, name: &str, perm: &[usize], x: NodeId) -> NodeId {
        let op = Op::Transpose {
            perm: perm.to_vec(),
        };
        g.add(name, op, &[x]).unwrap()
    }

    #[test]
    fn collapses_a_reshape_chain_and_keeps_the_outer_name() {
        let mut g = Graph::new("g");
        let x = input(&mut g, &[2, 6]);
        let a = reshape(&mut g, "a", &[3, 4], x);
        let b = reshape(&mut g, "b", &[4, -1], a);
        let c = reshape(&mut g, "c", &[12], b);
        let other = g.add("other", Op::Unary(UnaryOp::Neg), &[a]).unwrap();
        g.add_output("c", c).unwrap();
        g.add_output("other", other).unwrap();
        let stats = simplify_layout(&mut g);
        assert_eq!(
            stats,
            Stats {
                removed: 0,
                rewired: 2
            }
        );
        verify(&g).unwrap();
        assert_eq!(g.operands_of(c), vec![x]);
        assert_eq!(g.operands_of(b), vec![x]);
        assert_eq!(
            g.users_of(a),
            vec![other],
            "the inner reshape keeps its other user"
        );
    }

    #[test]
    fn removes_identity_reshapes_and_transposes() {
        let mut g = Graph::new("g");
        let x = input(&mut g, &[2, 3]);
        let same = reshape(&mut g, "same", &[2, -1], x);
        let id = transpose(&mut g, "id", &[0, 1], same);
        let y = g.add("y", Op::Unary(UnaryOp::Exp), &[id]).unwrap();
        g.add_output("y", y).unwrap();
        g.add_output("id", id).unwrap();
        assert_eq!(
            simplify_layout(&mut g),
            Stats {
                removed: 2,
                rewired: 0
            }
        );
        verify(&g).unwrap();
        assert_eq!(g.operands_of(y), vec![x]);
        assert_eq!(g.outputs()[1].node, x);
        assert!(g.find("same").is_none() && g.find("id").is_none());
    }

    #[test]
    fn composes_transposes_and_drops_a_pair_that_cancels() {
        let mut g = Graph::new("g");
        let x = input(&mut g, &[2, 3, 4]);
        let t1 = transpose(&mut g, "t1", &[2, 0, 1], x); // [4, 2, 3]
        let t2 = transpose(&mut g, "t2", &[0, 2, 1], t1); // [4, 3, 2]
        let back = transpose(&mut g, "back", &[2, 1, 0], t2); // [2, 3, 4]
        g.add_output("t2", t2).unwrap();
        g.add_output("back", back).unwrap();
        assert_eq!(
            simplify_layout(&mut g),
            Stats {
                removed: 1,
                rewired: 2
            }
        );
        verify(&g).unwrap();
        // t2 reads x directly: its dimension i is x's p[q[i]] = [2, 0, 1][[0, 2, 1][i]].
        assert_eq!(
            g[t2].op,
            Op::Transpose {
                perm: vec![2, 1, 0]
            }
        );
        assert_eq!(g.operands_of(t2), vec![x]);
        // back(t2(x)) composes to the identity and goes.
        assert_eq!(g.outputs()[1].node, x);
    }

    #[test]
    fn an_in_place_request_the_removal_makes_unsafe_is_withdrawn() {
        // `d` overwrites the identity transpose's copy; once that goes, `d` would overwrite
        // `x`, which `s` reads: it writes a buffer of its own instead, values unchanged.
        let mut g = Graph::new("g");
        let x = input(&mut g, &[2, 3]);
        let t = transpose(&mut g, "t", &[0, 1], x);
        let mut dropout = crate::graph::Dropout::new(crate::graph::DropoutKind::Dropout, 0.5, 0);
        dropout.inplace = true;
        let d = g.add("d", Op::Dropout(dropout), &[t]).unwrap();
        let s = g.add("s", Op::Unary(UnaryOp::Neg), &[x]).unwrap();
        g.add_output("d", d).unwrap();
        g.add_output("s", s).unwrap();
        verify(&g).unwrap();
        let stats = simplify_layout(&mut g);
        assert_eq!((stats.removed, stats.rewired), (1, 1));
        assert_eq!(g.operands_of(d), vec![x]);
        assert_eq!(g[d].op.reads_in_place(), None);
        verify(&g).unwrap();
    }
}
