//! The mode a graph runs or compiles in: which ops draw randomness and which statistics batch
//! norm uses. It belongs to the graph
//! (passes specialise a graph for it, the interpreter and compiled code run in it), so every
//! stage takes it from here.

use super::Graph;

/// How the mode-dependent ops behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Dropout draws masks; batch norm normalizes with the batch's statistics and its
    /// running statistics update; the generator's step advances.
    Train,
    /// Dropout is the identity; batch norm uses its running statistics, which stay as they
    /// are.
    Eval,
    /// Monte Carlo dropout (Gal and Ghahramani): dropout draws masks as in `Train` and every
    /// other op behaves as in `Eval` (batch norm uses its running statistics). The
    /// generator's step advances as in `Train`.
    Mc,
}

impl Mode {
    /// The mode's name as the textual tools spell it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Eval => "eval",
            Mode::Mc => "mc",
        }
    }

    /// True if the dropout family draws masks (and a run claims generator steps).
    pub fn draws(self) -> bool {
        match self {
            Mode::Train | Mode::Mc => true,
            Mode::Eval => false,
        }
    }
}

/// How many consecutive generator steps one run of `graph` claims in a drawing mode: one, or
/// the most samples a dropout with `sample_steps` draws (sample `s` draws at step
/// `step + s`), so the next run's masks never repeat a sample's. A graph without dropouts
/// still claims one, so a step always means one execution.
pub fn steps_per_run(graph: &Graph) -> usize {
    graph
        .node_ids()
        .filter_map(|id| {
            let op = &graph[id].op;
            let d = op.drawn_dropout().or(op.as_dropout_mask())?;
            let operand = graph.operands_of(id)[0];
            d.sample_steps.then(|| graph[operand].ty.shape.dims()[0])
        })
        .fold(1, usize::max)
}
