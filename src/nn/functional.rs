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
use crate::graph::{Approximate, BinaryOp, DropoutKind, Op, UnaryOp};
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

/// `op` of several values (`a + b`, `a @ b`, `torch.where(c, a, b)`): eagerly if every
/// operand is concrete, else as a node of the trace the traced ones share, the concrete ones
/// becoming constants of it (a causal mask, a `-inf`). The node is named after its newest
/// traced operand (`<operand>.<op>`): a residual `x + branch(x)` after the branch
/// (`h.0.attn.resid_dropout.add`), not after a chain of earlier sums.
fn apply_all(operands: &[&Var], op: Op, label: &dyn fmt::Display) -> Result<Var> {
    let traced = (operands.iter())
        .filter_map(|v| match &v.repr {
            Repr::Traced(node) => Some(node),
            Repr::Eager(_) => None,
        })
        .max_by_key(|node| node.position());
    match traced {
        Some(first) => {
            let base = format!("{}.{}", first.name(), op.name());
            let operands: Vec<_> = (operands.iter())
                .map(|v| match &v.repr {
                    Repr::Traced(node) => Ok(&**node),
                    Repr::Eager(t) => Err(&**t),
                })
                .collect();
            first.apply_operands(&base, op, &operands)
        }
        None => {
            // Operand 0 is the call's input `x`; the others enter as its "parameters".
            const NAMES: [&str; 2] = ["operand1", "operand2"];
            let tensor = |v: &Var| v.tensor().cloned();
            let mut store = ParameterStore::new();
            let mut parameters = Vec::new();
            for (name, v) in NAMES.iter().zip(&operands[1..]) {
                store.insert(*name, tensor(v)?);
                parameters.push((*name, v.ty()));
            }
            let call = Call {
                op,
                mode: Mode::Eval,
                module: label,
                parameters,
            };
            let x = tensor(operands[0])?;
            Ok(Var::new(call.run(
                &x,
                &store,
                Some(&mut Generator::new(0)),
            )?))
        }
    }
}

fn binary(a: &Var, b: &Var, op: BinaryOp) -> Result<Var> {
    let label = format!("{}(a, b)", op.name());
    apply_all(&[a, b], Op::Binary(op), &label)
}

/// `a + b`, broadcast (`torch.add`).
pub fn add(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, BinaryOp::Add)
}

/// `a - b`, broadcast (`torch.sub`).
pub fn sub(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, BinaryOp::Sub)
}

/// `a * b`, broadcast (`torch.mul`).
pub fn mul(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, BinaryOp::Mul)
}

/// `a / b`, broadcast (`torch.div`).
pub fn div(a: &Var, b: &Var) -> Result<Var> {
    binary(a, b, BinaryOp::Div)
}

/// `a @ b` (`torch.matmul`, rank 2 or more, leading dimensions broadcast); `a @ bᵀ` is
/// `matmul(a, &transpose(b, ...))`, which the compiler folds into the product's strides.
pub fn matmul(a: &Var, b: &Var) -> Result<Var> {
    let op = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
    };
    apply_all(&[a, b], op, &"matmul(a, b)")
}

/// `torch.where(cond, a, b)`: `a` where the bool `cond` holds, else `b`, broadcast; with
/// `b` a `-inf` scalar it is `a.masked_fill(~cond, -inf)`.
pub fn where_(cond: &Var, a: &Var, b: &Var) -> Result<Var> {
    apply_all(&[cond, a, b], Op::Where, &"where(cond, a, b)")
}

/// `x.permute(perm)` (`torch.permute`; `transpose(1, 2)` of a rank-4 value is
/// `[0, 2, 1, 3]`).
pub fn transpose(x: &Var, perm: &[usize]) -> Result<Var> {
    let label = format!("permute({perm:?})");
    apply(
        x,
        Op::Transpose {
            perm: perm.to_vec(),
        },
        &label,
    )
}

/// `F.softmax(x, dim)`.
pub fn softmax(x: &Var, dim: i64) -> Result<Var> {
    let label = format!("softmax(dim={dim})");
    apply(x, Op::Softmax { axis: dim }, &label)
}

/// `torch.ones(rows, columns, dtype=bool).tril()`: the causal mask, `[i, j]` true iff
/// `j <= i`, a concrete value (a constant of a trace it enters).
pub fn causal_mask(rows: usize, columns: usize) -> Result<Var> {
    let shape = crate::graph::Shape::new(vec![rows, columns]);
    Ok(Var::new(crate::interp::tril_mask(&shape, 0)?))
}

/// `value` as a value beside `like`: a constant node of `like`'s trace if it is traced (named
/// after `name`), else `value` itself. For values a model makes from shapes, such as GPT's
/// positions `0..T`, which then index a traced table (a concrete index would look the table
/// up eagerly, outside the trace and its gradient).
pub fn constant(like: &Var, name: &str, value: crate::tensor::Tensor) -> Result<Var> {
    match &like.repr {
        Repr::Traced(node) => node.constant(name, value),
        Repr::Eager(_) => Ok(Var::new(value)),
    }
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
