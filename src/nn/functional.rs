//! Functional ops (`torch.nn.functional`) and their module forms [`ReLU`], [`SELU`] and
//! [`GELU`].
//!
//! Like modules, each works eagerly on a concrete [`Var`] (a one-node graph compiled once per
//! shape) and adds a node to the trace on a traced one, named after its operand (`fc1.relu`).

use std::fmt;

use super::dropout::DropoutCall;
use super::eager::Call;
use super::module::{Module, fmt_module};
use super::var::{Repr, Var};
use crate::error::{Error, Result};
use crate::graph::Mode;
use crate::graph::dropout::check_probability;
use crate::graph::{Approximate, DropoutKind, Op, UnaryOp};
use crate::rng::Generator;
use crate::runtime::ParameterStore;

/// `max(x, 0)` element-wise (NaN kept), `torch.relu`.
pub fn relu(x: &Var) -> Result<Var> {
    unary(x, UnaryOp::Relu, &"relu")
}

/// `scale * (x > 0 ? x : alpha * (exp(x) - 1))` with PyTorch's constants, `torch.selu`.
pub fn selu(x: &Var) -> Result<Var> {
    unary(x, UnaryOp::Selu, &"selu")
}

/// `F.gelu(x, approximate)`: `x * Φ(x)` with the normal CDF `Φ` through `erf`
/// ([`Approximate::None`], PyTorch's default) or PyTorch's tanh form.
pub fn gelu(x: &Var, approximate: Approximate) -> Result<Var> {
    let label = format!("gelu(approximate={})", approximate.name());
    unary(x, UnaryOp::Gelu(approximate), &label)
}

/// `F.dropout(x, p, training)`: element-wise dropout without a module. Eager calls draw from
/// the default generator like [`crate::nn::Dropout`]; traced calls take the trace's next
/// stream and are named `<operand>.dropout`.
pub fn dropout(x: &Var, p: f64, training: bool) -> Result<Var> {
    dropout_call(p, training, |call| call.apply(x, None))
}

/// `torch.native_dropout(x, p, train)`: element-wise dropout and its keep mask (`bool`, the
/// input's shape, `true` = kept; all true when not training). Draws like [`dropout`]; the
/// traced mask node is named `<operand>.dropout.mask`.
pub fn dropout_with_mask(x: &Var, p: f64, training: bool) -> Result<(Var, Var)> {
    dropout_call(p, training, |call| call.apply_with_mask(x, None))
}

/// Runs `f` on the call `F.dropout(_, p, training)`, once `p` is checked.
fn dropout_call<T>(p: f64, training: bool, f: impl FnOnce(&DropoutCall) -> Result<T>) -> Result<T> {
    check_probability(p).map_err(|_| Error::Probability { p })?;
    let label = format!("dropout(p={p}, training={training})");
    f(&DropoutCall {
        kind: DropoutKind::Dropout,
        p,
        training,
        module: None,
        label: &label,
    })
}

fn unary(x: &Var, op: UnaryOp, label: &dyn fmt::Display) -> Result<Var> {
    apply(x, Op::Unary(op), label)
}

/// `op` (one operand, no parameters, the same in every mode) on `x`: eagerly, or as a node of
/// the trace named `<operand>.<op>`.
pub(crate) fn apply(x: &Var, op: Op, label: &dyn fmt::Display) -> Result<Var> {
    match &x.repr {
        Repr::Eager(t) => {
            let call = Call {
                op,
                mode: Mode::Eval,
                module: label,
                parameters: Vec::new(),
            };
            // Eval mode never touches the generator.
            let y = call.run(t, &ParameterStore::new(), Some(&mut Generator::new(0)))?;
            Ok(Var::new(y))
        }
        Repr::Traced(node) => {
            let base = format!("{}.{}", node.name(), op.name());
            node.apply(&base, op, &[])
        }
    }
}

/// `x.reshape(shape)` (`torch.reshape`, one `-1` inferred).
pub fn reshape(x: &Var, shape: &[i64]) -> Result<Var> {
    let label = format!("reshape({shape:?})");
    apply(
        x,
        Op::Reshape {
            shape: shape.to_vec(),
        },
        &label,
    )
}

/// `nn.ReLU()`: [`relu`] as a module.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReLU;

impl Module for ReLU {
    fn forward(&self, x: &Var) -> Result<Var> {
        relu(x)
    }
}

impl fmt::Display for ReLU {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

/// `nn.SELU()`: [`selu`] as a module.
#[derive(Clone, Copy, Debug, Default)]
pub struct SELU;

impl Module for SELU {
    fn forward(&self, x: &Var) -> Result<Var> {
        selu(x)
    }
}

impl fmt::Display for SELU {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

/// `nn.GELU(approximate=...)`: [`gelu`] as a module.
#[derive(Clone, Copy, Debug)]
pub struct GELU {
    /// The form, [`Approximate::None`] by default as in PyTorch.
    pub approximate: Approximate,
}

impl GELU {
    /// `nn.GELU(approximate)`.
    pub fn new(approximate: Approximate) -> GELU {
        GELU { approximate }
    }
}

impl Default for GELU {
    fn default() -> GELU {
        GELU::new(Approximate::None)
    }
}

impl Module for GELU {
    fn forward(&self, x: &Var) -> Result<Var> {
        gelu(x, self.approximate)
    }

    fn extra_repr(&self) -> String {
        format!("approximate='{}'", self.approximate.name())
    }
}

impl fmt::Display for GELU {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
