//! Type inference: the result type of one op from its operands' types, a pure function.
//!
//! [`infer_type`] is called when a node is added and again by the verifier, so a node's stored
//! type can never drift from what its op computes.

use super::batch_norm::{self, Stat};
use super::embedding;
use super::functions::ReduceOp;
use super::layer_norm::LayerNorm;
use super::op::Op;
use super::pool::{self, adaptive_output_shape};
use crate::error::TypeError;
use crate::types::{DType, Shape, TensorType, normalize_axis};

/// The type `op` produces from operands of types `operands`, or why they do not fit. A result
/// that would not fit in memory ([`TensorType::fits_in_memory`]) is an error too, so every
/// node's size, strides and offsets fit in `isize`.
pub fn infer_type(op: &Op, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
    let ty = result_type(op, operands)?;
    if ty.fits_in_memory() {
        Ok(ty)
    } else {
        Err(TypeError::TooLarge { ty })
    }
}

/// [`infer_type`] before the size check.
fn result_type(op: &Op, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
    if operands.len() != op.arity() {
        return Err(TypeError::Arity {
            expected: op.arity(),
            got: operands.len(),
        });
    }
    match op {
        Op::Input(ty) | Op::Parameter(ty) => Ok(ty.clone()),
        Op::Constant(value) => Ok(value.ty()),
        Op::Tril { shape, .. } => {
            if shape.rank() < 2 {
                return Err(TypeError::Rank {
                    what: "mask",
                    expected: "a [..., rows, columns] (rank 2 or more)",
                    shape: shape.clone(),
                });
            }
            Ok(TensorType::bool(shape.clone()))
        }
        Op::Where => {
            expect_dtype(operands, 0, DType::Bool)?;
            expect_f32(operands, &[1, 2])?;
            let broadcast = |lhs: &Shape, rhs: &Shape| {
                lhs.broadcast(rhs).ok_or_else(|| TypeError::Broadcast {
                    lhs: lhs.clone(),
                    rhs: rhs.clone(),
                })
            };
            let values = broadcast(&operands[1].shape, &operands[2].shape)?;
            Ok(TensorType::f32(broadcast(&operands[0].shape, &values)?))
        }
        Op::Unary(_) => {
            expect_f32(operands, &[0])?;
            Ok(operands[0].clone())
        }
        Op::Binary(_) => {
            expect_f32(operands, &[0, 1])?;
            let (lhs, rhs) = (&operands[0].shape, &operands[1].shape);
            let shape = lhs.broadcast(rhs).ok_or_else(|| TypeError::Broadcast {
                lhs: lhs.clone(),
                rhs: rhs.clone(),
            })?;
            Ok(TensorType::f32(shape))
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            expect_f32(operands, &[0, 1])?;
            let (lhs, rhs) = (&operands[0].shape, &operands[1].shape);
            matmul_shape(lhs, rhs, (*transpose_a, *transpose_b)).map(TensorType::f32)
        }
        Op::Linear { bias } => {
            expect_f32(operands, if *bias { &[0, 1, 2] } else { &[0, 1] })?;
            linear_shape(operands).map(TensorType::f32)
        }
        Op::Conv(conv) => {
            expect_f32(operands, if conv.bias { &[0, 1, 2] } else { &[0, 1] })?;
            let (x, w) = (&operands[0].shape, &operands[1].shape);
            let out = conv.output_shape(x, w)?;
            if conv.bias && operands[2].shape.dims() != [w.dims()[0]] {
                return Err(TypeError::Conv {
                    op: conv.name(),
                    reason: format!(
                        "the bias has to be [{}], one per output channel, but is {}",
                        w.dims()[0],
                        operands[2].shape
                    ),
                });
            }
            Ok(TensorType::f32(out))
        }
        Op::Pool(pool) => {
            expect_f32(operands, &[0])?;
            pool.output_shape(&operands[0].shape).map(TensorType::f32)
        }
        Op::AdaptiveAvgPool { output } => {
            expect_f32(operands, &[0])?;
            adaptive_output_shape(output, &operands[0].shape).map(TensorType::f32)
        }
        Op::ConvInputGrad(conv) => {
            expect_f32(operands, &[0, 1, 2])?;
            let (g, w, x) = (&operands[0].shape, &operands[1].shape, &operands[2].shape);
            conv.check_grad(op.name(), g, x, w)?;
            Ok(TensorType::f32(x.clone()))
        }
        Op::ConvWeightGrad(conv) => {
            expect_f32(operands, &[0, 1, 2])?;
            let (g, x, w) = (&operands[0].shape, &operands[1].shape, &operands[2].shape);
            conv.check_grad(op.name(), g, x, w)?;
            Ok(TensorType::f32(w.clone()))
        }
        Op::PoolGrad(pool) => {
            expect_f32(operands, &[0, 1])?;
            let (g, x) = (&operands[0].shape, &operands[1].shape);
            pool::check_grad(op.name(), g, pool.output_shape(x)?)?;
            Ok(TensorType::f32(x.clone()))
        }
        Op::AdaptiveAvgPoolGrad { output } => {
            expect_f32(operands, &[0, 1])?;
            let (g, x) = (&operands[0].shape, &operands[1].shape);
            pool::check_grad(op.name(), g, adaptive_output_shape(output, x)?)?;
            Ok(TensorType::f32(x.clone()))
        }
        Op::Reshape { shape } => {
            reshape_shape(&operands[0].shape, shape).map(|s| TensorType::new(operands[0].dtype, s))
        }
        Op::Transpose { perm } => {
            transpose_shape(&operands[0].shape, perm).map(|s| TensorType::new(operands[0].dtype, s))
        }
        Op::Reduce { op, axes, keepdim } => {
            expect_f32(operands, &[0])?;
            let input = &operands[0].shape;
            let axes = reduced_axes(input, axes)?;
            if *op == ReduceOp::Max
                && let Some(&axis) = axes.iter().find(|&&a| input.dims()[a] == 0)
            {
                return Err(TypeError::EmptyMax {
                    axis,
                    shape: input.clone(),
                });
            }
            Ok(TensorType::f32(reduce_shape(input, &axes, *keepdim)))
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            expect_f32(operands, &[0])?;
            resolve_axis(&operands[0].shape, *axis)?;
            Ok(operands[0].clone())
        }
        Op::CrossEntropy => {
            expect_f32(operands, &[0])?;
            expect_dtype(operands, 1, DType::I32)?;
            cross_entropy_check(&operands[0].shape, &operands[1].shape)?;
            Ok(TensorType::f32(Shape::scalar()))
        }
        Op::Dropout(dropout) => {
            expect_f32(operands, &[0])?;
            dropout.validate(operands[0].shape.rank())?;
            Ok(operands[0].clone())
        }
        Op::DropoutGrad(dropout) => {
            expect_f32(operands, &[0])?;
            if dropout.inplace {
                return Err(TypeError::GradInplace);
            }
            dropout.validate(operands[0].shape.rank())?;
            Ok(operands[0].clone())
        }
        Op::Expand { shape } => {
            expect_f32(operands, &[0])?;
            let to = Shape::new(shape.clone());
            if operands[0].shape.broadcast(&to).as_ref() != Some(&to) {
                return Err(TypeError::Expand {
                    from: operands[0].shape.clone(),
                    to,
                });
            }
            Ok(TensorType::f32(to))
        }
        Op::CrossEntropyGrad => {
            expect_f32(operands, &[0, 2])?;
            expect_dtype(operands, 1, DType::I32)?;
            cross_entropy_check(&operands[0].shape, &operands[1].shape)?;
            if operands[2].shape.rank() != 0 {
                return Err(TypeError::Rank {
                    what: "loss gradient",
                    expected: "a scalar []",
                    shape: operands[2].shape.clone(),
                });
            }
            Ok(operands[0].clone())
        }
        Op::DropoutMask(dropout) => {
            expect_f32(operands, &[0])?;
            if dropout.inplace {
                return Err(TypeError::MaskInplace);
            }
            dropout.mask_shape(&operands[0].shape).map(TensorType::bool)
        }
        Op::BatchNorm(bn) => {
            let names: &[&str] = &["running_mean", "running_var", "weight", "bias"];
            let stats = 1 + 2 + 2 * usize::from(bn.affine);
            batch_norm_check(op.name(), operands, &names[..stats - 1])?;
            Ok(operands[0].clone())
        }
        Op::BatchNormRunning(r) => {
            let what = match r.stat {
                Stat::Mean => "running_mean",
                Stat::Var => "running_var",
            };
            batch_norm_check(op.name(), operands, &[what])?;
            Ok(operands[1].clone())
        }
        Op::BatchNormInputGrad(bn) => {
            let (g, rest) = operands
                .split_first()
                .expect("invariant: the arity was checked");
            let names: &[&str] = &["running_mean", "running_var", "weight"];
            batch_norm_check(op.name(), rest, &names[..2 + usize::from(bn.affine)])?;
            batch_norm_grad_check(op.name(), g, rest[0])?;
            Ok(rest[0].clone())
        }
        Op::BatchNormWeightGrad(_) => {
            let (g, rest) = operands
                .split_first()
                .expect("invariant: the arity was checked");
            batch_norm_check(op.name(), rest, &["running_mean", "running_var"])?;
            batch_norm_grad_check(op.name(), g, rest[0])?;
            Ok(rest[1].clone())
        }
        Op::Embedding(e) => {
            expect_dtype(operands, 0, DType::I32)?;
            expect_f32(operands, &[1])?;
            let (num, dim) = embedding::table(op.name(), &operands[1].shape)?;
            embedding::padding_row(op.name(), e.padding_idx, num)?;
            Ok(TensorType::f32(embedding::output_shape(
                &operands[0].shape,
                dim,
            )))
        }
        Op::EmbeddingGrad(e) => {
            expect_f32(operands, &[0])?;
            expect_dtype(operands, 1, DType::I32)?;
            embedding::padding_row(op.name(), e.padding_idx, e.num_embeddings)?;
            let (g, indices) = (&operands[0].shape, &operands[1].shape);
            let dim = match g.dims().split_last() {
                Some((&dim, leading)) if leading == indices.dims() => dim,
                _ => {
                    return Err(TypeError::Embedding {
                        op: op.name(),
                        reason: format!(
                            "the gradient has to be [*indices, embedding_dim] for indices {indices}, but is {g}"
                        ),
                    });
                }
            };
            Ok(TensorType::f32(Shape::new(vec![e.num_embeddings, dim])))
        }
        Op::LayerNorm(ln) => {
            layer_norm_check(ln, op.name(), operands, &["weight", "bias"])?;
            Ok(operands[0].clone())
        }
        Op::LayerNormInputGrad(ln) => {
            let (g, rest) = operands
                .split_first()
                .expect("invariant: the arity was checked");
            layer_norm_check(ln, op.name(), rest, &["weight"])?;
            layer_norm_grad_check(op.name(), g, rest[0])?;
            Ok(rest[0].clone())
        }
        Op::LayerNormWeightGrad(ln) => {
            layer_norm_check(ln, op.name(), &operands[1..], &[])?;
            layer_norm_grad_check(op.name(), operands[0], operands[1])?;
            Ok(TensorType::f32(Shape::new(ln.normalized_shape.clone())))
        }
    }
}

/// `operands` are an f32 input `[..., *normalized_shape]` followed by f32 values of the
/// normalized shape named `names`.
fn layer_norm_check(
    ln: &LayerNorm,
    op: &'static str,
    operands: &[&TensorType],
    names: &[&str],
) -> Result<(), TypeError> {
    let positions: Vec<usize> = (0..operands.len()).collect();
    expect_f32(operands, &positions)?;
    ln.check_input(op, &operands[0].shape)?;
    for (value, what) in operands[1..].iter().zip(names) {
        ln.check_affine(op, what, &value.shape)?;
    }
    Ok(())
}

/// `operands` are an f32 input `[N, C, ...]` followed by f32 per-channel values `[C]` named
/// `names`.
fn batch_norm_check(
    op: &'static str,
    operands: &[&TensorType],
    names: &[&str],
) -> Result<(), TypeError> {
    let positions: Vec<usize> = (0..operands.len()).collect();
    expect_f32(operands, &positions)?;
    let c = batch_norm::channels(op, &operands[0].shape)?;
    for (value, what) in operands[1..].iter().zip(names) {
        batch_norm::check_channels(op, what, &value.shape, c)?;
    }
    Ok(())
}

/// A gradient `g` of a normalization has its input's type; `error` makes the op's type
/// error from the reason.
fn normalization_grad_check(
    g: &TensorType,
    x: &TensorType,
    error: impl Fn(String) -> TypeError,
) -> Result<(), TypeError> {
    expect_f32(&[g], &[0])?;
    if g.shape != x.shape {
        return Err(error(format!(
            "the gradient has to have the input's shape {}, but is {}",
            x.shape, g.shape
        )));
    }
    Ok(())
}

/// [`normalization_grad_check`] for batch norm's gradients.
fn batch_norm_grad_check(
    op: &'static str,
    g: &TensorType,
    x: &TensorType,
) -> Result<(), TypeError> {
    normalization_grad_check(g, x, |reason| TypeError::BatchNorm { op, reason })
}

/// [`normalization_grad_check`] for layer norm's gradients.
fn layer_norm_grad_check(
    op: &'static str,
    g: &TensorType,
    x: &TensorType,
) -> Result<(), TypeError> {
    normalization_grad_check(g, x, |reason| TypeError::LayerNorm { op, reason })
}

fn expect_f32(operands: &[&TensorType], positions: &[usize]) -> Result<(), TypeError> {
    positions
        .iter()
        .try_for_each(|&i| expect_dtype(operands, i, DType::F32))
}

fn expect_dtype(operands: &[&TensorType], i: usize, dtype: DType) -> Result<(), TypeError> {
    if operands[i].dtype == dtype {
        Ok(())
    } else {
        Err(TypeError::DType {
            operand: i,
            expected: dtype,
            got: operands[i].dtype,
        })
    }
}

/// `torch.matmul` for rank >= 2: `[..., m, k] @ [..., k, n] -> [broadcast(...), m, n]`, each
/// operand's last two dimensions swapped first where `transposed` says (`(a, b)`).
pub fn matmul_shape(
    lhs: &Shape,
    rhs: &Shape,
    transposed: (bool, bool),
) -> Result<Shape, TypeError> {
    for shape in [lhs, rhs] {
        if shape.rank() < 2 {
            return Err(TypeError::Rank {
                what: "operands",
                expected: "rank 2 or more (reshape vectors to [1, n] or [n, 1])",
                shape: shape.clone(),
            });
        }
    }
    let (l, r) = (lhs.dims(), rhs.dims());
    let last_two = |d: &[usize], swap: bool| {
        let (x, y) = (d[d.len() - 2], d[d.len() - 1]);
        if swap { (y, x) } else { (x, y) }
    };
    let (m, k_lhs) = last_two(l, transposed.0);
    let (k_rhs, n) = last_two(r, transposed.1);
    if k_lhs != k_rhs {
        return Err(TypeError::MatMulInner {
            lhs: lhs.clone(),
            rhs: rhs.clone(),
            k_lhs,
            k_rhs,
        });
    }
    let batch_l = Shape::new(&l[..l.len() - 2]);
    let batch_r = Shape::new(&r[..r.len() - 2]);
    let mut batch = batch_l
        .broadcast(&batch_r)
        .ok_or_else(|| TypeError::MatMulBatch {
            lhs: lhs.clone(),
            rhs: rhs.clone(),
        })?;
    batch.0.extend([m, n]);
    Ok(batch)
}

fn linear_shape(operands: &[&TensorType]) -> Result<Shape, TypeError> {
    let (x, weight) = (&operands[0].shape, &operands[1].shape);
    if x.rank() == 0 {
        return Err(TypeError::Rank {
            what: "input",
            expected: "rank 1 or more, [..., in_features]",
            shape: x.clone(),
        });
    }
    if weight.rank() != 2 {
        return Err(TypeError::Rank {
            what: "weight",
            expected: "rank 2, [out_features, in_features]",
            shape: weight.clone(),
        });
    }
    let (out, expected) = (weight.dims()[0], weight.dims()[1]);
    let got = x.dims()[x.rank() - 1];
    if got != expected {
        return Err(TypeError::LinearFeatures { got, expected });
    }
    if let Some(bias) = operands.get(2)
        && bias.shape.dims() != [out]
    {
        return Err(TypeError::LinearBias {
            bias: bias.shape.clone(),
            out,
        });
    }
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("rank checked above") = out;
    Ok(Shape(dims))
}

/// Resolves a reshape target: at most one `-1`, every other entry >= 0, same element count.
pub fn reshape_shape(from: &Shape, to: &[i64]) -> Result<Shape, TypeError> {
    let fail = |reason| TypeError::Reshape {
        from: from.clone(),
        to: to.to_vec(),
        reason,
    };
    if to.iter().filter(|&&d| d == -1).count() > 1 {
        return Err(fail("only one dimension can be -1"));
    }
    if to.iter().any(|&d| d < -1) {
        return Err(fail("dimensions have to be -1 or at least 0"));
    }
    let given = (to.iter().filter(|&&d| d >= 0)).try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    });
    let Some(known) = given else {
        return Err(fail("its dimensions multiply beyond any memory"));
    };
    let numel = from.numel();
    let dims: Vec<usize> = if to.contains(&-1) {
        if known == 0 {
            return Err(fail("the -1 dimension is ambiguous next to a 0 dimension"));
        }
        if !numel.is_multiple_of(known) {
            return Err(fail(
                "the element count is not divisible by the given dimensions",
            ));
        }
        to.iter()
            .map(|&d| if d == -1 { numel / known } else { d as usize })
            .collect()
    } else {
        to.iter().map(|&d| d as usize).collect()
    };
    if dims.iter().product::<usize>() != numel {
        return Err(fail("the element counts differ"));
    }
    Ok(Shape(dims))
}

fn transpose_shape(input: &Shape, perm: &[usize]) -> Result<Shape, TypeError> {
    let mut seen = vec![false; input.rank()];
    let is_permutation = perm.len() == input.rank()
        && perm
            .iter()
            .all(|&d| d < seen.len() && !std::mem::replace(&mut seen[d], true));
    if !is_permutation {
        return Err(TypeError::Permutation {
            perm: perm.to_vec(),
            rank: input.rank(),
            shape: input.clone(),
        });
    }
    Ok(Shape(perm.iter().map(|&d| input.dims()[d]).collect()))
}

fn resolve_axis(shape: &Shape, axis: i64) -> Result<usize, TypeError> {
    normalize_axis(axis, shape.rank()).ok_or(TypeError::Axis {
        axis,
        rank: shape.rank(),
    })
}

/// The sorted, distinct axes a reduction covers; an empty list means every axis.
pub fn reduced_axes(shape: &Shape, axes: &[i64]) -> Result<Vec<usize>, TypeError> {
    if axes.is_empty() {
        return Ok((0..shape.rank()).collect());
    }
    let mut resolved = Vec::with_capacity(axes.len());
    for &axis in axes {
        let a = resolve_axis(shape, axis)?;
        if resolved.contains(&a) {
            return Err(TypeError::DuplicateAxis { axis: a });
        }
        resolved.push(a);
    }
    resolved.sort_unstable();
    // A scalar "has" axis 0 for PyTorch's purposes, but nothing to reduce.
    resolved.retain(|&a| a < shape.rank());
    Ok(resolved)
}

/// The shape after reducing `axes` (as returned by [`reduced_axes`]).
pub fn reduce_shape(input: &Shape, axes: &[usize], keepdim: bool) -> Shape {
    let dims = input.dims().iter().enumerate().filter_map(|(i, &d)| {
        if !axes.contains(&i) {
            Some(d)
        } else if keepdim {
            Some(1)
        } else {
            None
        }
    });
    Shape(dims.collect())
}

fn cross_entropy_check(logits: &Shape, targets: &Shape) -> Result<(), TypeError> {
    let expected_targets = match logits.dims() {
        [_classes] => Shape::scalar(),
        [batch, _classes] => Shape::new([*batch]),
        _ => {
            return Err(TypeError::Rank {
                what: "logits",
                expected: "rank 1 [C] or rank 2 [N, C]",
                shape: logits.clone(),
            });
        }
    };
    if *targets != expected_targets {
        return Err(TypeError::Targets {
            logits: logits.clone(),
            targets: targets.clone(),
        });
    }
    Ok(())
}
