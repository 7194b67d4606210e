//! The verifier: checks a whole graph and reports every broken invariant, not just the first;
//! each error names the invariant it reports as data ([`Error::rule`], a [`Rule`]).
//!
//! The IR invariants:
//! 1. Every node has exactly as many operands as its op takes, at positions `0..arity`.
//! 2. Every node's stored type is what [`infer_type`] computes from its op and its operands'
//!    stored types (so attributes such as dropout `p`, axes and permutations are valid too).
//! 3. Node names are unique.
//! 4. The graph is acyclic (operands precede their users).
//! 5. Dropout streams are below 2^31 and no two dropout nodes share one.
//! 6. The graph has at least one output; output names are unique, and an output's name is
//!    no other node's.
//! 7. Every dropout mask describes a dropout of the graph: some dropout node draws the mask's
//!    stream (by 5 there is at most one), with the same kind, `p`, `broadcast_dims`,
//!    `sample_steps` and operand. This is the RNG contract's "a node that recomputes a mask
//!    carries the stream of the node it copies". Several masks may describe one dropout.
//! 8. Every dropout gradient recomputes one mask: its stream is below 2^31 and, if a dropout
//!    draws that stream, the gradient has its kind, `p`, `broadcast_dims`, `sample_steps`
//!    and input shape (its operand, the gradient, has the dropout's input shape); otherwise
//!    it agrees with the first dropout gradient on the stream in the same way. A gradient
//!    may share its dropout's stream (that is the point: the same draw) and need not have the
//!    dropout in the graph (dead-code elimination removes a forward dropout nothing reads;
//!    the mask is a function of seed, stream, step and these attributes alone).
//! 9. No node reads a buffer that an in-place op overwrites, besides that op (`graph/inplace.rs`:
//!    the operand it overwrites, views of it and earlier in-place results written over it);
//!    one error per buffer.
//!
//! [`Graph`]'s API keeps 1, 3, 4 and 6's uniqueness by construction; passes that rewrite ops
//! through [`Graph::op_mut`] can break 2, 5 and 7, which is why tests verify after every pass.
//! Invariant 9 is a property of the program rather than of its form, checked here so that
//! `check`, the interpreter and the compiler accept exactly the same programs.

use std::collections::{BTreeMap, HashSet};

use super::infer::infer_type;
use super::{Dropout, Graph, NodeId, Op, inplace};
use crate::error::{Error, Result, Rule};

/// Checks every invariant of `graph`; all failures come back together in one error.
pub fn verify(graph: &Graph) -> Result<()> {
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    let mut streams: BTreeMap<u32, NodeId> = BTreeMap::new();
    for id in graph.topo_order() {
        let node = &graph[id];
        if !names.insert(node.name.as_str()) {
            let detail = format!("two nodes are named {}", node.name);
            errors.push(invalid(graph, Rule::Names, detail));
        }
        let operands = graph.operands_of(id);
        let operand_types: Vec<_> = operands.iter().map(|&o| &graph[o].ty).collect();
        match infer_type(&node.op, &operand_types) {
            Ok(ty) if ty == node.ty => {}
            Ok(ty) => errors.push(invalid(
                graph,
                Rule::Types,
                format!(
                    "{} {} is typed {} but computes {}",
                    node.op, node.name, node.ty, ty
                ),
            )),
            Err(detail) => errors.push(Error::Type {
                node: node.name.clone(),
                op: node.op.name(),
                detail,
            }),
        }
        if let Op::Dropout(dropout) = &node.op {
            if let Some(&other) = streams.get(&dropout.stream) {
                errors.push(Error::DuplicateStream {
                    node: node.name.clone(),
                    op: node.op.name(),
                    stream: dropout.stream,
                    other: graph[other].name.clone(),
                });
            } else {
                streams.insert(dropout.stream, id);
            }
        }
    }
    let mut first_grads: BTreeMap<u32, NodeId> = BTreeMap::new();
    for id in graph.topo_order() {
        if let Op::DropoutMask(mask) = &graph[id].op
            && let Err(error) = check_mask(graph, &streams, id, mask)
        {
            errors.push(error);
        }
        if let Op::DropoutGrad(grad) = &graph[id].op {
            let reference = match streams.get(&grad.stream) {
                Some(&dropout) => Some(dropout),
                None => first_grads.get(&grad.stream).copied(),
            };
            first_grads.entry(grad.stream).or_insert(id);
            if let Some(reference) = reference
                && let Err(error) = check_grad(graph, id, grad, reference)
            {
                errors.push(error);
            }
        }
    }
    for output in graph.outputs() {
        if graph
            .find(&output.name)
            .is_some_and(|named| named != output.node)
        {
            errors.push(invalid(
                graph,
                Rule::Outputs,
                format!(
                    "output {} returns {}, but another node is named {}",
                    output.name, graph[output.node].name, output.name
                ),
            ));
        }
    }
    if graph.outputs().is_empty() {
        let detail = "the graph has no outputs".to_string();
        errors.push(invalid(graph, Rule::Outputs, detail));
    }
    for conflict in inplace::conflicts(graph) {
        let node = &graph[conflict.node];
        errors.push(Error::InplaceConflict {
            node: node.name.clone(),
            op: node.op.name(),
            input: graph[conflict.input].name.clone(),
            reader: graph[conflict.reader].name.clone(),
        });
    }
    match Error::from_list(errors) {
        None => Ok(()),
        Some(error) => Err(error),
    }
}

/// Invariant 7 for the mask node `id` with attributes `mask`; `streams` maps every dropout's
/// stream to its node.
fn check_mask(
    graph: &Graph,
    streams: &BTreeMap<u32, NodeId>,
    id: NodeId,
    mask: &Dropout,
) -> Result<()> {
    let node = &graph[id];
    let Some(&dropout_id) = streams.get(&mask.stream) else {
        return Err(Error::OrphanMask {
            node: node.name.clone(),
            op: node.op.name(),
            stream: mask.stream,
        });
    };
    let dropout = &graph[dropout_id];
    let d = dropout
        .op
        .as_dropout()
        .expect("invariant: the stream map holds dropouts");
    let (Some(&mask_operand), Some(&dropout_operand)) = (
        graph.operands_of(id).first(),
        graph.operands_of(dropout_id).first(),
    ) else {
        // A missing operand is invariant 2's error, reported already.
        return Ok(());
    };
    let name = |of: NodeId| format!("%{}", graph[of].name);
    let dims = |dims: &[usize]| format!("{dims:?}");
    // (what, equal, the mask's value, the dropout's value), compared as values, printed only
    // for the message.
    let differences = [
        (
            "kind",
            mask.kind == d.kind,
            mask.kind.to_string(),
            d.kind.to_string(),
        ),
        ("p", mask.p == d.p, mask.p.to_string(), d.p.to_string()),
        (
            "broadcast_dims",
            mask.broadcast_dims == d.broadcast_dims,
            dims(&mask.broadcast_dims),
            dims(&d.broadcast_dims),
        ),
        (
            "sample_steps",
            mask.sample_steps == d.sample_steps,
            mask.sample_steps.to_string(),
            d.sample_steps.to_string(),
        ),
        (
            "operand",
            mask_operand == dropout_operand,
            name(mask_operand),
            name(dropout_operand),
        ),
    ];
    match differences.into_iter().find(|(_, equal, _, _)| !equal) {
        None => Ok(()),
        Some((what, _, got, expected)) => Err(Error::MaskMismatch {
            node: node.name.clone(),
            op: node.op.name(),
            dropout: dropout.name.clone(),
            stream: mask.stream,
            what,
            values: format!("{got} vs {expected}"),
        }),
    }
}

/// Invariant 8 for the dropout gradient `id` with attributes `grad` against `reference`, the
/// dropout on its stream or the first gradient on it.
fn check_grad(graph: &Graph, id: NodeId, grad: &Dropout, reference: NodeId) -> Result<()> {
    let node = &graph[id];
    let other = &graph[reference];
    let d = other
        .op
        .drawn_dropout()
        .expect("invariant: the reference draws a mask");
    let input_shape = |of: NodeId| {
        let operand = graph.operands_of(of).first().copied();
        operand.map(|o| graph[o].ty.shape.clone())
    };
    let (shape, other_shape) = (input_shape(id), input_shape(reference));
    let dims = |dims: &[usize]| format!("{dims:?}");
    let shown =
        |s: &Option<crate::graph::Shape>| s.as_ref().map_or("none".into(), |s| s.to_string());
    let differences = [
        (
            "kind",
            grad.kind == d.kind,
            grad.kind.to_string(),
            d.kind.to_string(),
        ),
        ("p", grad.p == d.p, grad.p.to_string(), d.p.to_string()),
        (
            "broadcast_dims",
            grad.broadcast_dims == d.broadcast_dims,
            dims(&grad.broadcast_dims),
            dims(&d.broadcast_dims),
        ),
        (
            "sample_steps",
            grad.sample_steps == d.sample_steps,
            grad.sample_steps.to_string(),
            d.sample_steps.to_string(),
        ),
        (
            "shape",
            shape == other_shape,
            shown(&shape),
            shown(&other_shape),
        ),
    ];
    match differences.into_iter().find(|(_, equal, _, _)| !equal) {
        None => Ok(()),
        Some((what, _, got, expected)) => Err(Error::GradMismatch {
            node: node.name.clone(),
            op: node.op.name(),
            other: other.name.clone(),
            stream: grad.stream,
            what,
            values: format!("{got} vs {expected}"),
        }),
    }
}

fn invalid(graph: &Graph, rule: Rule, detail: String) -> Error {
    Error::Invalid {
        graph: graph.name().to_string(),
        rule,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Dropout, DropoutKind, TensorType};

    #[test]
    fn reports_every_broken_invariant() {
        let mut g = Graph::new("bad");
        let x = g.add("x", Op::Input(TensorType::f32([4, 8])), &[]).unwrap();
        let d1 = g
            .add(
                "d1",
                Op::Dropout(Dropout::new(DropoutKind::Dropout, 0.5, 0)),
                &[x],
            )
            .unwrap();
        let d2 = g
            .add(
                "d2",
                Op::Dropout(Dropout::new(DropoutKind::Dropout, 0.5, 1)),
                &[d1],
            )
            .unwrap();
        // A pass rewrites attributes badly: a shared stream and an invalid p.
        if let Op::Dropout(d) = g.op_mut(d2).unwrap() {
            d.stream = 0;
        }
        if let Op::Dropout(d) = g.op_mut(d1).unwrap() {
            d.p = 1.5;
        }
        let err = verify(&g).unwrap_err();
        let lines: Vec<String> = err.flatten().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            [
                "dropout d1: dropout probability has to be between 0 and 1, but got 1.5",
                "dropout d2: stream 0 is already used by d1",
                "graph bad: the graph has no outputs",
            ]
        );
        // Each names its invariant as data.
        let rules: Vec<Option<Rule>> = err.flatten().iter().map(|e| e.rule()).collect();
        let expected = [Rule::Types, Rule::Streams, Rule::Outputs].map(Some);
        assert_eq!(rules, expected);
    }

    #[test]
    fn accepts_a_well_formed_graph() {
        let mut g = Graph::new("ok");
        let x = g.add("x", Op::Input(TensorType::f32([4, 8])), &[]).unwrap();
        let d = g
            .add(
                "d",
                Op::Dropout(Dropout::new(DropoutKind::Dropout, 0.5, 0)),
                &[x],
            )
            .unwrap();
        g.add_output("y", d).unwrap();
        verify(&g).unwrap();
    }
}
