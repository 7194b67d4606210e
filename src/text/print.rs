//! The printer: `impl Display for Graph` writes the textual IR that [`super::parse()`] reads back.
//!
//! Nodes come in [`Graph::topo_order`], one per line with a two-space indent and every type
//! annotation; attributes follow their op's fixed key order (`super::ops`) and
//! are left out where they hold their default; `output` lines come last. Printing then parsing gives back an equal graph.

use std::fmt;

use super::ops::attributes;
use crate::graph::{Graph, Op};
use crate::tensor::{Tensor, TensorData, format_f32};

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph {} {{", self.name())?;
        for id in self.topo_order() {
            let node = &self[id];
            write!(f, "  %{}: {} = {}", node.name, node.ty, node.op.name())?;
            for (i, operand) in self.operands_of(id).into_iter().enumerate() {
                let separator = if i == 0 { " " } else { ", " };
                write!(f, "{separator}%{}", self[operand].name)?;
            }
            if let Op::Constant(value) = &node.op {
                write!(f, " {}", literal(value))?;
            }
            let pairs: Vec<String> = (attributes(&node.op).into_iter())
                .filter_map(|(key, value)| Some(format!("{key} = {}", value?)))
                .collect();
            if !pairs.is_empty() {
                write!(f, " {{{}}}", pairs.join(", "))?;
            }
            writeln!(f)?;
        }
        for output in self.outputs() {
            writeln!(f, "  output {} = %{}", output.name, self[output.node].name)?;
        }
        writeln!(f, "}}")
    }
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
