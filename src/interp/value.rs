//! The values the interpreter computes with: a row-major [`Array`] of floats (`f32`, or `f64`
//! for gradient checks), of `i32` class targets or of `bool` dropout masks.
//!
//! The graph's types say `f32`; an `f64` interpretation reads every `f32` as `f64`, so a
//! [`Value::Float`] matches an `f32` type whatever its float type is.

use crate::error::Result;
use crate::graph::{DType, Shape, TensorType};
use crate::math::Element;
use crate::tensor::{Tensor, TensorData, check_length};

/// A dense row-major array.
#[derive(Clone, Debug)]
pub struct Array<T> {
    /// The dimensions, outermost first.
    pub shape: Shape,
    /// The elements in row-major order; `data.len() == shape.numel()`.
    pub data: Vec<T>,
}

/// The `f64` arrays of [`crate::interp::run_f64`].
pub type ArrayF64 = Array<f64>;

impl<T> Array<T> {
    /// An array from its parts; fails if `data` does not fill `shape`.
    pub fn new(shape: impl Into<Shape>, data: Vec<T>) -> Result<Array<T>> {
        let shape = shape.into();
        check_length(&shape, data.len())?;
        Ok(Array { shape, data })
    }

    /// A kernel's result; its length is the kernel's invariant, not the user's.
    pub(crate) fn filled(shape: Shape, data: Vec<T>) -> Array<T> {
        assert_eq!(
            data.len(),
            shape.numel(),
            "invariant: a kernel fills its output shape {shape}"
        );
        Array { shape, data }
    }
}

/// One node's value in an interpretation with floats of type `T`.
#[derive(Clone, Debug)]
pub enum Value<T> {
    /// Floats: every op's result except `i32` data movement.
    Float(Array<T>),
    /// `i32` class targets (inputs, constants, and their reshapes and transposes).
    Int(Array<i32>),
    /// `bool` dropout keep masks (and inputs, constants, reshapes and transposes of them).
    Bool(Array<bool>),
}

/// The values of [`crate::interp::run_f64`].
pub type ValueF64 = Value<f64>;

impl<T: Element> Value<T> {
    /// A tensor's value in this float type (exact: every f32 is an f64).
    pub fn from_tensor(tensor: &Tensor) -> Value<T> {
        let shape = tensor.shape().clone();
        match tensor.data() {
            TensorData::F32(v) => Value::Float(Array {
                shape,
                data: v.iter().map(|&x| T::from_f32(x)).collect(),
            }),
            TensorData::I32(v) => Value::Int(Array {
                shape,
                data: v.clone(),
            }),
            TensorData::Bool(v) => Value::Bool(Array {
                shape,
                data: v.clone(),
            }),
        }
    }
}

impl<T> Value<T> {
    /// How many elements it holds (its shape says how many it should).
    pub fn len(&self) -> usize {
        match self {
            Value::Float(a) => a.data.len(),
            Value::Int(a) => a.data.len(),
            Value::Bool(a) => a.data.len(),
        }
    }

    /// True if it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        match self {
            Value::Float(a) => &a.shape,
            Value::Int(a) => &a.shape,
            Value::Bool(a) => &a.shape,
        }
    }

    /// The graph type this value has: `f32` for floats of any precision, `i32` for targets,
    /// `bool` for masks.
    pub fn ty(&self) -> TensorType {
        match self {
            Value::Float(a) => TensorType::new(DType::F32, a.shape.clone()),
            Value::Int(a) => TensorType::new(DType::I32, a.shape.clone()),
            Value::Bool(a) => TensorType::new(DType::Bool, a.shape.clone()),
        }
    }

    /// The floats, or `None` for targets and masks.
    pub fn as_float(&self) -> Option<&Array<T>> {
        match self {
            Value::Float(a) => Some(a),
            Value::Int(_) | Value::Bool(_) => None,
        }
    }

    /// The targets, or `None` for floats and masks.
    pub fn as_int(&self) -> Option<&Array<i32>> {
        match self {
            Value::Int(a) => Some(a),
            Value::Float(_) | Value::Bool(_) => None,
        }
    }

    /// The mask, or `None` for floats and targets.
    pub fn as_bool(&self) -> Option<&Array<bool>> {
        match self {
            Value::Bool(a) => Some(a),
            Value::Float(_) | Value::Int(_) => None,
        }
    }

    /// The floats of an operand whose inferred type is `f32` (a broken type is a bug).
    pub(crate) fn float(&self) -> &Array<T> {
        self.as_float()
            .expect("invariant: an operand inferred as f32 holds floats")
    }

    /// The targets of an operand whose inferred type is `i32` (a broken type is a bug).
    pub(crate) fn int(&self) -> &Array<i32> {
        self.as_int()
            .expect("invariant: an operand inferred as i32 holds integers")
    }

    /// The mask of an operand whose inferred type is `bool` (a broken type is a bug).
    pub(crate) fn boolean(&self) -> &Array<bool> {
        self.as_bool()
            .expect("invariant: an operand inferred as bool holds truth values")
    }
}

impl Value<f32> {
    /// The value as a host tensor.
    pub fn into_tensor(self) -> Tensor {
        let (shape, data) = match self {
            Value::Float(a) => (a.shape, TensorData::F32(a.data)),
            Value::Int(a) => (a.shape, TensorData::I32(a.data)),
            Value::Bool(a) => (a.shape, TensorData::Bool(a.data)),
        };
        Tensor::new(shape, data).expect("invariant: an array fills its shape")
    }
}
