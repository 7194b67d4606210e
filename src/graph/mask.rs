//! Building a dropout together with its keep mask, the graph-level form of
//! `dropout_with_mask`.

use super::{Dropout, Graph, NodeId, Op};
use crate::error::Result;

impl Graph {
    /// Adds the dropout `name` (`dropout` applied to `x`) and its keep mask `name.mask`, a
    /// `dropout_mask` with the same attributes and stream (`bool`, in the mask shape, `true` =
    /// kept), and returns both. The mask is never in place; the dropout keeps `inplace` as
    /// given (an in-place dropout whose mask also reads `x` does not compile:
    /// [`crate::Error::InplaceConflict`]). Fails like [`Graph::add`], naming the dropout.
    ///
    /// ```
    /// # fn main() -> dropjit::Result<()> {
    /// use dropjit::{Dropout, DropoutKind, Graph, Op, TensorType};
    /// let mut g = Graph::new("g");
    /// let x = g.add("x", Op::Input(TensorType::f32([8, 3, 4, 4])), &[])?;
    /// let d = Dropout::new(DropoutKind::Dropout2d, 0.5, 0);
    /// let (y, mask) = g.add_dropout_with_mask("d", d, x)?;
    /// g.add_output("y", y)?;
    /// g.add_output("mask", mask)?;
    /// assert_eq!(g.node(mask).ty.to_string(), "bool[8, 3, 1, 1]");
    /// assert_eq!(g.node(mask).name, "d.mask");
    /// # Ok(()) }
    /// ```
    pub fn add_dropout_with_mask(
        &mut self,
        name: &str,
        dropout: Dropout,
        x: NodeId,
    ) -> Result<(NodeId, NodeId)> {
        let mask = Dropout {
            inplace: false,
            ..dropout.clone()
        };
        let y = self.add(name, Op::Dropout(dropout), &[x])?;
        match self.add(format!("{name}.mask"), Op::DropoutMask(mask), &[x]) {
            Ok(mask) => Ok((y, mask)),
            Err(error) => {
                // Both or neither: the dropout goes again.
                self.remove(y);
                Err(error)
            }
        }
    }
}
