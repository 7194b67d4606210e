//! The dropout family as modules: [`Dropout`], [`Dropout1d`], [`Dropout2d`], [`Dropout3d`],
//! [`AlphaDropout`] and [`FeatureAlphaDropout`], one generic [`DropoutLayer`] with a marker
//! per variant, so each is its own type with PyTorch's name.
//!
//! Semantics are the graph op's ([`crate::graph::dropout`]). How calls draw masks:
//! - **Eager** train-mode call: one generator step (default or explicit generator), stream 0,
//!   so the mask is the one a traced graph's first dropout draws at that step. Eval mode
//!   leaves the generator alone.
//! - **Traced** call: the next stream of the trace (call order), drawn at the step of each run
//!   of the compiled graph; in eval mode no node is added (the identity), but the stream is
//!   still claimed so later call sites keep their streams.
//!
//! In-place: `forward(&x)` never writes into `x`. [`DropoutLayer::forward_mut`] writes the
//! result into its argument, and [`Module::forward_owned`] (what `Sequential` uses) does so for
//! modules built with `inplace = true`; both refuse a value another handle shares
//! ([`Error::UnsafeInplace`]). Traced in-place calls emit `inplace = true` nodes; eager ones
//! replace the value without copying it.
// TODO(issue 3): eager in-place still writes a fresh buffer; run_mut will reuse the input's.

use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::eager::Call;
use super::module::{Module, fmt_module};
use super::trace::TracedNode;
use super::var::{Repr, Var};
use crate::error::{Error, Result};
use crate::graph::Mode;
use crate::graph::dropout::{Dropout as DropoutAttrs, check_probability};
use crate::graph::{DropoutKind, Op};
use crate::rng::Generator;
use crate::runtime::ParameterStore;

/// Which member of the family a [`DropoutLayer`] is.
pub trait Variant {
    /// The graph op's kind.
    const KIND: DropoutKind;
    /// PyTorch's class name, shown by displays.
    const NAME: &'static str;
}

/// The marker types of [`Variant`], one per family member.
pub mod variant {
    use super::Variant;
    use crate::graph::DropoutKind;

    /// Marks [`super::Dropout`].
    #[derive(Debug)]
    pub struct Dropout;
    /// Marks [`super::Dropout1d`].
    #[derive(Debug)]
    pub struct Dropout1d;
    /// Marks [`super::Dropout2d`].
    #[derive(Debug)]
    pub struct Dropout2d;
    /// Marks [`super::Dropout3d`].
    #[derive(Debug)]
    pub struct Dropout3d;
    /// Marks [`super::AlphaDropout`].
    #[derive(Debug)]
    pub struct AlphaDropout;
    /// Marks [`super::FeatureAlphaDropout`].
    #[derive(Debug)]
    pub struct FeatureAlphaDropout;

    impl Variant for Dropout {
        const KIND: DropoutKind = DropoutKind::Dropout;
        const NAME: &'static str = "Dropout";
    }
    impl Variant for Dropout1d {
        const KIND: DropoutKind = DropoutKind::Dropout1d;
        const NAME: &'static str = "Dropout1d";
    }
    impl Variant for Dropout2d {
        const KIND: DropoutKind = DropoutKind::Dropout2d;
        const NAME: &'static str = "Dropout2d";
    }
    impl Variant for Dropout3d {
        const KIND: DropoutKind = DropoutKind::Dropout3d;
        const NAME: &'static str = "Dropout3d";
    }
    impl Variant for AlphaDropout {
        const KIND: DropoutKind = DropoutKind::AlphaDropout;
        const NAME: &'static str = "AlphaDropout";
    }
    impl Variant for FeatureAlphaDropout {
        const KIND: DropoutKind = DropoutKind::FeatureAlphaDropout;
        const NAME: &'static str = "FeatureAlphaDropout";
    }
}

/// `nn.Dropout`: zeroes elements independently.
pub type Dropout = DropoutLayer<variant::Dropout>;
/// `nn.Dropout1d`: zeroes whole channels of `(C, L)` or `(N, C, L)`.
pub type Dropout1d = DropoutLayer<variant::Dropout1d>;
/// `nn.Dropout2d`: zeroes whole channels of `(C, H, W)` or `(N, C, H, W)`.
pub type Dropout2d = DropoutLayer<variant::Dropout2d>;
/// `nn.Dropout3d`: zeroes whole channels of `(C, D, H, W)` or `(N, C, D, H, W)`.
pub type Dropout3d = DropoutLayer<variant::Dropout3d>;
/// `nn.AlphaDropout`: element-wise alpha dropout for SELU networks.
pub type AlphaDropout = DropoutLayer<variant::AlphaDropout>;
/// `nn.FeatureAlphaDropout`: alpha dropout of whole channels.
pub type FeatureAlphaDropout = DropoutLayer<variant::FeatureAlphaDropout>;

/// A dropout module of variant `V`: a validated probability, the in-place flag and the
/// train/eval flag (train at construction).
pub struct DropoutLayer<V> {
    p: f64,
    inplace: bool,
    training: AtomicBool,
    variant: PhantomData<fn() -> V>,
}

impl<V: Variant> DropoutLayer<V> {
    /// A module dropping with probability `p`, not in place;
    /// `dropout probability has to be between 0 and 1, but got 1.5` otherwise.
    pub fn new(p: f64) -> Result<DropoutLayer<V>> {
        DropoutLayer::with_inplace(p, false)
    }

    /// A module dropping with probability `p`, writing in place if `inplace` (see the module
    /// docs for what that means for each call).
    pub fn with_inplace(p: f64, inplace: bool) -> Result<DropoutLayer<V>> {
        check_probability(p).map_err(|_| Error::Probability { p })?;
        Ok(DropoutLayer {
            p,
            inplace,
            training: AtomicBool::new(true),
            variant: PhantomData,
        })
    }

    /// The probability of dropping an element (or channel).
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Whether `forward_owned` (and so `Sequential`) writes into its input.
    pub fn inplace(&self) -> bool {
        self.inplace
    }

    /// The graph op's kind.
    pub fn kind(&self) -> DropoutKind {
        V::KIND
    }

    /// Like [`Module::forward`], drawing an eager call's mask from `generator` instead of the
    /// thread's default generator. (Traced calls draw when the compiled graph runs.)
    pub fn forward_with(&self, x: &Var, generator: &mut Generator) -> Result<Var> {
        self.call().apply(x, Some(generator))
    }

    /// Replaces `x` by the result, writing in place; [`Error::UnsafeInplace`] if another
    /// handle shares `x`'s value.
    pub fn forward_mut(&self, x: &mut Var) -> Result<()> {
        self.call().apply_mut(x, None)
    }

    /// [`DropoutLayer::forward_mut`] drawing from `generator`.
    pub fn forward_mut_with(&self, x: &mut Var, generator: &mut Generator) -> Result<()> {
        self.call().apply_mut(x, Some(generator))
    }

    pub(super) fn call(&self) -> DropoutCall<'_> {
        DropoutCall {
            kind: V::KIND,
            p: self.p,
            training: self.is_training(),
            module: Some(self),
            label: self,
        }
    }
}

impl<V: Variant> Default for DropoutLayer<V> {
    /// `p = 0.5`, not in place, as PyTorch's default.
    fn default() -> DropoutLayer<V> {
        DropoutLayer::new(0.5).expect("invariant: 0.5 is a probability")
    }
}

impl<V: Variant> Clone for DropoutLayer<V> {
    fn clone(&self) -> DropoutLayer<V> {
        DropoutLayer {
            p: self.p,
            inplace: self.inplace,
            training: AtomicBool::new(self.is_training()),
            variant: PhantomData,
        }
    }
}

impl<V: Variant> Module for DropoutLayer<V> {
    fn forward(&self, x: &Var) -> Result<Var> {
        self.call().apply(x, None)
    }

    fn forward_owned(&self, mut x: Var) -> Result<Var> {
        if !self.inplace {
            return self.forward(&x);
        }
        self.forward_mut(&mut x)?;
        Ok(x)
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn name(&self) -> String {
        V::NAME.to_string()
    }

    fn extra_repr(&self) -> String {
        format!("p={}, inplace={}", format_p(self.p), self.inplace)
    }
}

impl<V: Variant> fmt::Display for DropoutLayer<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

impl<V: Variant> fmt::Debug for DropoutLayer<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

/// Python's float repr for the probabilities people write: `0.5`, `0.0`, `1.0`.
fn format_p(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.1}")
    } else {
        p.to_string()
    }
}

/// One dropout call, from a module or from [`crate::nn::functional::dropout`].
pub(crate) struct DropoutCall<'a> {
    pub kind: DropoutKind,
    pub p: f64,
    pub training: bool,
    /// The calling module, which names the traced node; `None` for functional calls.
    pub module: Option<&'a dyn Module>,
    /// What errors show as the module.
    pub label: &'a dyn fmt::Display,
}

impl DropoutCall<'_> {
    /// The result as a new value.
    pub(crate) fn apply(&self, x: &Var, generator: Option<&mut Generator>) -> Result<Var> {
        match &x.repr {
            Repr::Eager(t) => {
                let y = self.eager().run(t, &ParameterStore::new(), generator)?;
                Ok(Var::new(y))
            }
            Repr::Traced(node) => self.traced(node, false),
        }
    }

    /// The result written over `x`, which has to be its value's only handle.
    pub(crate) fn apply_mut(&self, x: &mut Var, generator: Option<&mut Generator>) -> Result<()> {
        if !x.is_unique() {
            return Err(Error::UnsafeInplace {
                module: self.label.to_string(),
            });
        }
        match &mut x.repr {
            Repr::Eager(t) => {
                let t = Rc::get_mut(t).expect("invariant: checked unique above");
                self.eager()
                    .run_in_place(t, &ParameterStore::new(), generator)
            }
            Repr::Traced(node) => {
                let y = self.traced(node, true)?;
                *x = y;
                Ok(())
            }
        }
    }

    /// The graph op's attributes, on `stream`.
    pub(super) fn attrs(&self, inplace: bool, stream: u32) -> DropoutAttrs {
        let mut attrs = DropoutAttrs::new(self.kind, self.p, stream);
        attrs.inplace = inplace;
        attrs
    }

    /// The eager one-node call: stream 0, in train mode only when training.
    pub(super) fn eager(&self) -> Call<'_> {
        let mode = if self.training {
            Mode::Train
        } else {
            Mode::Eval
        };
        Call {
            op: Op::Dropout(self.attrs(false, 0)),
            mode,
            module: self.label,
            parameters: Vec::new(),
        }
    }

    /// The traced call: a dropout node on the next stream (in train mode, or in a Monte Carlo
    /// trace), or (eval mode) `x` itself after checking that the node would fit.
    fn traced(&self, node: &Rc<TracedNode>, inplace: bool) -> Result<Var> {
        let stream = node.claim_stream();
        let name = self.node_name(node);
        let op = Op::Dropout(self.attrs(inplace, stream));
        if self.training || node.dropout_always_draws() {
            node.apply(&name, op, &[])
        } else {
            node.build(|b, x| b.check(&name, &op, &[x]))?;
            Ok(Var::from_node(Rc::clone(node)))
        }
    }

    /// The base name of the traced node: the module's path, or `<operand>.<kind>` for
    /// functional calls.
    pub(super) fn node_name(&self, node: &TracedNode) -> String {
        (self.module)
            .and_then(|m| node.module_path(m))
            .unwrap_or_else(|| format!("{}.{}", node.name(), self.kind.name()))
    }
}
