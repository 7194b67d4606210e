//! The op table of the textual IR: every op's name and attributes, the one place the printer,
//! the parser and the DOT renderer learn them from.
//!
//! - [`op_templates`]: one template per op name, built from the ops' own `ALL` arrays and
//!   [`Op::name`], so the parser accepts exactly the names the printer writes;
//! - [`attributes`]: an op's attributes in printing order, each with its printed value or
//!   `None` where it holds the default (the printer leaves those out, the parser fills them
//!   in); the keys of a template are the keys the parser accepts for its op;
//! - [`build_op`]: from a parsed node line to an [`Op`], reading each attribute, annotation or
//!   literal.

use std::fmt;

use super::attrs::{Attr, Attrs, Lit, parse_bool, parse_float, parse_int};
use super::lex::{Diag, Pos, Token};
use crate::error::{Error, TypeError};
use crate::graph::batch_norm::{DEFAULT_EPS, DEFAULT_MOMENTUM};
use crate::graph::layer_norm;
use crate::graph::{
    Approximate, BatchNorm, BinaryOp, Conv, DType, Dropout, DropoutKind, Embedding, EmbeddingGrad,
    LayerNorm, Op, Pool, PoolKind, ReduceOp, Running, Shape, Stat, TensorType, UnaryOp,
};
use crate::tensor::{Tensor, TensorData};

/// A node line after its syntax is read: `%name[: TYPE] = op operands|literal {attrs}`.
pub(super) struct NodeLine {
    pub name: String,
    pub name_pos: Pos,
    pub annotation: Option<(TensorType, Pos)>,
    /// The op the name stands for, with placeholder attributes.
    pub template: Op,
    pub op_pos: Pos,
    pub operands: Vec<(String, Pos)>,
    pub literal: Option<Lit>,
    pub attrs: Vec<Attr>,
    /// The stream a dropout gets without a `stream` attribute: the number of dropout-family
    /// lines before it.
    pub default_stream: u32,
}

/// One op per textual name, with placeholder attributes.
pub(super) fn op_templates() -> Vec<Op> {
    let scalar = TensorType::f32(Shape::scalar());
    let mut ops = vec![
        Op::Input(scalar.clone()),
        Op::Parameter(scalar),
        Op::Constant(Tensor::scalar(0.0)),
    ];
    // One template per name: GELU's approximation is an attribute, its default the template.
    let default_form = |a: Approximate| a == Approximate::None;
    ops.extend(
        (UnaryOp::ALL.into_iter())
            .filter(|op| !matches!(*op, UnaryOp::Gelu(a) if !default_form(a)))
            .map(Op::Unary),
    );
    ops.extend(
        (BinaryOp::ALL.into_iter())
            .filter(|op| !matches!(*op, BinaryOp::GeluGrad(a) if !default_form(a)))
            .map(Op::Binary),
    );
    ops.extend([
        Op::MATMUL,
        Op::Linear { bias: false },
        Op::Conv(Conv::new(1, false)),
        Op::Conv(Conv::new(2, false)),
        Op::Conv(Conv::new(3, false)),
        Op::Pool(Pool::new(PoolKind::Max, &[1])),
        Op::Pool(Pool::new(PoolKind::Max, &[1, 1])),
        Op::Pool(Pool::new(PoolKind::Max, &[1, 1, 1])),
        Op::Pool(Pool::new(PoolKind::Avg, &[1])),
        Op::Pool(Pool::new(PoolKind::Avg, &[1, 1])),
        Op::Pool(Pool::new(PoolKind::Avg, &[1, 1, 1])),
        Op::AdaptiveAvgPool { output: vec![1] },
        Op::AdaptiveAvgPool { output: vec![1, 1] },
        Op::AdaptiveAvgPool {
            output: vec![1, 1, 1],
        },
        Op::Reshape { shape: Vec::new() },
        Op::Transpose { perm: Vec::new() },
    ]);
    for n in 1..=3 {
        ops.push(Op::ConvInputGrad(Conv::new(n, false)));
        ops.push(Op::ConvWeightGrad(Conv::new(n, false)));
        ops.push(Op::PoolGrad(Pool::new(PoolKind::Max, &vec![1; n])));
        ops.push(Op::PoolGrad(Pool::new(PoolKind::Avg, &vec![1; n])));
        ops.push(Op::AdaptiveAvgPoolGrad { output: vec![1; n] });
    }
    ops.extend(ReduceOp::ALL.map(|op| Op::Reduce {
        op,
        axes: Vec::new(),
        keepdim: false,
    }));
    ops.extend([
        Op::Softmax { axis: 0 },
        Op::LogSoftmax { axis: 0 },
        Op::CrossEntropy,
        Op::CrossEntropyGrad,
        Op::Expand { shape: Vec::new() },
    ]);
    ops.extend(DropoutKind::ALL.map(|kind| Op::Dropout(Dropout::new(kind, 0.0, 0))));
    ops.extend(DropoutKind::ALL.map(|kind| Op::DropoutMask(Dropout::new(kind, 0.0, 0))));
    ops.extend(DropoutKind::ALL.map(|kind| Op::DropoutGrad(Dropout::new(kind, 0.0, 0))));
    ops.extend([
        Op::BatchNorm(BatchNorm::new()),
        Op::BatchNormRunning(Running {
            stat: Stat::Mean,
            momentum: DEFAULT_MOMENTUM,
        }),
        Op::BatchNormRunning(Running {
            stat: Stat::Var,
            momentum: DEFAULT_MOMENTUM,
        }),
        Op::BatchNormInputGrad(BatchNorm::new()),
        Op::BatchNormWeightGrad(BatchNorm::new()),
        Op::LayerNorm(LayerNorm::new(&[])),
        Op::LayerNormInputGrad(LayerNorm::new(&[])),
        Op::LayerNormWeightGrad(LayerNorm::new(&[])),
        Op::Embedding(Embedding { padding_idx: None }),
        Op::Where,
        Op::Tril {
            shape: Shape::scalar(),
            diagonal: 0,
        },
        Op::EmbeddingGrad(EmbeddingGrad {
            num_embeddings: 0,
            padding_idx: None,
        }),
    ]);
    ops
}

/// The attributes of `op` in printing order: `(key, Some(value as printed))`, or `(key, None)`
/// where the attribute holds its default (the printer leaves it out). A dropout's `p` and
/// `stream` are always shown; so are a mask's and a gradient's (their stream is required).
pub(crate) fn attributes(op: &Op) -> Vec<(&'static str, Option<String>)> {
    // `{}` prints an f64 as the shortest decimal that parses back to it.
    let dims = |dims: &[usize]| (!dims.is_empty()).then(|| list(dims));
    let flag = |on: bool| on.then(|| "true".to_string());
    match op {
        Op::Dropout(d) => vec![
            ("p", Some(d.p.to_string())),
            ("inplace", flag(d.inplace)),
            ("broadcast_dims", dims(&d.broadcast_dims)),
            ("sample_steps", flag(d.sample_steps)),
            ("stream", Some(d.stream.to_string())),
        ],
        // Masks and gradients are never in place (type inference rejects it), so `inplace`
        // is no key.
        Op::DropoutMask(d) | Op::DropoutGrad(d) => vec![
            ("p", Some(d.p.to_string())),
            ("broadcast_dims", dims(&d.broadcast_dims)),
            ("sample_steps", flag(d.sample_steps)),
            ("stream", Some(d.stream.to_string())),
        ],
        Op::Reduce { axes, keepdim, .. } => vec![
            ("axes", (!axes.is_empty()).then(|| list(axes))),
            ("keepdim", flag(*keepdim)),
        ],
        Op::Softmax { axis } | Op::LogSoftmax { axis } => vec![("axis", Some(axis.to_string()))],
        Op::Reshape { shape } => vec![("shape", Some(list(shape)))],
        Op::Expand { shape } => vec![("shape", Some(list(shape)))],
        Op::Transpose { perm } => vec![("perm", Some(list(perm)))],
        Op::Conv(c) | Op::ConvInputGrad(c) | Op::ConvWeightGrad(c) => conv_attributes(c),
        Op::Pool(p) | Op::PoolGrad(p) => pool_attributes(p),
        Op::AdaptiveAvgPool { output } | Op::AdaptiveAvgPoolGrad { output } => {
            vec![("output", Some(list(output)))]
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => vec![
            ("transpose_a", flag(*transpose_a)),
            ("transpose_b", flag(*transpose_b)),
        ],
        // `eps` and `momentum` print unless they hold PyTorch's defaults; `affine` is the
        // operand count, as a linear's bias is.
        Op::BatchNorm(bn) | Op::BatchNormInputGrad(bn) | Op::BatchNormWeightGrad(bn) => vec![
            ("eps", (bn.eps != DEFAULT_EPS).then(|| bn.eps.to_string())),
            ("running_stats", flag(bn.running_stats)),
        ],
        Op::BatchNormRunning(r) => vec![(
            "momentum",
            (r.momentum != DEFAULT_MOMENTUM).then(|| r.momentum.to_string()),
        )],
        Op::Embedding(e) => vec![("padding_idx", e.padding_idx.map(|p| p.to_string()))],
        Op::Tril { diagonal, .. } => {
            vec![("diagonal", (*diagonal != 0).then(|| diagonal.to_string()))]
        }
        Op::EmbeddingGrad(e) => vec![
            ("num_embeddings", Some(e.num_embeddings.to_string())),
            ("padding_idx", e.padding_idx.map(|p| p.to_string())),
        ],
        // `weight` and `bias` are the operand count, as a linear's bias is.
        Op::LayerNorm(ln) | Op::LayerNormInputGrad(ln) | Op::LayerNormWeightGrad(ln) => vec![
            ("normalized_shape", Some(list(&ln.normalized_shape))),
            (
                "eps",
                (ln.eps != layer_norm::DEFAULT_EPS).then(|| ln.eps.to_string()),
            ),
        ],
        Op::Unary(UnaryOp::Gelu(a)) | Op::Binary(BinaryOp::GeluGrad(a)) => vec![(
            "approximate",
            (*a != Approximate::None).then(|| a.name().to_string()),
        )],
        Op::Input(_)
        | Op::Parameter(_)
        | Op::Constant(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Linear { .. }
        | Op::CrossEntropy
        | Op::CrossEntropyGrad
        | Op::Where => Vec::new(),
    }
}

/// A convolution's attributes (or its gradients'), defaults left out.
fn conv_attributes(c: &Conv) -> Vec<(&'static str, Option<String>)> {
    let unless = |values: &[usize], default: usize| {
        (!values.iter().all(|&v| v == default)).then(|| list(values))
    };
    vec![
        ("stride", unless(&c.stride, 1)),
        ("padding", unless(&c.padding, 0)),
        (
            "padding_end",
            (c.padding_end != c.padding).then(|| list(&c.padding_end)),
        ),
        ("dilation", unless(&c.dilation, 1)),
        ("groups", (c.groups != 1).then(|| c.groups.to_string())),
    ]
}

/// A pool's attributes (or its gradient's), defaults left out; each kind has its own keys.
fn pool_attributes(p: &Pool) -> Vec<(&'static str, Option<String>)> {
    let unless = |values: &[usize], default: usize| {
        (!values.iter().all(|&v| v == default)).then(|| list(values))
    };
    let flag = |on: bool| on.then(|| "true".to_string());
    let mut attrs = vec![
        ("kernel", Some(list(&p.kernel))),
        ("stride", (p.stride != p.kernel).then(|| list(&p.stride))),
        ("padding", unless(&p.padding, 0)),
    ];
    match p.kind {
        PoolKind::Max => {
            attrs.push(("dilation", unless(&p.dilation, 1)));
            attrs.push(("ceil_mode", flag(p.ceil_mode)));
        }
        PoolKind::Avg => {
            attrs.push(("ceil_mode", flag(p.ceil_mode)));
            attrs.push((
                "count_include_pad",
                (!p.count_include_pad).then(|| "false".to_string()),
            ));
        }
    }
    attrs
}

/// `[a, b, c]`.
fn list<T: fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// The op a line describes, with its attributes read and checked for kind (their values are
/// checked by type inference when the node is added).
pub(super) fn build_op(line: &NodeLine, items: Vec<Attr>) -> Result<Op, Diag> {
    let template = &line.template;
    let keys: Vec<&str> = attributes(template)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let attrs = Attrs::new(template.name(), &keys, &line.name, line.op_pos, items)?;
    let op = match &line.template {
        Op::Input(_) => Op::Input(annotation(line)?),
        Op::Parameter(_) => Op::Parameter(annotation(line)?),
        Op::Constant(_) => Op::Constant(constant(line)?),
        Op::Unary(UnaryOp::Gelu(_)) => Op::Unary(UnaryOp::Gelu(read_approximate(&attrs)?)),
        Op::Binary(BinaryOp::GeluGrad(_)) => {
            Op::Binary(BinaryOp::GeluGrad(read_approximate(&attrs)?))
        }
        Op::Unary(op) => Op::Unary(*op),
        Op::Binary(op) => Op::Binary(*op),
        Op::MatMul { .. } => Op::MatMul {
            transpose_a: attrs.bool("transpose_a")?.unwrap_or(false),
            transpose_b: attrs.bool("transpose_b")?.unwrap_or(false),
        },
        // The operand count picks the form; a wrong count is an arity error from inference.
        Op::Linear { .. } => Op::Linear {
            bias: line.operands.len() > 2,
        },
        Op::Conv(template) => Op::Conv(read_conv(template, &attrs, line.operands.len() > 2)?),
        Op::ConvInputGrad(template) => Op::ConvInputGrad(read_conv(template, &attrs, false)?),
        Op::ConvWeightGrad(template) => Op::ConvWeightGrad(read_conv(template, &attrs, false)?),
        Op::Pool(template) => Op::Pool(read_pool(template, &attrs)?),
        Op::PoolGrad(template) => Op::PoolGrad(read_pool(template, &attrs)?),
        Op::AdaptiveAvgPool { output } => Op::AdaptiveAvgPool {
            output: read_output(output.len(), &attrs)?,
        },
        Op::AdaptiveAvgPoolGrad { output } => Op::AdaptiveAvgPoolGrad {
            output: read_output(output.len(), &attrs)?,
        },
        Op::Reshape { .. } => Op::Reshape {
            shape: attrs.required_i64_list("shape")?,
        },
        Op::Transpose { .. } => Op::Transpose {
            perm: attrs.required_usize_list("perm")?,
        },
        Op::Reduce { op, .. } => Op::Reduce {
            op: *op,
            axes: attrs.i64_list("axes")?.unwrap_or_default(),
            keepdim: attrs.bool("keepdim")?.unwrap_or(false),
        },
        Op::Softmax { .. } => Op::Softmax {
            axis: attrs.required_i64("axis")?,
        },
        Op::LogSoftmax { .. } => Op::LogSoftmax {
            axis: attrs.required_i64("axis")?,
        },
        Op::CrossEntropy => Op::CrossEntropy,
        Op::CrossEntropyGrad => Op::CrossEntropyGrad,
        Op::Expand { .. } => Op::Expand {
            shape: attrs.required_usize_list("shape")?,
        },
        // The stream is required: it names the dropout whose mask the gradient recomputes.
        Op::DropoutGrad(template) => Op::DropoutGrad(Dropout {
            kind: template.kind,
            p: attrs.required_f64("p")?,
            inplace: false,
            broadcast_dims: attrs.usize_list("broadcast_dims")?.unwrap_or_default(),
            sample_steps: attrs.bool("sample_steps")?.unwrap_or(false),
            stream: attrs.required_u32("stream")?,
        }),
        Op::Dropout(template) => Op::Dropout(Dropout {
            kind: template.kind,
            p: attrs.required_f64("p")?,
            inplace: attrs.bool("inplace")?.unwrap_or(false),
            broadcast_dims: attrs.usize_list("broadcast_dims")?.unwrap_or_default(),
            sample_steps: attrs.bool("sample_steps")?.unwrap_or(false),
            stream: attrs.u32("stream")?.unwrap_or(line.default_stream),
        }),
        // The operand count picks the form, as for a linear.
        Op::BatchNorm(_) => Op::BatchNorm(BatchNorm {
            eps: attrs.f64("eps")?.unwrap_or(DEFAULT_EPS),
            affine: line.operands.len() > 3,
            running_stats: attrs.bool("running_stats")?.unwrap_or(false),
        }),
        Op::BatchNormInputGrad(_) => Op::BatchNormInputGrad(BatchNorm {
            eps: attrs.f64("eps")?.unwrap_or(DEFAULT_EPS),
            affine: line.operands.len() > 4,
            running_stats: attrs.bool("running_stats")?.unwrap_or(false),
        }),
        Op::BatchNormWeightGrad(_) => Op::BatchNormWeightGrad(BatchNorm {
            eps: attrs.f64("eps")?.unwrap_or(DEFAULT_EPS),
            affine: false,
            running_stats: attrs.bool("running_stats")?.unwrap_or(false),
        }),
        // The operand count picks the form: `x`, `x, weight` or `x, weight, bias`.
        Op::LayerNorm(_) => Op::LayerNorm(read_layer_norm(
            &attrs,
            line.operands.len().saturating_sub(1),
        )?),
        Op::LayerNormInputGrad(_) => Op::LayerNormInputGrad(read_layer_norm(
            &attrs,
            line.operands.len().saturating_sub(2),
        )?),
        Op::LayerNormWeightGrad(_) => Op::LayerNormWeightGrad(read_layer_norm(&attrs, 0)?),
        Op::Where => Op::Where,
        // The annotation is the mask's type (bool; inference says so if it is not).
        Op::Tril { .. } => Op::Tril {
            shape: annotation(line)?.shape,
            diagonal: attrs.i64("diagonal")?.unwrap_or(0),
        },
        Op::Embedding(_) => Op::Embedding(Embedding {
            padding_idx: attrs.i64("padding_idx")?,
        }),
        Op::EmbeddingGrad(_) => Op::EmbeddingGrad(EmbeddingGrad {
            num_embeddings: attrs.required_usize("num_embeddings")?,
            padding_idx: attrs.i64("padding_idx")?,
        }),
        Op::BatchNormRunning(template) => Op::BatchNormRunning(Running {
            stat: template.stat,
            momentum: attrs.f64("momentum")?.unwrap_or(DEFAULT_MOMENTUM),
        }),
        // The stream is required: it names the dropout the mask describes.
        Op::DropoutMask(template) => Op::DropoutMask(Dropout {
            kind: template.kind,
            p: attrs.required_f64("p")?,
            inplace: false,
            broadcast_dims: attrs.usize_list("broadcast_dims")?.unwrap_or_default(),
            sample_steps: attrs.bool("sample_steps")?.unwrap_or(false),
            stream: attrs.required_u32("stream")?,
        }),
    };
    Ok(op)
}

/// GELU's `approximate`: `none` (the default) or `tanh`, as PyTorch spells them.
fn read_approximate(attrs: &Attrs) -> Result<Approximate, Diag> {
    let names = Approximate::ALL.map(Approximate::name);
    let chosen = attrs.choice("approximate", &names)?;
    Ok(chosen.map_or(Approximate::None, |i| Approximate::ALL[i]))
}

/// A convolution's attributes, one value per spatial dimension of the template's name.
fn read_conv(template: &Conv, attrs: &Attrs, bias: bool) -> Result<Conv, Diag> {
    let n = template.spatial();
    let padding = attrs.usize_list_of("padding", n)?.unwrap_or(vec![0; n]);
    Ok(Conv {
        stride: attrs.usize_list_of("stride", n)?.unwrap_or(vec![1; n]),
        padding_end: (attrs.usize_list_of("padding_end", n)?).unwrap_or(padding.clone()),
        padding,
        dilation: attrs.usize_list_of("dilation", n)?.unwrap_or(vec![1; n]),
        groups: attrs.usize("groups")?.unwrap_or(1),
        bias,
    })
}

/// A layer normalization's attributes, with `affine` operands after the input (0: none,
/// 1: a weight, 2: a weight and a bias).
fn read_layer_norm(attrs: &Attrs, affine: usize) -> Result<LayerNorm, Diag> {
    Ok(LayerNorm {
        normalized_shape: attrs.required_usize_list("normalized_shape")?,
        eps: attrs.f64("eps")?.unwrap_or(layer_norm::DEFAULT_EPS),
        weight: affine >= 1,
        bias: affine >= 2,
    })
}

/// A pool's attributes: the kernel required, PyTorch's defaults for the rest.
fn read_pool(template: &Pool, attrs: &Attrs) -> Result<Pool, Diag> {
    let n = template.spatial();
    let kernel = (attrs.usize_list_of("kernel", n)?).ok_or_else(|| attrs.missing("kernel"))?;
    let avg = template.kind == PoolKind::Avg;
    Ok(Pool {
        kind: template.kind,
        stride: attrs.usize_list_of("stride", n)?.unwrap_or(kernel.clone()),
        kernel,
        padding: attrs.usize_list_of("padding", n)?.unwrap_or(vec![0; n]),
        dilation: if avg {
            vec![1; n]
        } else {
            attrs.usize_list_of("dilation", n)?.unwrap_or(vec![1; n])
        },
        ceil_mode: attrs.bool("ceil_mode")?.unwrap_or(false),
        count_include_pad: !avg || attrs.bool("count_include_pad")?.unwrap_or(true),
    })
}

/// Adaptive pooling's required output sizes.
fn read_output(n: usize, attrs: &Attrs) -> Result<Vec<usize>, Diag> {
    (attrs.usize_list_of("output", n)?).ok_or_else(|| attrs.missing("output"))
}

/// The annotation that leaf ops take as their type.
fn annotation(line: &NodeLine) -> Result<TensorType, Diag> {
    match &line.annotation {
        Some((ty, _)) => Ok(ty.clone()),
        None => {
            let message = format!(
                "{} {} needs a type annotation, as in %{}: f32[2, 3] = {}",
                line.template.name(),
                line.name,
                line.name,
                line.template.name()
            );
            Err(Diag::new(line.name_pos, message))
        }
    }
}

/// A constant's tensor: the literal's values in the annotation's shape and element type.
fn constant(line: &NodeLine) -> Result<Tensor, Diag> {
    let ty = annotation(line)?;
    let (pos, tokens): (Pos, Vec<&Token>) = match &line.literal {
        Some(Lit::Atom(token)) => (token.pos, vec![token]),
        Some(Lit::List(pos, items)) => (*pos, items.iter().collect()),
        None => unreachable!("invariant: the syntax of a constant line includes its literal"),
    };
    if tokens.len() != ty.shape.numel() {
        let error = Error::Type {
            node: line.name.clone(),
            op: line.template.name(),
            detail: TypeError::LiteralLength {
                shape: ty.shape.clone(),
                expected: ty.shape.numel(),
                got: tokens.len(),
            },
        };
        return Err(Diag::new(pos, error.to_string()));
    }
    let bad = |token: &Token, what: &str| {
        let message = format!("expected {what} in the {} literal, found {}", ty, token.tok);
        Diag::new(token.pos, message)
    };
    let data = match ty.dtype {
        DType::F32 => TensorData::F32(
            tokens
                .iter()
                .map(|t| parse_float::<f32>(&t.tok).ok_or_else(|| bad(t, "a number")))
                .collect::<Result<_, _>>()?,
        ),
        DType::I32 => TensorData::I32(
            tokens
                .iter()
                .map(|t| parse_int::<i32>(&t.tok).ok_or_else(|| bad(t, "an i32 integer")))
                .collect::<Result<_, _>>()?,
        ),
        DType::Bool => TensorData::Bool(
            tokens
                .iter()
                .map(|t| parse_bool(&t.tok).ok_or_else(|| bad(t, "true or false")))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Tensor::new(ty.shape, data).expect("invariant: the literal's length was checked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_name_appears_once() {
        let names: Vec<&str> = op_templates().iter().map(Op::name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        // Leaves, the functions, matmul/linear/reshape/transpose, conv1d/2d/3d, the nine
        // pools, their fifteen gradients (two per convolution, one per pool), the reductions, softmax, log_softmax and the three cross-entropy/expand ops, and three
        // ops per dropout kind, batch norm with its two running statistics and two
        // gradients, layer norm with its two gradients, embedding with its gradient, where
        // and tril. GELU and its gradient list each approximation apart but are one name each.
        let functions = UnaryOp::ALL.len() + BinaryOp::ALL.len() - 2;
        let count = 3
            + functions
            + 4
            + 3
            + 9
            + 15
            + ReduceOp::ALL.len()
            + 5
            + 3 * DropoutKind::ALL.len()
            + 5
            + 3
            + 2
            + 2;
        assert_eq!(names.len(), count);
        // Every op sorts into a class consistent with its operands: exactly the leaves take
        // none.
        for op in op_templates() {
            assert_eq!(op.is_leaf(), op.arity() == 0, "{op}");
        }
    }
}
