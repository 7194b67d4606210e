//! Graphviz DOT rendering of a graph, as a value: `graph.dot().to_string()`.
//!
//! Each node is a box labelled with its name, op, attributes and type; inputs, parameters and
//! constants have shapes of their own, dropout-family nodes are filled (alpha variants in a
//! second colour) and bold. Edges run from operand to user, labelled with the operand position
//! when the op takes more than one operand. Outputs are plaintext nodes. The output depends
//! only on the graph, so it can be snapshot-tested.

use std::fmt;

use super::ops::attributes;
use super::print::literal;
use crate::graph::{Graph, Leaf, Op};

/// A graph's DOT text; see [`Graph::dot`].
pub struct Dot<'a> {
    graph: &'a Graph,
}

impl Graph {
    /// The graph in Graphviz DOT, as a value that implements `Display`.
    pub fn dot(&self) -> Dot<'_> {
        Dot { graph: self }
    }
}

/// The largest constant whose values the label shows.
const MAX_SHOWN_ELEMENTS: usize = 8;

impl fmt::Display for Dot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let graph = self.graph;
        writeln!(f, "digraph {} {{", quote(graph.name()))?;
        writeln!(f, "  node [shape=box, fontname=\"monospace\"];")?;
        let order = graph.topo_order();
        for &id in &order {
            let node = &graph[id];
            let mut label = vec![node.name.clone(), node.op.name().to_string()];
            for (key, value) in attributes(&node.op) {
                if let Some(value) = value {
                    label.push(format!("{key} = {value}"));
                }
            }
            if let Op::Constant(value) = &node.op
                && value.numel() <= MAX_SHOWN_ELEMENTS
            {
                label.push(literal(value));
            }
            label.push(node.ty.to_string());
            writeln!(
                f,
                "  n{} [label={}{}];",
                id.index(),
                quote(&label.join("\n")),
                style(&node.op)
            )?;
        }
        for &id in &order {
            let operands = graph.operands_of(id);
            for (position, operand) in operands.iter().enumerate() {
                write!(f, "  n{} -> n{}", operand.index(), id.index())?;
                if operands.len() > 1 {
                    write!(f, " [label=\"{position}\"]")?;
                }
                writeln!(f, ";")?;
            }
        }
        for (i, output) in graph.outputs().iter().enumerate() {
            let label = quote(&format!("output {}", output.name));
            writeln!(f, "  out{i} [label={label}, shape=plaintext];")?;
            writeln!(f, "  n{} -> out{i} [style=dashed];", output.node.index())?;
        }
        writeln!(f, "}}")
    }
}

/// The attributes that set a node's look apart from the default box: a shape per leaf, a
/// fill for the dropout family (alpha variants in a second colour; masks dashed; gradients
/// plain).
fn style(op: &Op) -> &'static str {
    if let Some(leaf) = op.leaf() {
        return match leaf {
            Leaf::Input => ", shape=invhouse",
            Leaf::Parameter => ", shape=cylinder",
            Leaf::Constant => ", shape=note",
        };
    }
    let Some(d) = op.draws() else {
        return "";
    };
    if op.is_dropout() && d.kind.is_alpha() {
        ", style=\"filled,bold\", fillcolor=\"#c2a5cf\""
    } else if op.is_dropout() {
        ", style=\"filled,bold\", fillcolor=\"#fdb863\""
    } else if op.as_dropout_mask().is_some() {
        ", style=\"filled,dashed\", fillcolor=\"#fee0b6\""
    } else {
        ", style=\"filled\", fillcolor=\"#fee0b6\""
    }
}

/// A DOT string literal: quotes and backslashes escaped, line breaks as `\n`.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use crate::text::parse;

    #[test]
    fn marks_dropout_nodes_and_outputs() {
        let graph = parse(
            "graph net {\n  %x: f32[4, 8] = input\n  %w: f32[2, 8] = parameter\n  \
             %h: f32[4, 2] = linear %x, %w\n  %d: f32[4, 2] = dropout %h {p = 0.25, stream = 3}\n  \
             output y = %d\n}\n",
        )
        .expect("valid program");
        let dot = graph.dot().to_string();
        assert!(dot.starts_with("digraph \"net\" {\n"), "{dot}");
        assert!(
            dot.contains(
                "[label=\"d\\ndropout\\np = 0.25\\nstream = 3\\nf32[4, 2]\", style=\"filled,bold\""
            ),
            "{dot}"
        );
        assert!(dot.contains("shape=invhouse"), "{dot}");
        assert!(dot.contains("shape=cylinder"), "{dot}");
        assert!(dot.contains("[label=\"1\"]"), "{dot}");
        assert!(
            dot.contains("[label=\"output y\", shape=plaintext]"),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
        assert_eq!(dot, graph.dot().to_string(), "deterministic");
    }

    #[test]
    fn quotes_escape_labels() {
        assert_eq!(super::quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
