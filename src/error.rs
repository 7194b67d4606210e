//! The library's failures: every failure a user can cause, as one typed enum whose messages
//! name the node, the shapes or the values involved, with [`TypeError`] for why operands do not
//! fit an op and [`Rule`] for the verifier's invariants. (The embedded data set reports its own,
//! [`crate::data::DataError`]; the command line's configuration errors live with it.) Broken
//! compiler invariants are bugs and panic instead.
//!
//! This is the crate's ground floor beside [`crate::types`]: it imports nothing else from it.

use std::path::PathBuf;

use crate::types::{DType, Shape, TensorType};

/// The result type of every fallible dropjit API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for a user to read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node a Monte Carlo sample dimension cannot pass through
    /// ([`crate::passes::batch_samples()`]).
    #[error("cannot batch Monte Carlo samples through %{node} ({op}): {reason}")]
    SampleBatch {
        node: String,
        op: &'static str,
        reason: &'static str,
    },
    /// A node's operands or attributes do not fit its op (shape inference, verification).
    #[error("{op} {node}: {detail}")]
    Type {
        /// The node's name.
        node: String,
        /// The node's op name (`linear`, `dropout2d`, ...).
        op: &'static str,
        /// What does not fit.
        detail: TypeError,
    },
    /// A dropout probability outside `[0, 1]` given outside a graph (module constructors).
    #[error("dropout probability has to be between 0 and 1, but got {p}")]
    Probability {
        /// The rejected value.
        p: f64,
    },
    /// A name the textual IR could not print: node and output names take `A-Z a-z 0-9 _ .`.
    #[error("{what} name {name:?} has to consist of letters, digits, '_' and '.'")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// `node` or `output`.
        what: &'static str,
    },
    /// Two nodes or two outputs would share a name, or an output would take another node's.
    #[error("the {what} name {name} is already taken")]
    DuplicateName {
        /// The name.
        name: String,
        /// `node` or `output`.
        what: &'static str,
    },
    /// A node handle that names no live node of the graph it was given to: it belongs to
    /// another graph, or its node was removed.
    #[error("node {id} is not a node of graph {graph}: it belongs to another graph or was removed")]
    ForeignNode {
        /// The handle, printed `#3`.
        id: String,
        /// The graph's name.
        graph: String,
    },
    /// A name that no node has.
    #[error("no node is named {name}")]
    UnknownNode {
        /// The name looked up.
        name: String,
    },
    /// Two dropout nodes of one graph draw from the same stream, so their masks would coincide.
    #[error("{op} {node}: stream {stream} is already used by {other}")]
    DuplicateStream {
        /// The later node.
        node: String,
        /// Its op name.
        op: &'static str,
        /// The stream both use.
        stream: u32,
        /// The node that used it first.
        other: String,
    },
    /// A dropout mask whose stream no dropout of the graph draws: a mask recomputes the mask
    /// of one dropout and carries its stream.
    #[error(
        "{op} {node}: no dropout of the graph draws stream {stream}; a mask has to carry the stream of the dropout it describes"
    )]
    OrphanMask {
        /// The mask node.
        node: String,
        /// Its op name.
        op: &'static str,
        /// Its stream.
        stream: u32,
    },
    /// A dropout mask that differs from the dropout on its stream (in kind, `p`,
    /// `broadcast_dims` or operand), so it would not be that dropout's mask.
    #[error("{op} {node}: {what} differs from dropout {dropout} on stream {stream}: {values}")]
    MaskMismatch {
        /// The mask node.
        node: String,
        /// Its op name.
        op: &'static str,
        /// The dropout on its stream.
        dropout: String,
        /// The shared stream.
        stream: u32,
        /// Which attribute differs: `kind`, `p`, `broadcast_dims`, `sample_steps` or `operand`.
        what: &'static str,
        /// The mask's value and the dropout's, printed `0.25 vs 0.5`.
        values: String,
    },
    /// A dropout gradient that differs from the dropout (or an earlier dropout gradient) on
    /// its stream, so it would not recompute that dropout's mask.
    #[error("{op} {node}: {what} differs from {other} on stream {stream}: {values}")]
    GradMismatch {
        /// The gradient node.
        node: String,
        /// Its op name.
        op: &'static str,
        /// The dropout (or first dropout gradient) on its stream.
        other: String,
        /// The shared stream.
        stream: u32,
        /// Which attribute differs: `kind`, `p`, `broadcast_dims`, `sample_steps` or `shape`.
        what: &'static str,
        /// The gradient's value and the other's, printed `0.25 vs 0.5`.
        values: String,
    },
    /// `autodiff::gradients` was asked to differentiate something it cannot: a loss that is
    /// not an f32 scalar, a `wrt` node that is not f32, or a node on the path from a `wrt`
    /// node to the loss whose op has no derivative.
    #[error("cannot differentiate {op} {node}: {reason}")]
    Gradient {
        /// The node.
        node: String,
        /// Its op name.
        op: &'static str,
        /// Why, naming the type or the op.
        reason: String,
    },
    /// A graph-level invariant (see [`crate::graph::verify`]) does not hold.
    #[error("graph {graph}: {detail}")]
    Invalid {
        /// The graph's name.
        graph: String,
        /// The invariant broken.
        rule: Rule,
        /// How, naming the node that breaks it.
        detail: String,
    },
    /// A traced model returned a value that belongs to another trace (a `Var` kept from an
    /// earlier trace), so its graph has no node for it.
    #[error(
        "graph {graph}: the model returned a value of another trace (a Var kept from an earlier trace)"
    )]
    ForeignTrace {
        /// The graph being traced.
        graph: String,
    },
    /// The textual IR could not be parsed.
    #[error("{line}:{col}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        col: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// Several errors at once: the verifier and the parser report everything they find.
    #[error("{}", join_lines(.0))]
    Many(Vec<Error>),
    /// A run was not given a value for an input or parameter.
    #[error("no value was given for {what} {name}")]
    MissingValue {
        /// `input` or `parameter`.
        what: &'static str,
        /// The node's name.
        name: String,
    },
    /// A run was given a value for a node that computes its own (not an input or parameter).
    #[error("{op} {name} is not an input or parameter, so it takes no value")]
    NotBindable {
        /// The node's name.
        name: String,
        /// Its op name.
        op: &'static str,
    },
    /// A value given for an input or parameter has the wrong type.
    #[error("{what} {name} expects {expected}, but got {got}")]
    ValueType {
        /// `input` or `parameter`.
        what: &'static str,
        /// The node's name.
        name: String,
        /// The declared type, printed `f32[32, 784]`.
        expected: String,
        /// The type of the value given.
        got: String,
    },
    /// A cross-entropy target outside `0..classes`.
    #[error("cross_entropy {node}: target {target} at batch index {index} is outside 0..{classes}")]
    TargetOutOfRange {
        /// The node's name.
        node: String,
        /// The offending target.
        target: i32,
        /// Where it sits in the targets.
        index: usize,
        /// The number of classes.
        classes: usize,
    },
    /// An index outside its table (an embedding's), found at run time before any row is read.
    #[error("{op} {node}: index {index} at position {position} is outside 0..{bound}")]
    IndexOutOfRange {
        /// The node's name.
        node: String,
        /// `embedding` or `embedding_grad`.
        op: &'static str,
        /// The offending index.
        index: i32,
        /// Where it sits in the indices (row-major).
        position: usize,
        /// The table's rows.
        bound: usize,
    },
    /// A compiled graph's parameter was passed among the inputs; parameters live in a
    /// [`crate::ParameterStore`], which several compiled graphs share.
    #[error("{name} is a parameter: pass its value in the parameter store, not among the inputs")]
    ParameterAsInput {
        /// The parameter's name.
        name: String,
    },
    /// Preallocated outputs that do not match a compiled graph's outputs (in number, name or
    /// type).
    #[error("output {index} has to be {expected}, but got {got}")]
    OutputMismatch {
        /// The position among the graph's outputs.
        index: usize,
        /// The output's name and type, printed `logits: f32[32, 10]`.
        expected: String,
        /// What was given in its place.
        got: String,
    },
    /// An in-place dropout whose input another node also reads: overwriting the input would
    /// change what that reader sees (whether the scheduler runs it before or after).
    #[error("{op} {node}: inplace would overwrite %{input}, which %{reader} also reads")]
    InplaceConflict {
        /// The dropout's name.
        node: String,
        /// Its op name.
        op: &'static str,
        /// The input it would overwrite.
        input: String,
        /// The first other node (in topological order) that reads the input's buffer.
        reader: String,
    },
    /// A compiled graph that writes over one of its inputs (an in-place dropout of a graph
    /// input) run with a method that borrows the inputs immutably.
    #[error(
        "{op} {node}: inplace overwrites input {input}; call run_mut, which takes the inputs mutably"
    )]
    InputOverwritten {
        /// The input written over.
        input: String,
        /// The in-place dropout writing over it.
        node: String,
        /// Its op name.
        op: &'static str,
    },
    /// A graph whose intermediate values, live at once, need more memory than one allocation
    /// can hold: its arena cannot be planned.
    #[error(
        "graph {graph}: its intermediate values need more than {max} bytes at once, the most one allocation can hold",
        max = crate::types::MAX_BYTES
    )]
    ArenaTooLarge {
        /// The graph's name.
        graph: String,
    },
    /// Memory the system would not give: the buffer for `what` could not be allocated.
    #[error(
        "cannot allocate {} bytes for {what}: the system would not give them",
        count(bytes)
    )]
    OutOfMemory {
        /// The buffer's size in bytes; `None` if it exceeds `usize::MAX`.
        bytes: Option<usize>,
        /// What the buffer was for (a node's value, the arena, a tensor's elements).
        what: String,
    },
    /// The JIT cannot generate code for this machine.
    #[error("cannot compile for this host: {reason}")]
    UnsupportedHost {
        /// What the host lacks.
        reason: String,
    },
    /// A compilation cannot run on the thread count asked for (`Compiler::threads`): zero, or
    /// more threads than the system would start.
    #[error("cannot run on {threads} threads: {reason}")]
    Threads {
        /// The thread count asked for.
        threads: usize,
        /// Why not.
        reason: String,
    },
    /// A train-mode batch normalization over one value per channel (PyTorch's "Expected more
    /// than 1 value per channel when training"): its batch variance is undefined.
    #[error(
        "{op} {node}: expected more than 1 value per channel when training, got input size {shape}"
    )]
    BatchNormSingleValue {
        /// The node's name.
        node: String,
        /// The node's op name.
        op: &'static str,
        /// The input's shape.
        shape: Shape,
    },
    /// A Monte Carlo prediction was asked for no samples.
    #[error("Monte Carlo dropout needs at least 1 sample, but got {samples}")]
    McSamples {
        /// The sample count asked for.
        samples: usize,
    },
    /// The generator's step counter reached 2^32: reseed rather than reuse masks.
    #[error("the generator with seed {seed} has used all 2^32 steps; reseed it")]
    StepsExhausted {
        /// The generator's seed.
        seed: u64,
    },
    /// Random integers were asked for from an empty range.
    #[error("randint needs low < high, but got low {low} and high {high}")]
    EmptyRange {
        /// The inclusive lower end.
        low: i32,
        /// The exclusive upper end.
        high: i32,
    },
    /// A tensor was built from data whose length does not match its shape.
    #[error(
        "a tensor of shape {shape} needs {} values, but got {got}",
        count(expected)
    )]
    DataLength {
        /// The shape.
        shape: Shape,
        /// Its element count; `None` if it exceeds `usize::MAX`.
        expected: Option<usize>,
        /// The number of values given.
        got: usize,
    },
    /// A `.npy` file could not be read or written as a dropjit tensor.
    #[error("{}: {message}", .path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A module call whose input does not fit the module (eager calls; traced calls report
    /// the graph node named after the module's path instead).
    #[error("{module}: {detail}")]
    Module {
        /// The module as it displays, `Dropout2d(p=0.5, inplace=false)`.
        module: String,
        /// What does not fit.
        detail: TypeError,
    },
    /// An in-place module call whose input value is shared with another handle, so writing
    /// into it would change what that handle reads.
    #[error(
        "{module} writes into its input in place, but the input value is shared with another handle; call forward(&x) for a new value instead"
    )]
    UnsafeInplace {
        /// The module as it displays.
        module: String,
    },
    /// A module with parameters was called while tracing but is not listed by its parent's
    /// `children()`, so its parameters have no name and no value in the traced model's store.
    #[error(
        "{module} is called in forward but not listed by its parent's children(), so its parameters have no name"
    )]
    UnregisteredModule {
        /// The module as it displays.
        module: String,
    },
    /// A concrete tensor was asked of a traced value, which is a graph node without data.
    #[error(
        "value %{node} is traced (a node of the graph being built), not a concrete tensor; run the traced model to get values"
    )]
    NotConcrete {
        /// The node's name.
        node: String,
    },
    /// An optimizer hyperparameter outside its range, in PyTorch's words
    /// (`Invalid learning rate: -0.1`).
    #[error("Invalid {what}: {}", python_float(*.value))]
    Hyperparameter {
        /// What it is: `learning rate`, `momentum value`, `beta parameter at index 0`, ...
        what: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// SGD with Nesterov momentum but without momentum or with dampening.
    #[error(
        "Nesterov momentum requires a momentum and zero dampening, but got momentum={} and dampening={}",
        python_float(*.momentum),
        python_float(*.dampening)
    )]
    Nesterov {
        /// The momentum set.
        momentum: f64,
        /// The dampening set.
        dampening: f64,
    },
    /// A checkpoint file that is not a dropjit safetensors checkpoint (a malformed file, or
    /// metadata missing or unreadable).
    #[error("{}: {message}", .path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A checkpoint entry that does not fit the model and optimizer it is loaded into:
    /// missing, of another type, or not theirs.
    #[error(
        "{}: {name} has to be {expected} for this model and optimizer, but the checkpoint holds {got}",
        .path.display()
    )]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// The entry (`fc1.weight`, `fc1.weight.momentum_buffer`).
        name: String,
        /// Its type in the store, printed `f32[256, 784]`, or `nothing`.
        expected: String,
        /// Its type in the file, or `nothing`.
        got: String,
    },
    /// An I/O failure on a named file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A count of elements or bytes that may exceed `usize` (`None`), for messages.
fn count(n: &Option<usize>) -> String {
    match n {
        Some(n) => n.to_string(),
        None => format!("more than {}", usize::MAX),
    }
}

/// The IR invariants the verifier checks, numbered as [`crate::graph::verify`] lists them: the
/// rule a verifier error breaks, as data ([`Error::rule`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// 1. Every node has as many operands as its op takes.
    Arity,
    /// 2. Every node's type is what its op computes from its operands'.
    Types,
    /// 3. Node names are unique.
    Names,
    /// 4. The graph is acyclic.
    Acyclic,
    /// 5. Dropout streams are below 2^31 and no two dropouts share one.
    Streams,
    /// 6. The graph has outputs; output names are unique and name no other node.
    Outputs,
    /// 7. Every dropout mask describes a dropout of the graph.
    Masks,
    /// 8. Every dropout gradient recomputes one mask.
    Gradients,
    /// 9. No node reads a buffer an in-place op overwrites.
    InPlace,
}

impl Rule {
    /// The invariant's number in [`crate::graph::verify`]'s list.
    pub fn number(self) -> u8 {
        match self {
            Rule::Arity => 1,
            Rule::Types => 2,
            Rule::Names => 3,
            Rule::Acyclic => 4,
            Rule::Streams => 5,
            Rule::Outputs => 6,
            Rule::Masks => 7,
            Rule::Gradients => 8,
            Rule::InPlace => 9,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invariant {}", self.number())
    }
}

fn join_lines(errors: &[Error]) -> String {
    errors
        .iter()
        .map(Error::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// One error stays itself; several become [`Error::Many`].
    pub fn from_list(mut errors: Vec<Error>) -> Option<Error> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Error::Many(errors)),
        }
    }

    /// The IR invariant this error reports broken, for the verifier's errors (and the type
    /// errors of [`crate::Graph::add`], which keeps invariants 1 and 2 as nodes are added);
    /// `None` for every other error, and for [`Error::Many`].
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Error::Type {
                detail: TypeError::Arity { .. },
                ..
            } => Some(Rule::Arity),
            Error::Type { .. } => Some(Rule::Types),
            Error::Invalid { rule, .. } => Some(*rule),
            Error::DuplicateStream { .. } => Some(Rule::Streams),
            Error::OrphanMask { .. } | Error::MaskMismatch { .. } => Some(Rule::Masks),
            Error::GradMismatch { .. } => Some(Rule::Gradients),
            Error::InplaceConflict { .. } => Some(Rule::InPlace),
            _ => None,
        }
    }

    /// The individual errors: the list of [`Error::Many`], or this one alone.
    pub fn flatten(&self) -> Vec<&Error> {
        match self {
            Error::Many(list) => list.iter().flat_map(Error::flatten).collect(),
            other => vec![other],
        }
    }
}

/// Why a node's operands or attributes do not fit its op; wrapped in [`Error::Type`] with the
/// node's name.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TypeError {
    /// Wrong number of operands.
    #[error("expects {expected} operands, but got {got}")]
    Arity { expected: usize, got: usize },
    /// An operand of the wrong element type.
    #[error("operand {operand} has to be {expected}, but is {got}")]
    DType {
        operand: usize,
        expected: DType,
        got: DType,
    },
    /// Shapes that NumPy broadcasting cannot align.
    #[error("cannot broadcast shapes {lhs} and {rhs}")]
    Broadcast { lhs: Shape, rhs: Shape },
    /// An operand of a rank the op does not take.
    #[error("expects {expected} {what}, but got shape {shape}")]
    Rank {
        what: &'static str,
        expected: &'static str,
        shape: Shape,
    },
    /// Matrix dimensions that do not chain.
    #[error("cannot multiply {lhs} by {rhs}: inner dimensions {k_lhs} and {k_rhs} differ")]
    MatMulInner {
        lhs: Shape,
        rhs: Shape,
        k_lhs: usize,
        k_rhs: usize,
    },
    /// Batch dimensions of a matmul that do not broadcast.
    #[error("batch dimensions of {lhs} and {rhs} do not broadcast")]
    MatMulBatch { lhs: Shape, rhs: Shape },
    /// A linear layer whose input width differs from its weight's.
    #[error("input has {got} features but weight expects {expected}")]
    LinearFeatures { got: usize, expected: usize },
    /// A bias that does not match a linear layer's outputs.
    #[error("bias has shape {bias} but the weight has {out} output features")]
    LinearBias { bias: Shape, out: usize },
    /// An axis outside the operand's rank.
    #[error("axis {axis} is out of range for a rank {rank} operand")]
    Axis { axis: i64, rank: usize },
    /// The same axis named twice.
    #[error("axis {axis} is given twice")]
    DuplicateAxis { axis: usize },
    /// A max-reduction over an empty dimension, which has no identity.
    #[error("cannot take the maximum over axis {axis} of size 0 (shape {shape})")]
    EmptyMax { axis: usize, shape: Shape },
    /// A reshape to a shape with another element count, or an ambiguous one.
    #[error("cannot reshape {from} into {to:?}: {reason}")]
    Reshape {
        from: Shape,
        to: Vec<i64>,
        reason: &'static str,
    },
    /// A transpose whose permutation is not one of `0..rank`.
    #[error("{perm:?} is not a permutation of the {rank} dimensions of {shape}")]
    Permutation {
        perm: Vec<usize>,
        rank: usize,
        shape: Shape,
    },
    /// Targets that do not match the logits' batch.
    #[error("targets of shape {targets} do not match logits of shape {logits}")]
    Targets { logits: Shape, targets: Shape },
    /// A constant whose values do not fill its shape.
    #[error("a literal of shape {shape} needs {expected} values, but has {got}")]
    LiteralLength {
        shape: Shape,
        expected: usize,
        got: usize,
    },
    /// A type whose values do not fit in memory (see [`TensorType::fits_in_memory`]).
    #[error("{ty} is too large: it needs more than {max} bytes, the most one allocation can hold", max = crate::types::MAX_BYTES)]
    TooLarge { ty: TensorType },
    /// A dropout probability outside `[0, 1]`, NaN included.
    #[error("dropout probability has to be between 0 and 1, but got {p}")]
    Probability { p: f64 },
    /// A dropout stream in the range reserved for host-side randomness.
    #[error("stream {stream} is reserved for host-side randomness (graph streams are below 2^31)")]
    ReservedStream { stream: u32 },
    /// A channel-wise dropout given an input of a rank it does not take.
    #[error("{kind} expects {accepts}, but got a {rank}-D input; {advice}")]
    DropoutRank {
        /// The dropout kind's name (`dropout2d`).
        kind: &'static str,
        /// The inputs it takes (`a 3-D (C, H, W) or 4-D (N, C, H, W) input`).
        accepts: &'static str,
        rank: usize,
        /// Which op fits instead (`use dropout3d`).
        advice: String,
    },
    /// A convolution whose operands or attributes do not fit (see [`crate::graph::Conv`]);
    /// [`Error::Type`] names the node and the op.
    #[error("{reason}")]
    Conv {
        /// `conv1d`, `conv2d` or `conv3d`.
        op: &'static str,
        /// What does not fit, with the shapes and values involved.
        reason: String,
    },
    /// A pool whose input or attributes do not fit (see [`crate::graph::pool`]);
    /// [`Error::Type`] names the node and the op.
    #[error("{reason}")]
    Pool {
        /// `max_pool2d`, `adaptive_avg_pool1d`, ...
        op: &'static str,
        /// What does not fit, with the shapes and values involved.
        reason: String,
    },
    /// A batch normalization whose operands do not fit (see [`crate::graph::batch_norm`]);
    /// [`Error::Type`] names the node and the op.
    #[error("{reason}")]
    BatchNorm {
        /// `batch_norm`, `batch_norm_running_mean`, ...
        op: &'static str,
        /// What does not fit, with the shapes involved.
        reason: String,
    },
    /// A layer normalization whose input, weight or bias does not fit its normalized shape
    /// (see [`crate::graph::layer_norm`]); [`Error::Type`] names the node and the op.
    #[error("{reason}")]
    LayerNorm {
        /// `layer_norm`, `layer_norm_input_grad`, `layer_norm_weight_grad`.
        op: &'static str,
        /// What does not fit, with the shapes involved.
        reason: String,
    },
    /// An attention whose embedding width does not split into its heads.
    #[error("{embd} features do not split over {heads} heads: embd % heads has to be 0")]
    Heads {
        /// The embedding width `C`.
        embd: usize,
        /// The number of heads.
        heads: usize,
    },
    /// An embedding whose table or attributes do not fit (see [`crate::graph::embedding`]);
    /// [`Error::Type`] names the node and the op.
    #[error("{reason}")]
    Embedding {
        /// `embedding`, `embedding_grad`.
        op: &'static str,
        /// What does not fit, with the shapes and values involved.
        reason: String,
    },
    /// A dropout with `sample_steps` on a scalar: it has no sample dimension.
    #[error("{kind} with sample_steps needs a dimension of samples, but got a scalar input")]
    SampleStepsScalar {
        /// The dropout kind's name.
        kind: &'static str,
    },
    /// A dropout mask marked in place: a mask is a value of its own, only its dropout may
    /// write in place.
    #[error("a mask has a buffer of its own, so it cannot be inplace (only its dropout can)")]
    MaskInplace,
    /// A dropout gradient marked in place.
    #[error("a dropout gradient has a buffer of its own, so it cannot be inplace")]
    GradInplace,
    /// An expand to a shape the operand does not broadcast to.
    #[error("cannot expand {from} to {to}")]
    Expand { from: Shape, to: Shape },
    /// Unusable `broadcast_dims` on a dropout.
    #[error("broadcast_dims {dims:?} for a rank {rank} input: {reason}")]
    BroadcastDims {
        dims: Vec<usize>,
        rank: usize,
        reason: &'static str,
    },
}

/// A float as Python's `repr` prints it (`0.1`, `1.0`, `1e-08`, `nan`), so messages read as
/// PyTorch's do.
pub(crate) fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's Debug form is the shortest round trip and switches to exponents at the same
    // thresholds as Python (below 1e-4, from 1e16); Python pads the exponent to two digits.
    let debug = format!("{x:?}");
    match debug.split_once('e') {
        None => debug,
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("+", exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(python_float(-0.1), "-0.1");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(1e-8), "1e-08");
        assert_eq!(python_float(1e20), "1e+20");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(f64::NAN), "nan");
    }
}
