//! Building a dropout together with its keep mask, the graph-level form of
//! `dropout_with_mask`.

use super::{Builder, Dropout, Graph, Naming, NodeId, Op};
use crate::error::Result;

impl Builder<'_> {
    /// Adds the dropout `name` (`dropout` applied to `x`) and its keep mask `<dropout>.mask`,
    /// a `dropout_mask` with the same attributes and stream (`bool`, in the mask shape, `true` =
    /// kept), and returns both; both names follow the builder's policy. The mask is never in
    /// place; the dropout keeps `inplace` as given (an in-place dropout whose mask also reads
    /// `x` does not compile: [`crate::Error::InplaceConflict`]). Fails like [`Builder::node`],
    /// naming the dropout, and then adds neither.
    pub fn dropout_with_mask(
        &mut self,
        name: &str,
        dropout: Dropout,
        x: NodeId,
    ) -> Result<(NodeId, NodeId)> {
        let mask = Dropout {
            inplace: false,
            ..dropout.clone()
        };
        let y = self.node(name, Op::Dropout(dropout), &[x])?;
        let mask_name = format!("{}.mask", self.graph()[y].name);
        match self.node(&mask_name, Op::DropoutMask(mask), &[x]) {
            Ok(mask) => Ok((y, mask)),
            Err(error) => {
                // Both or neither: the dropout goes again.
                self.remove(y);
                Err(error)
            }
        }
    }
}

impl Graph {
    /// [`Builder::dropout_with_mask`] under exactly the names `name` and `name.mask`.
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
    /// assert_eq!(g[mask].ty.to_string(), "bool[8, 3, 1, 1]");
    /// assert_eq!(g[mask].name, "d.mask");
    /// # Ok(()) }
    /// ```
    pub fn add_dropout_with_mask(
        &mut self,
        name: &str,
        dropout: Dropout,
        x: NodeId,
    ) -> Result<(NodeId, NodeId)> {
        Builder::new(self, Naming::Exact).dropout_with_mask(name, dropout, x)
    }
}
