//! Graph-to-graph passes, and the pipeline that runs them in order.
//!
//! A compilation is for one [`Mode`]: the pipeline specialises the graph for it. Each pass is a
//! named free function in its own file whose doc says what it changes and what it leaves alone;
//! [`run_pipeline`] lists them in order as straight code:
//! 0. if the graph has `tril` masks, [`materialize_tril()`]: each becomes its constant;
//!    if the graph has batch norm, [`specialize_batch_norm()`]: every batch-norm node becomes the sums, reshapes and
//!    element-wise ops of its definition in the mode (batch statistics in train mode, the
//!    running ones otherwise), so no later stage knows batch norm; likewise, if it has layer
//!    norm, [`expand_layer_norm()`] (row statistics, whatever the mode);
//! 1. if the options ask for samples, [`batch_samples()`]: one graph of `n` Monte Carlo
//!    forward passes, the sample-independent prefix computed once;
//! 2. [`eliminate_dropout()`]: `dropout(x) -> x` where a dropout is the identity in the mode
//!    (its masks become all-true constants);
//! 3. [`simplify_layout()`]: identity reshapes and transposes go, chains collapse to one;
//! 4. [`fold_transpose()`]: `matmul(transpose(x), y) -> matmul(x, y) {transpose_a = true}`
//!    where the transpose swaps the last two dimensions, so the GEMM reads `x` in place;
//! 5. [`eliminate_dead_code()`]: nodes no output depends on go (inputs and parameters stay);
//! 6. [`split_linear_bias()`]: `linear(x, W, b) -> add(linear(x, W), b)` where the add fuses
//!    into the element-wise kernel after the product.
//!
//! Every pass runs through one hook, so verification between passes, per-pass dumps
//! (`--print-after-all`) and timings (`--time-passes`) come with it; the results are values in a
//! [`PassReport`], and the library never prints them itself.

pub mod batch_samples;
pub mod eliminate_dead_code;
pub mod eliminate_dropout;
pub mod expand_layer_norm;
pub mod fold_transpose;
pub mod materialize_tril;
pub mod report;
pub mod simplify_layout;
pub mod specialize_batch_norm;
pub mod split_linear_bias;

use std::fmt;
use std::time::Instant;

pub use batch_samples::{Batched, batch_samples};
pub use eliminate_dead_code::eliminate_dead_code;
pub use eliminate_dropout::eliminate_dropout;
pub use expand_layer_norm::{expand_layer_norm, has_layer_norm};
pub use fold_transpose::fold_transpose;
pub use materialize_tril::{has_tril, materialize_tril};
pub use report::{PassRecord, PassReport};
pub use simplify_layout::simplify_layout;
pub use specialize_batch_norm::{has_batch_norm, specialize_batch_norm};
pub use split_linear_bias::split_linear_bias;

use crate::error::Result;
use crate::graph::Mode;
use crate::graph::{Graph, steps_per_run, verify::verify};

/// What one pass did, for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes the pass removed.
    pub removed: usize,
    /// Nodes the pass kept but made read a different operand (or rewrote in place).
    pub rewired: usize,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "removed {}, rewired {}", self.removed, self.rewired)
    }
}

/// How to run the pipeline: the mode it compiles for and which hooks run after each pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineOptions {
    /// The mode the compilation is for: it decides which dropouts are the identity.
    pub mode: Mode,
    /// Verify the graph after every pass and panic naming the pass that broke it.
    pub verify_each: bool,
    /// Keep the graph's text after every pass (`--print-after-all`).
    pub record_dumps: bool,
    /// Measure every pass (`--time-passes`).
    pub record_times: bool,
    /// Batch this many Monte Carlo samples into one graph ([`batch_samples()`]), for
    /// [`Mode::Mc`]: every output gains a leading dimension of samples.
    pub samples: Option<usize>,
}

impl PipelineOptions {
    /// Options for `mode` that verify after each pass (cheap: linear in the graph) and record
    /// nothing.
    pub fn new(mode: Mode) -> PipelineOptions {
        PipelineOptions {
            mode,
            verify_each: true,
            record_dumps: false,
            record_times: false,
            samples: None,
        }
    }
}

/// The pipeline's result: the optimized graph and what each pass did.
#[derive(Clone, Debug)]
pub struct Optimized {
    /// The graph after every pass.
    pub graph: Graph,
    /// Per pass, in order: its name, stats and, if recorded, time and dump.
    pub report: PassReport,
    /// The generator steps a drawing run claims ([`crate::graph::steps_per_run`]), counted
    /// before any pass removes a node, so that a compiled run claims what the interpreter's
    /// run of the same graph (of samples) claims.
    pub steps_per_run: usize,
}

/// Specialises `graph` for `mode` and runs every pass; see [`run_pipeline`].
pub fn optimize(graph: &Graph, mode: Mode) -> Result<Graph> {
    run_pipeline(graph, &PipelineOptions::new(mode)).map(|optimized| optimized.graph)
}

/// Verifies `graph` (its errors are the caller's), then runs the passes on a copy, in order.
/// A pass that leaves an invalid graph is a compiler bug: it panics, naming the pass, after
/// that pass with `verify_each` and at the end without.
pub fn run_pipeline(graph: &Graph, options: &PipelineOptions) -> Result<Optimized> {
    verify(graph)?;
    let mut pipeline = Pipeline::new(graph.clone(), options);
    // First, so a graph of samples batches ordinary ops (Monte Carlo mode's batch norm is a
    // per-channel affine map, which batches). Only where there is batch norm, so the reports
    // of other graphs do not list a pass that did nothing.
    // Tril masks become constants first, so every later pass sees data.
    if has_tril(&pipeline.graph) {
        pipeline.run("materialize_tril", materialize_tril)?;
    }
    if has_batch_norm(&pipeline.graph) {
        pipeline.run("specialize_batch_norm", |g| {
            specialize_batch_norm(g, options.mode)
        })?;
    }
    if has_layer_norm(&pipeline.graph) {
        pipeline.run("expand_layer_norm", expand_layer_norm)?;
    }
    if let Some(samples) = options.samples {
        // First, so the graph of samples is what the interpreter would run; before the
        // layout passes, so the reshapes it adds collapse with the graph's.
        pipeline.run("batch_samples", |g| {
            let batched = batch_samples(g, samples)?;
            let stats = batched.stats();
            *g = batched.graph;
            Ok(stats)
        })?;
    }
    let steps = steps_per_run(&pipeline.graph);
    pipeline.run("eliminate_dropout", |g| eliminate_dropout(g, options.mode))?;
    pipeline.run("simplify_layout", |g| Ok(simplify_layout(g)))?;
    // After the chains collapsed, so a transpose of a transpose folds as one.
    pipeline.run("fold_transpose", |g| Ok(fold_transpose(g)))?;
    // After the passes that disconnect nodes, so it sweeps up what they left.
    pipeline.run("eliminate_dead_code", |g| Ok(eliminate_dead_code(g)))?;
    // After the sweep, so a dead user does not keep a linear whole.
    pipeline.run("split_linear_bias", |g| Ok(split_linear_bias(g)))?;
    Ok(pipeline.finish(steps))
}

/// The graph being compiled and the report so far; [`Pipeline::run`] is the one hook every
/// pass goes through.
struct Pipeline<'a> {
    graph: Graph,
    options: &'a PipelineOptions,
    report: PassReport,
}

impl<'a> Pipeline<'a> {
    fn new(graph: Graph, options: &'a PipelineOptions) -> Pipeline<'a> {
        Pipeline {
            graph,
            options,
            report: PassReport::default(),
        }
    }

    /// Runs one pass with the hooks the options ask for: the timer around the pass alone, then
    /// the verifier, then the dump. A pass fails only for want of memory (a constant it makes), for a train-mode
    /// batch norm over one value per channel or, batching samples, for a node the samples
    /// cannot pass.
    fn run(
        &mut self,
        name: &'static str,
        pass: impl FnOnce(&mut Graph) -> Result<Stats>,
    ) -> Result<()> {
        let start = Instant::now();
        let stats = pass(&mut self.graph)?;
        let elapsed = self.options.record_times.then(|| start.elapsed());
        if self.options.verify_each {
            self.check(&format!("pass {name}"));
        }
        let dump = self.options.record_dumps.then(|| self.graph.to_string());
        self.report.passes.push(PassRecord {
            name,
            stats,
            elapsed,
            dump,
        });
        Ok(())
    }

    fn check(&self, what: &str) {
        if let Err(error) = verify(&self.graph) {
            panic!("invariant: {what} leaves a valid graph, but: {error}");
        }
    }

    fn finish(self, steps_per_run: usize) -> Optimized {
        if !self.options.verify_each {
            self.check("the pipeline");
        }
        Optimized {
            graph: self.graph,
            report: self.report,
            steps_per_run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Dropout, DropoutKind, Op, TensorType, UnaryOp};

    fn net() -> Graph {
        let mut g = Graph::new("net");
        let x = g.add("x", Op::Input(TensorType::f32([2, 6])), &[]).unwrap();
        let d = Op::Dropout(Dropout::new(DropoutKind::Dropout, 0.5, 0));
        let d = g.add("d", d, &[x]).unwrap();
        let r = g.add("r", Op::Reshape { shape: vec![3, 4] }, &[d]).unwrap();
        let f = g.add("f", Op::Reshape { shape: vec![12] }, &[r]).unwrap();
        g.add("unused", Op::Unary(UnaryOp::Exp), &[x]).unwrap();
        g.add_output("y", f).unwrap();
        g
    }

    fn options(mode: Mode) -> PipelineOptions {
        PipelineOptions {
            record_dumps: true,
            record_times: true,
            ..PipelineOptions::new(mode)
        }
    }

    #[test]
    fn records_every_pass_in_order_with_stats_times_and_dumps() {
        let optimized = run_pipeline(&net(), &options(Mode::Eval)).unwrap();
        let report = &optimized.report;
        let names: Vec<_> = report.passes.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "eliminate_dropout",
                "simplify_layout",
                "fold_transpose",
                "eliminate_dead_code",
                "split_linear_bias"
            ]
        );
        let stats: Vec<String> = report.passes.iter().map(|p| p.stats.to_string()).collect();
        assert_eq!(
            stats,
            [
                "removed 1, rewired 0",
                "removed 0, rewired 1",
                "removed 0, rewired 0",
                "removed 2, rewired 0",
                "removed 0, rewired 0"
            ]
        );
        assert!(report.passes.iter().all(|p| p.elapsed.is_some()));
        let last = report.passes[3].dump.as_deref().unwrap();
        assert_eq!(last, optimized.graph.to_string());
        assert_eq!(
            last,
            "graph net {\n  %x: f32[2, 6] = input\n  %f: f32[12] = reshape %x {shape = [12]}\n  output y = %f\n}\n"
        );
    }

    #[test]
    fn records_nothing_unless_asked() {
        let optimized = run_pipeline(&net(), &PipelineOptions::new(Mode::Train)).unwrap();
        let report = &optimized.report;
        assert!(
            report
                .passes
                .iter()
                .all(|p| p.elapsed.is_none() && p.dump.is_none())
        );
        assert_eq!(report.passes[0].stats.removed, 0);
    }

    #[test]
    fn an_invalid_input_is_the_callers_error() {
        let mut g = net();
        let d = g.lookup("d").unwrap();
        if let Op::Dropout(dropout) = g.op_mut(d).unwrap() {
            dropout.p = 2.0;
        }
        let err = optimize(&g, Mode::Eval).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dropout d: dropout probability has to be between 0 and 1, but got 2"
        );
    }

    #[test]
    #[should_panic(
        expected = "invariant: pass corrupt_softmax leaves a valid graph, but: \
                               softmax y: axis 5 is out of range for a rank 1 operand"
    )]
    fn the_hook_catches_a_pass_that_breaks_the_graph() {
        let mut g = Graph::new("g");
        let x = g.add("x", Op::Input(TensorType::f32([2])), &[]).unwrap();
        let y = g.add("y", Op::Softmax { axis: 0 }, &[x]).unwrap();
        g.add_output("y", y).unwrap();
        let options = PipelineOptions::new(Mode::Eval);
        let mut pipeline = Pipeline::new(g, &options);
        pipeline
            .run("corrupt_softmax", |g| {
                *g.op_mut(y).unwrap() = Op::Softmax { axis: 5 };
                Ok(Stats::default())
            })
            .unwrap();
    }

    #[test]
    #[should_panic(expected = "invariant: the pipeline leaves a valid graph")]
    fn without_verify_each_the_end_still_checks() {
        let mut g = Graph::new("g");
        let x = g.add("x", Op::Input(TensorType::f32([2])), &[]).unwrap();
        let y = g.add("y", Op::Softmax { axis: 0 }, &[x]).unwrap();
        g.add_output("y", y).unwrap();
        let options = PipelineOptions {
            verify_each: false,
            ..PipelineOptions::new(Mode::Eval)
        };
        let mut pipeline = Pipeline::new(g, &options);
        pipeline
            .run("corrupt_softmax", |g| {
                *g.op_mut(y).unwrap() = Op::Softmax { axis: 5 };
                Ok(Stats::default())
            })
            .unwrap();
        pipeline.finish(1);
    }
}
