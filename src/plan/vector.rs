//! The one decision whether an element-wise kernel runs as the `f32x4` vector loop or as the
//! scalar loop, made once per kernel and carried as data ([`Form`]) to the memory plan, the
//! phases and lowering.
//!
//! A kernel is a vector kernel when every member has an exact `f32x4` form
//! ([`Elementwise::has_vector_form`]) and every value is `f32`, every operand from outside
//! has a [`Read`] (the loop's shape, one element, or a row of its trailing dimensions), and
//! every drawing dropout has a [`MaskForm`]:
//! - one mask element per element: the mask is made in the loop, 128 keep bits per group, and
//!   never reaches memory (no keep bytes, no draw phase);
//! - or broadcast over trailing dimensions only, one mask element per `inner` elements with
//!   `inner` a multiple of 4 (Dropout1d/2d/3d, FeatureAlphaDropout, DropPath): its few keep
//!   bytes are drawn before the loop, as on the scalar path, one byte per vector.
//!
//! Everything else (calls like `exp`, other broadcasts, narrow channel masks) takes the
//! scalar loop, where every drawing dropout's keep bytes are drawn in a phase of their own.
//! So does a kernel of more than [`MAX_VECTOR_MEMBERS`] members: the vector loop repeats its
//! body for the 32 vectors of a group, so its code, and the time Cranelift takes to compile
//! it, grow 32 times faster than the scalar loop's; a body that long gains little from lanes.

use crate::graph::{DType, Dropout, Elementwise, Graph, NodeId, Shape};
use crate::rng::mask::GROUP_SIZE;

/// The most members a vector kernel has (real models fuse a few to a few dozen: an Adam
/// update is about twenty).
pub const MAX_VECTOR_MEMBERS: usize = 64;

/// How an element-wise kernel's loop is generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// One element at a time (and every kernel that is not element-wise).
    Scalar,
    /// Four lanes at a time over groups of 128 elements.
    Vector {
        /// How the loop reads each of the kernel's inputs, in
        /// [`crate::plan::Kernel::inputs`] order.
        reads: Vec<Read>,
        /// Per member, in [`crate::plan::Kernel::nodes`] order: where a drawing dropout finds
        /// its mask.
        masks: Vec<Option<MaskForm>>,
    },
}

/// How the vector loop reads an operand from outside its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The loop's shape: element for element.
    Full,
    /// One element (a scalar such as an optimizer's learning rate, broadcast to every
    /// element): loaded once and splatted.
    Splat,
    /// The loop shape's trailing dimensions, `period` elements (a multiple of 4): element `e`
    /// reads element `e % period` (a linear's bias over its rows).
    Row {
        /// The row's length in elements.
        period: usize,
    },
}

/// Where a drawing dropout of a vector loop finds its keep bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskForm {
    /// One mask element per element: made in the loop, 128 bits per group.
    InLoop,
    /// Keep bytes drawn before the loop, one per `inner` consecutive elements (a multiple of
    /// 4, so one byte per vector): the channel kinds' masks.
    Bytes {
        /// Consecutive elements sharing one keep byte.
        inner: usize,
    },
}

impl Form {
    /// The loop form of an element-wise kernel of `graph` computing `nodes` (in order) and
    /// reading `inputs` from memory.
    pub(crate) fn of(graph: &Graph, nodes: &[NodeId], inputs: &[NodeId]) -> Form {
        if nodes.len() > MAX_VECTOR_MEMBERS {
            return Form::Scalar;
        }
        let shape = &graph[nodes[0]].ty.shape;
        let reads: Option<Vec<Read>> = (inputs.iter())
            .map(|&id| {
                let ty = &graph[id].ty;
                (ty.dtype == DType::F32)
                    .then(|| read(&ty.shape, shape))
                    .flatten()
            })
            .collect();
        let masks: Option<Vec<Option<MaskForm>>> =
            (nodes.iter()).map(|&id| member_mask(graph, id)).collect();
        match (reads, masks) {
            (Some(reads), Some(masks)) => Form::Vector { reads, masks },
            _ => Form::Scalar,
        }
    }

    /// True if the member `index` of the kernel (in [`crate::plan::Kernel::nodes`] order) makes its mask in
    /// the vector loop: it needs no keep bytes and no draw phase.
    pub(crate) fn draws_in_loop(&self, index: usize) -> bool {
        match self {
            Form::Scalar => false,
            Form::Vector { masks, .. } => masks[index] == Some(MaskForm::InLoop),
        }
    }
}

/// `Some(mask form)` for a member with a vector form (`None` inside if it draws no mask),
/// `None` if the member keeps the kernel on the scalar loop.
fn member_mask(graph: &Graph, id: NodeId) -> Option<Option<MaskForm>> {
    let node = &graph[id];
    let op = node.op.as_elementwise()?;
    if node.ty.dtype != DType::F32 || !op.has_vector_form() {
        return None;
    }
    match random_dropout(op) {
        Some(d) => {
            let input = &graph[graph.operands_of(id)[0]].ty.shape;
            mask_form(d, input).map(Some)
        }
        None => Some(None),
    }
}

/// The dropout whose mask the member draws at random (`0 < p < 1`), if any.
fn random_dropout(op: Elementwise<'_>) -> Option<&Dropout> {
    op.draws().filter(|d| d.is_random())
}

/// How the vector loop over `loop_shape` reads an external operand of shape `shape`.
fn read(shape: &Shape, loop_shape: &Shape) -> Option<Read> {
    if shape == loop_shape {
        return Some(Read::Full);
    }
    if shape.numel() == 1 {
        return Some(Read::Splat);
    }
    // Leading ones aside, the operand's dimensions are the loop's last ones.
    let dims = shape.dims();
    let own = &dims[dims.iter().take_while(|&&d| d == 1).count()..];
    let trailing = loop_shape.dims().ends_with(own);
    let period: usize = own.iter().product();
    (trailing && period.is_multiple_of(4)).then_some(Read::Row { period })
}

/// How a vector loop reads the mask of `d` applied to an input of shape `input`, if it can.
fn mask_form(d: &Dropout, input: &Shape) -> Option<MaskForm> {
    let mask = d.mask_shape(input).ok()?;
    if d.sample_steps {
        // Samples draw at steps of their own: in the loop, sample after sample, if every
        // sample is whole groups (else groups would straddle two samples' steps); otherwise
        // the scalar loop's draw phase starts each sample's groups anew.
        let samples = d.mask_samples(input).ok()?;
        let whole = samples.per_sample > 0 && samples.per_sample.is_multiple_of(GROUP_SIZE);
        return (mask == *input && whole).then_some(MaskForm::InLoop);
    }
    if mask == *input {
        return Some(MaskForm::InLoop);
    }
    // Broadcast over trailing dimensions only: mask element j / inner for element j.
    let (x, m) = (input.dims(), mask.dims());
    let first = (0..x.len()).find(|&i| x[i] != m[i])?;
    let inner: usize = x[first..].iter().product();
    let trailing = m[first..].iter().all(|&d| d == 1);
    (trailing && inner.is_multiple_of(4)).then_some(MaskForm::Bytes { inner })
}
