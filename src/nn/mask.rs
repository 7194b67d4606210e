//! Masks as outputs: `dropout_with_mask` returns a dropout's result and its keep mask, like
//! `torch.native_dropout` and ONNX Dropout's optional second output.
//!
//! The mask is a `bool` tensor (`true` = kept) in the *mask shape*: the input's shape for the
//! element-wise kinds (exactly `torch.native_dropout`'s mask), and one value per channel for
//! the channel-wise kinds (`(N, C, 1, 1)` for `Dropout2d` on `(N, C, H, W)`). PyTorch's
//! `Dropout1d/2d/3d` and `FeatureAlphaDropout` have no mask output; ours is the per-channel draw
//! they make internally, so broadcasting it over the input gives the element-wise picture.
//!
//! How calls draw, by the same rules as `forward` (see [`crate::nn`]):
//! - **Eager**, train mode: one generator step, stream 0; the mask is the one that step's
//!   result was computed with (`kept <=> y == x * scale`, for `0 < p < 1`). Eval mode: `x`
//!   itself and an all-true mask, the generator untouched.
//! - **Traced**, train mode: a dropout node on the trace's next stream and a `dropout_mask`
//!   node on the same stream, named `<dropout>.mask`. Eval mode: no dropout node, and an
//!   all-true constant `<dropout>.mask`; the stream is still claimed.
//!
//! A call with a mask never writes in place, whatever the module's `inplace` flag (the mask
//! reads the input's shape, and in-place dropouts refuse other readers of their input).

use std::rc::Rc;

use super::dropout::{DropoutCall, DropoutLayer, Variant};
use super::trace::TracedNode;
use super::var::{Repr, Var};
use crate::error::Result;
use crate::graph::Op;
use crate::rng::Generator;
use crate::tensor::Tensor;

impl<V: Variant> DropoutLayer<V> {
    /// The result and its keep mask (`true` = kept, in the mask shape; see "Masks as outputs"
    /// in [`crate::nn`]), drawing an eager call's mask from the thread's default generator.
    /// Never writes into `x`.
    ///
    /// ```
    /// # fn main() -> dropjit::Result<()> {
    /// use dropjit::nn;
    /// let dropout = nn::Dropout2d::new(0.5)?;
    /// let x = dropjit::randn([8, 3, 5, 5])?;
    /// let (y, mask) = dropout.dropout_with_mask(&x)?;
    /// assert_eq!(mask.shape(), dropjit::Shape::new([8, 3, 1, 1])); // one value per channel
    /// assert_eq!(y.shape(), x.shape());
    /// # Ok(()) }
    /// ```
    pub fn dropout_with_mask(&self, x: &Var) -> Result<(Var, Var)> {
        self.call().apply_with_mask(x, None)
    }

    /// [`DropoutLayer::dropout_with_mask`] drawing an eager call's mask from `generator`.
    pub fn dropout_with_mask_with(&self, x: &Var, generator: &mut Generator) -> Result<(Var, Var)> {
        self.call().apply_with_mask(x, Some(generator))
    }
}

impl DropoutCall<'_> {
    /// The result as a new value and the keep mask (see the module docs).
    pub(crate) fn apply_with_mask(
        &self,
        x: &Var,
        generator: Option<&mut Generator>,
    ) -> Result<(Var, Var)> {
        match &x.repr {
            Repr::Eager(t) => {
                let (y, mask) = self.eager().run_with_mask(t, generator)?;
                Ok((Var::new(y), Var::new(mask)))
            }
            Repr::Traced(node) => self.traced_with_mask(node),
        }
    }

    /// A dropout node and its mask on the next stream, or (eval mode) `x` and an all-true
    /// constant after checking that the dropout would fit.
    fn traced_with_mask(&self, node: &Rc<TracedNode>) -> Result<(Var, Var)> {
        let stream = node.claim_stream();
        let name = self.node_name(node);
        let attrs = self.attrs(false, stream);
        if self.training {
            let (y, mask) = node.build(|b, x| b.dropout_with_mask(&name, attrs, x))?;
            Ok((node.value(y), node.value(mask)))
        } else {
            let ty = node.build(|b, x| b.check(&name, &Op::Dropout(attrs.clone()), &[x]))?;
            let shape = (attrs.mask_shape(&ty.shape))
                .expect("invariant: the dropout was checked against this input");
            let all_kept = Tensor::full_bool(shape, true)?;
            let mask = node.build(|b, _| b.constant(&format!("{name}.mask"), all_kept))?;
            Ok((Var::from_node(Rc::clone(node)), node.value(mask)))
        }
    }
}
