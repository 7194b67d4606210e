//! The schedule: the order of kernels a compiled graph executes, each one loop nest (or one
//! library call), which values live in memory between them, and how each element-wise
//! kernel's loop is generated ([`Form`]).
//!
//! A kernel computes one or more nodes. Values a kernel produces and no later kernel (and no
//! output) reads stay in registers inside its loop; the others are *materialized*: they get a
//! buffer from the memory plan. Without fusion every node is its own kernel and every value is
//! materialized; with it ([`Schedule::fused`], rules in `super::fusion`) each maximal group
//! of element-wise nodes is one loop.

use std::collections::BTreeSet;
use std::fmt;

use super::fusion::fuse;
use super::vector::Form;
use crate::graph::{Graph, NodeId};

/// One unit of generated code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// The nodes it computes, in topological order.
    pub nodes: Vec<NodeId>,
    /// The nodes whose values it writes to memory: used by a later kernel or a graph output.
    pub outputs: Vec<NodeId>,
    /// The values it reads from memory: its members' operands computed outside it, each
    /// once, in first-use order.
    pub inputs: Vec<NodeId>,
    /// How its loop is generated: the vector loop or the scalar one (always scalar for a
    /// kernel that is not element-wise).
    pub form: Form,
}

impl Kernel {
    /// The kernel computing `nodes` and storing `outputs`: its inputs found, its loop form
    /// decided.
    fn new(graph: &Graph, nodes: Vec<NodeId>, outputs: Vec<NodeId>) -> Kernel {
        let members: BTreeSet<NodeId> = nodes.iter().copied().collect();
        let mut seen = BTreeSet::new();
        let mut inputs: Vec<NodeId> = Vec::new();
        for &id in &nodes {
            for operand in graph.operands_of(id) {
                if !members.contains(&operand) && seen.insert(operand) {
                    inputs.push(operand);
                }
            }
        }
        let form = if graph[nodes[0]].op.is_elementwise() {
            Form::of(graph, &nodes, &inputs)
        } else {
            Form::Scalar
        };
        Kernel {
            nodes,
            outputs,
            inputs,
            form,
        }
    }
}

/// The kernels of a graph in execution order. Leaves (inputs, parameters, constants) and
/// reshapes (an alias of their operand's buffer) compute nothing and belong to no kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Kernels in execution order.
    pub kernels: Vec<Kernel>,
}

impl Schedule {
    /// Every computing node its own kernel, in topological order.
    pub fn unfused(graph: &Graph) -> Schedule {
        let kernels = graph
            .topo_order()
            .into_iter()
            .filter(|&id| graph[id].op.computes())
            .map(|id| Kernel::new(graph, vec![id], vec![id]))
            .collect();
        Schedule { kernels }
    }

    /// Element-wise nodes fused into one kernel per maximal group (see `super::fusion`);
    /// every other computing node its own kernel. A kernel's outputs are the members a later
    /// kernel, a reshape or a graph output reads.
    pub fn fused(graph: &Graph) -> Schedule {
        let is_output: BTreeSet<NodeId> = graph.outputs().iter().map(|o| o.node).collect();
        let kernels = fuse(graph)
            .into_iter()
            .map(|nodes| {
                let members: BTreeSet<NodeId> = nodes.iter().copied().collect();
                let outputs = (nodes.iter().copied())
                    .filter(|id| {
                        is_output.contains(id)
                            || graph.users_of(*id).iter().any(|u| !members.contains(u))
                    })
                    .collect();
                Kernel::new(graph, nodes, outputs)
            })
            .collect();
        Schedule { kernels }
    }

    /// The nodes whose values live in memory: leaves, reshapes (aliases) and kernel outputs.
    /// The other computing nodes exist only in a fused loop's registers.
    pub fn materialized(&self, graph: &Graph) -> BTreeSet<NodeId> {
        let mut nodes: BTreeSet<NodeId> = graph
            .node_ids()
            .filter(|&id| !graph[id].op.computes())
            .collect();
        for kernel in &self.kernels {
            nodes.extend(kernel.outputs.iter().copied());
        }
        nodes
    }

    /// Renders the schedule with `graph`'s node names, one `# kernel` comment line per kernel,
    /// so it can follow a textual dump of the graph.
    pub fn display<'a>(&'a self, graph: &'a Graph) -> ScheduleDisplay<'a> {
        ScheduleDisplay {
            schedule: self,
            graph,
        }
    }
}

/// [`Schedule::display`]'s value.
pub struct ScheduleDisplay<'a> {
    schedule: &'a Schedule,
    graph: &'a Graph,
}

impl fmt::Display for ScheduleDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |ids: &[NodeId]| {
            let names: Vec<String> = ids
                .iter()
                .map(|&id| format!("%{}", self.graph[id].name))
                .collect();
            names.join(", ")
        };
        for (i, kernel) in self.schedule.kernels.iter().enumerate() {
            writeln!(
                f,
                "# kernel {i}: {} -> {}",
                names(&kernel.nodes),
                names(&kernel.outputs)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse;

    /// The fused schedule of `body` (a graph's lines) as `# kernel` lines.
    fn fused(body: &str) -> String {
        let graph = parse(&format!("graph g {{\n{body}}}\n")).expect("a valid test graph");
        Schedule::fused(&graph).display(&graph).to_string()
    }

    #[test]
    fn a_chain_is_one_kernel_that_stores_only_its_end() {
        let schedule = fused(
            "%x: f32[2, 3] = input
             %a: f32[2, 3] = relu %x
             %b: f32[2, 3] = dropout %a {p = 0.5}
             %c: f32[2, 3] = exp %b
             output c = %c\n",
        );
        assert_eq!(schedule, "# kernel 0: %a, %b, %c -> %c\n");
    }

    #[test]
    fn a_long_chain_is_cut_into_kernels_of_at_most_max_kernel_nodes() {
        use crate::plan::fusion::MAX_KERNEL_NODES;
        use crate::plan::vector::MAX_VECTOR_MEMBERS;
        let n = 2 * MAX_KERNEL_NODES + 10;
        let mut body = String::from("%x0: f32[256] = input\n");
        for i in 1..=n {
            body += &format!("%x{i}: f32[256] = relu %x{}\n", i - 1);
        }
        body += &format!("output y = %x{n}\n");
        let graph = parse(&format!("graph g {{\n{body}}}\n")).expect("a valid chain");
        let schedule = Schedule::fused(&graph);
        let sizes: Vec<usize> = schedule.kernels.iter().map(|k| k.nodes.len()).collect();
        assert_eq!(sizes, [MAX_KERNEL_NODES, MAX_KERNEL_NODES, 10]);
        // Each kernel stores its end for the next; the long ones run the scalar loop.
        for kernel in &schedule.kernels {
            assert_eq!(kernel.outputs, [*kernel.nodes.last().unwrap()]);
            let vector = matches!(kernel.form, Form::Vector { .. });
            assert_eq!(vector, kernel.nodes.len() <= MAX_VECTOR_MEMBERS);
        }
    }

    #[test]
    fn simple_net_fuses_each_relu_with_its_dropout() {
        let source = include_str!("../../ir/simple_net.ir");
        let graph = parse(source).expect("simple_net parses");
        let schedule = Schedule::fused(&graph).display(&graph).to_string();
        assert_eq!(
            schedule,
            "# kernel 0: %fc1 -> %fc1\n\
             # kernel 1: %h1, %d1 -> %d1\n\
             # kernel 2: %fc2 -> %fc2\n\
             # kernel 3: %h2, %d2 -> %d2\n\
             # kernel 4: %fc3 -> %fc3\n"
        );
    }

    #[test]
    fn a_diamond_is_one_kernel() {
        let schedule = fused(
            "%x: f32[4] = input
             %a: f32[4] = relu %x
             %b: f32[4] = neg %a
             %c: f32[4] = exp %a
             %d: f32[4] = add %b, %c
             output d = %d\n",
        );
        assert_eq!(schedule, "# kernel 0: %a, %b, %c, %d -> %d\n");
    }

    #[test]
    fn side_outputs_are_stored_and_other_kernels_read_them() {
        let schedule = fused(
            "%x: f32[2, 3] = input
             %a: f32[2, 3] = relu %x
             %s: f32[2] = sum %a {axes = [1]}
             %b: f32[2, 3] = neg %a
             %c: f32[2, 3] = exp %b
             output b = %b
             output c = %c
             output s = %s\n",
        );
        assert_eq!(
            schedule,
            "# kernel 0: %a, %b, %c -> %a, %b, %c\n# kernel 1: %s -> %s\n"
        );
    }

    #[test]
    fn a_path_through_another_kernel_splits_the_group() {
        // a + amax(a): the reduction needs all of `a` before the subtraction starts.
        let schedule = fused(
            "%x: f32[2, 3] = input
             %a: f32[2, 3] = relu %x
             %m: f32[2, 1] = amax %a {axes = [1], keepdim = true}
             %b: f32[2, 3] = sub %a, %m
             %c: f32[2, 3] = exp %b
             output c = %c\n",
        );
        assert_eq!(
            schedule,
            "# kernel 0: %a -> %a\n# kernel 1: %m -> %m\n# kernel 2: %b, %c -> %c\n"
        );
    }

    #[test]
    fn a_cycle_between_kernels_through_a_third_is_refused() {
        // Merging %v into %u, %w would need %v -> %r -> {%p, %q, %n} -> %u: kernels
        // {%p, %q, %n} and {%u, %v, %w} would each wait for the other.
        let schedule = fused(
            "%x: f32[3] = input
             %y: f32[2, 3] = input
             %z: f32[2, 3] = input
             %p: f32[3] = relu %x
             %q: f32[3] = neg %p
             %u: f32[2, 3] = add %q, %y
             %v: f32[2, 3] = relu %z
             %r: f32[3] = sum %v {axes = [0]}
             %n: f32[3] = add %p, %r
             %w: f32[2, 3] = mul %u, %v
             output n = %n
             output w = %w\n",
        );
        assert_eq!(
            schedule,
            "# kernel 0: %v -> %v\n\
             # kernel 1: %r -> %r\n\
             # kernel 2: %p, %q, %n -> %q, %n\n\
             # kernel 3: %u, %w -> %w\n"
        );
    }

    #[test]
    fn a_broadcast_value_is_read_from_memory_by_a_separate_kernel() {
        let schedule = fused(
            "%x: f32[3] = input
             %y: f32[2, 3] = input
             %a: f32[3] = relu %x
             %r: f32[2, 3] = relu %y
             %b: f32[2, 3] = add %r, %a
             %c: f32[2, 3] = dropout %b {p = 0.5}
             output c = %c\n",
        );
        assert_eq!(
            schedule,
            "# kernel 0: %a -> %a\n# kernel 1: %r, %b, %c -> %c\n"
        );
    }

    #[test]
    fn reshapes_end_groups_and_leaves_belong_to_none() {
        let graph = parse(
            "graph g {
               %x: f32[2, 3] = input
               %a: f32[2, 3] = relu %x
               %r: f32[6] = reshape %a {shape = [6]}
               %b: f32[6] = neg %r
               output b = %b
             }\n",
        )
        .expect("a valid test graph");
        let schedule = Schedule::fused(&graph);
        assert_eq!(
            schedule.display(&graph).to_string(),
            "# kernel 0: %a -> %a\n# kernel 1: %b -> %b\n"
        );
        let names: Vec<&str> = (schedule.materialized(&graph).iter())
            .map(|&id| graph[id].name.as_str())
            .collect();
        assert_eq!(names, ["x", "a", "r", "b"]);
    }

    #[test]
    fn unfused_materializes_everything() {
        let graph = parse(
            "graph g {
               %x: f32[4] = input
               %a: f32[4] = relu %x
               %b: f32[4] = neg %a
               output b = %b
             }\n",
        )
        .expect("a valid test graph");
        let schedule = Schedule::unfused(&graph);
        assert_eq!(
            schedule.display(&graph).to_string(),
            "# kernel 0: %a -> %a\n# kernel 1: %b -> %b\n"
        );
        assert_eq!(schedule.materialized(&graph).len(), 3);
    }
}
