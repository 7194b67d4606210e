//! The printer: `impl Display for Graph` writes the textual IR that [`super::parse`] reads back.
//!
//! Nodes come in [`Graph::topo_order`], one per line with a two-space indent and every type
//! annotation; attributes follow their op's fixed key order and are left out where they hold
//! their default; `output` lines come last. Printing then parsing gives back an equal graph.

use std::fmt;

use crate::graph::{Graph, Op};
use crate::tensor::{Tensor, TensorData, format_f32};

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph {} {{", self.name())?;
        for id in self.topo_order() {
            let node = self.node(id);
            write!(f, "  %{}: {} = {}", node.name, node.ty, node.op.name())?;
            for (i, operand) in self.operands(id).into_iter().enumerate() {
                let separator = if i == 0 { " " } else { ", " };
                write!(f, "{separator}%{}", self.node(operand).name)?;
            }
            if let Op::Constant(value) = &node.op {
                write!(f, " {}", literal(value))?;
            }
            let attributes = attributes(&node.op);
            if !attributes.is_empty() {
                let pairs: Vec<String> = attributes
                    .iter()
                    .map(|(key, value)| format!("{key} = {value}"))
                    .collect();
                write!(f, " {{{}}}", pairs.join(", "))?;
            }
            writeln!(f)?;
        }
        for output in self.outputs() {
            writeln!(
                f,
                "  output {} = %{}",
                output.name,
                self.node(output.node).name
            )?;
        }
        writeln!(f, "}}")
    }
}

/// The attributes of `op` that differ from their defaults, as `(key, printed value)` in the
/// fixed key order of [`super::attrs::attribute_keys`]. A dropout's stream is always shown.
pub(crate) fn attributes(op: &Op) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    match op {
        Op::Dropout(dropout) => {
            // `{}` prints an f64 as the shortest decimal that parses back to it.
            pairs.push(("p", format!("{}", dropout.p)));
            if dropout.inplace {
                pairs.push(("inplace", "true".to_string()));
            }
            if !dropout.broadcast_dims.is_empty() {
                pairs.push(("broadcast_dims", list(&dropout.broadcast_dims)));
            }
            pairs.push(("stream", dropout.stream.to_string()));
        }
        Op::DropoutMask(mask) | Op::DropoutGrad(mask) => {
            // Masks and gradients are never in place (type inference rejects it), so
            // `inplace` is no key.
            pairs.push(("p", format!("{}", mask.p)));
            if !mask.broadcast_dims.is_empty() {
                pairs.push(("broadcast_dims", list(&mask.broadcast_dims)));
            }
            pairs.push(("stream", mask.stream.to_string()));
        }
        Op::Reduce { axes, keepdim, .. } => {
            if !axes.is_empty() {
                pairs.push(("axes", list(axes)));
            }
            if *keepdim {
                pairs.push(("keepdim", "true".to_string()));
            }
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => pairs.push(("axis", axis.to_string())),
        Op::Reshape { shape } => pairs.push(("shape", list(shape))),
        Op::Expand { shape } => pairs.push(("shape", list(shape))),
        Op::Transpose { perm } => pairs.push(("perm", list(perm))),
        Op::Input(_)
        | Op::Parameter(_)
        | Op::Constant(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::MatMul
        | Op::Linear { .. }
        | Op::CrossEntropy
        | Op::CrossEntropyGrad => {}
    }
    pairs
}

/// `[a, b, c]`.
fn list<T: fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A constant's value: a bare number for a scalar, else the flat row-major list.
pub(crate) fn literal(value: &Tensor) -> String {
    let items: Vec<String> = match value.data() {
        TensorData::F32(v) => v.iter().map(|&x| format_f32(x)).collect(),
        TensorData::I32(v) => v.iter().map(i32::to_string).collect(),
        TensorData::Bool(v) => v.iter().map(bool::to_string).collect(),
    };
    if value.shape().rank() == 0 {
        items.concat()
    } else {
        format!("[{}]", items.join(", "))
    }
}
