//! Monte Carlo batching: one graph that computes `n` stochastic forward passes at once, each
//! output gaining a leading dimension of `n` samples.
//!
//! A node is *per sample* if it draws a random mask (a dropout or dropout mask with
//! `0 < p < 1`) or reads a per-sample node; every other node is *shared*: it computes the same
//! value in every sample, so it is computed once (the hoisted prefix: in an MLP, everything up
//! to the first dropout, the first product included). A per-sample node gets the leading
//! sample dimension and reads shared operands where they are:
//! - where a per-sample node needs a shared value with the sample dimension (a dropout's input,
//!   an output), an `expand` to `[n, ...]` (`<name>.samples`) is the boundary; the fusion
//!   joins it to the loop that reads it, so the copies are never stored;
//! - a dropout (or mask) becomes one with `sample_steps`: sample `s` draws at step
//!   `step + s` the mask the original draws at that step, so sample `s` of a run at step `t`
//!   equals a run of the original graph at step `t + s`, bit for bit;
//! - element-wise ops and products broadcast a shared operand against the samples (a
//!   per-sample operand of lower rank than its node first gets size-1 dimensions after the
//!   samples, `<name>.rank`); axes, permutations and shapes move up by one dimension.
//!
//! How each op carries the samples is [`crate::graph::samples::batched`]. What a sample
//! dimension cannot pass (the weight or bias of a `linear`, `cross_entropy`, the gradient ops:
//! a forward graph of a model has none of them downstream of its dropouts) is
//! [`Error::SampleBatch`], naming the node. The values do not change: every op computes each
//! sample's elements with the same operations in the same order as the original graph.

use std::collections::{BTreeSet, HashMap};

use super::Stats;
use crate::error::{Error, Result};
use crate::graph::samples::{self, Operands};
use crate::graph::{DType, Dropout, Graph, NodeId, Op};

/// What [`batch_samples`] made: the graph and how many of its nodes run per sample.
#[derive(Clone, Debug)]
pub struct Batched {
    /// The graph of `n` samples: the original's outputs, each `[n, ...]`.
    pub graph: Graph,
    /// Nodes of the original computed once for all samples (the hoisted prefix).
    pub shared: usize,
    /// Nodes of the original computed per sample.
    pub per_sample: usize,
}

impl Batched {
    /// The pass's stats: every per-sample node is rewritten.
    pub fn stats(&self) -> Stats {
        Stats {
            removed: 0,
            rewired: self.per_sample,
        }
    }
}

/// `graph` as one graph of `samples` stochastic forward passes; see the module docs.
pub fn batch_samples(graph: &Graph, samples: usize) -> Result<Batched> {
    let order = graph.topo_order();
    let per_sample = per_sample_nodes(graph, &order);
    let mut batch = Batch {
        old: graph,
        new: Graph::new(graph.name()),
        samples,
        map: HashMap::new(),
        expanded: HashMap::new(),
        per_sample: &per_sample,
    };
    for &id in &order {
        let new = if per_sample.contains(&id) {
            batch.per_sample_node(id)?
        } else {
            let operands: Vec<NodeId> = (graph.operands_of(id).iter())
                .map(|o| batch.map[o])
                .collect();
            let node = &graph[id];
            batch.new.add(&node.name, node.op.clone(), &operands)?
        };
        batch.map.insert(id, new);
    }
    for output in graph.outputs() {
        let node = batch.with_samples(output.node)?;
        batch.new.add_output(&output.name, node)?;
    }
    Ok(Batched {
        shared: graph.len() - per_sample.len(),
        per_sample: per_sample.len(),
        graph: batch.new,
    })
}

/// The nodes that draw a random mask and every node that reads one, transitively.
fn per_sample_nodes(graph: &Graph, order: &[NodeId]) -> BTreeSet<NodeId> {
    let mut per_sample = BTreeSet::new();
    for &id in order {
        let op = &graph[id].op;
        let draws = (op.drawn_dropout().or(op.as_dropout_mask())).is_some_and(Dropout::is_random);
        let reads = graph.operands_of(id).iter().any(|o| per_sample.contains(o));
        if draws || reads {
            per_sample.insert(id);
        }
    }
    per_sample
}

/// The rewrite in progress.
struct Batch<'a> {
    old: &'a Graph,
    new: Graph,
    samples: usize,
    /// Each original node's node in the new graph.
    map: HashMap<NodeId, NodeId>,
    /// The `expand` to `[n, ...]` of each shared node that needed one, made once.
    expanded: HashMap<NodeId, NodeId>,
    per_sample: &'a BTreeSet<NodeId>,
}

impl Batch<'_> {
    /// The per-sample version of `id`, whose operands are all mapped.
    fn per_sample_node(&mut self, id: NodeId) -> Result<NodeId> {
        let old = self.old;
        let node = &old[id];
        let operands = old.operands_of(id);
        let unsupported = |reason: &'static str| Error::SampleBatch {
            node: node.name.clone(),
            op: node.op.name(),
            reason,
        };
        let rank = operands.first().map_or(0, |&o| old[o].ty.shape.rank());
        let (mut op, reads) =
            samples::batched(&node.op, self.samples, rank).map_err(unsupported)?;
        let new_operands = match (&mut op, reads) {
            // A dropout draws on its input with the samples: a shared input is expanded.
            (Op::Dropout(d) | Op::DropoutMask(d), _) => {
                // An expansion may have other readers (the dropout's mask, another dropout).
                d.inplace &= self.per_sample.contains(&operands[0]);
                vec![self.with_samples(operands[0])?]
            }
            (_, Operands::Broadcast) => (operands.iter())
                .map(|&o| self.padded(o, node.ty.shape.rank()))
                .collect::<Result<Vec<_>>>()?,
            (_, Operands::FirstOnly) => {
                if operands[1..].iter().any(|o| self.per_sample.contains(o)) {
                    return Err(unsupported("its weight and bias cannot vary by sample"));
                }
                self.mapped(&operands)
            }
            (_, Operands::Single) => self.mapped(&operands),
        };
        self.new.add(&node.name, op, &new_operands)
    }

    /// The new nodes of `operands`.
    fn mapped(&self, operands: &[NodeId]) -> Vec<NodeId> {
        operands.iter().map(|o| self.map[o]).collect()
    }

    /// The operand `id` of a per-sample node of rank `rank` (before batching): a shared
    /// operand as it is (it broadcasts against the samples), a per-sample one of lower rank
    /// reshaped to `[n, 1, .., ...]` so that its samples line up with the node's.
    fn padded(&mut self, id: NodeId, rank: usize) -> Result<NodeId> {
        let new = self.map[&id];
        let shape = &self.old[id].ty.shape;
        if !self.per_sample.contains(&id) || shape.rank() >= rank {
            return Ok(new);
        }
        let ones = std::iter::repeat_n(1, rank - shape.rank());
        let dims = ([self.samples]
            .into_iter()
            .chain(ones)
            .chain(shape.dims().iter().copied()))
        .map(|d| d as i64);
        let name = self.fresh(&format!("{}.rank", self.old[id].name));
        self.new.add(
            name,
            Op::Reshape {
                shape: dims.collect(),
            },
            &[new],
        )
    }

    /// The value of `id` with the sample dimension: its per-sample node, or the expansion of
    /// a shared one to `[n, ...]` (made once).
    fn with_samples(&mut self, id: NodeId) -> Result<NodeId> {
        if self.per_sample.contains(&id) {
            return Ok(self.map[&id]);
        }
        if let Some(&expanded) = self.expanded.get(&id) {
            return Ok(expanded);
        }
        let node = &self.old[id];
        if node.ty.dtype != DType::F32 {
            return Err(Error::SampleBatch {
                node: node.name.clone(),
                op: node.op.name(),
                reason: "an output the samples share has to be f32 to be expanded to them",
            });
        }
        let dims = [self.samples]
            .into_iter()
            .chain(self.old[id].ty.shape.dims().iter().copied());
        let name = self.fresh(&format!("{}.samples", self.old[id].name));
        let op = Op::Expand {
            shape: dims.collect(),
        };
        let expanded = self.new.add(name, op, &[self.map[&id]])?;
        self.expanded.insert(id, expanded);
        Ok(expanded)
    }

    /// `base`, or `base.1`, `base.2`, ... : a name neither graph has.
    fn fresh(&self, base: &str) -> String {
        let taken = |name: &str| self.old.find(name).is_some() || self.new.find(name).is_some();
        if !taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|k| format!("{base}.{k}"))
            .find(|name| !taken(name))
            .expect("invariant: some suffix is free")
    }
}
