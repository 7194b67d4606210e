//! [`Embedding`]: `torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx)`, a table
//! of `[num, dim]` rows looked up by i32 indices; the op's definition is
//! [`crate::graph::embedding`].

use std::fmt;

use super::eager::parametric_forward;
use super::module::{Module, fmt_module};
use super::var::Var;
use crate::error::{Error, Result};
use crate::graph::embedding::padding_row;
use crate::graph::{Op, embedding};
use crate::rng::Generator;
use crate::runtime::ParameterStore;
use crate::tensor::Tensor;

/// `nn.Embedding`: the table `weight [num_embeddings, embedding_dim]`, drawn from N(0, 1) as
/// PyTorch does, its padding row (if any) zero.
pub struct Embedding {
    op: embedding::Embedding,
    params: ParameterStore,
}

impl Embedding {
    /// A table of `num_embeddings` rows of `embedding_dim`, each element drawn from N(0, 1)
    /// from a fresh host stream of `generator`.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        generator: &mut Generator,
    ) -> Result<Embedding> {
        let weight = generator.normal([num_embeddings, embedding_dim], 0.0, 1.0)?;
        Embedding::from_weight(weight, None)
    }

    /// [`Embedding::new`] with a padding row (negative counts from the end), zeroed as
    /// PyTorch does; it gets no gradient.
    pub fn with_padding(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: i64,
        generator: &mut Generator,
    ) -> Result<Embedding> {
        let weight = generator.normal([num_embeddings, embedding_dim], 0.0, 1.0)?;
        Embedding::from_weight(weight, Some(padding_idx))
    }

    /// An embedding with the table `weight` (`[num, dim]`) as it is (PyTorch's
    /// `from_pretrained`, trainable); [`Error::Module`] if it is no table or `padding_idx`
    /// is outside it.
    pub fn from_weight(weight: Tensor, padding_idx: Option<i64>) -> Result<Embedding> {
        let invalid = |detail| Error::Module {
            module: "Embedding".to_string(),
            detail,
        };
        let (num, dim) = embedding::table("embedding", weight.shape()).map_err(invalid)?;
        let row = padding_row("embedding", padding_idx, num).map_err(invalid)?;
        let mut weight = weight;
        if let Some(row) = row {
            let data = weight.as_f32_mut().ok_or_else(|| {
                invalid(crate::error::TypeError::Embedding {
                    op: "embedding",
                    reason: "the table has to be f32".to_string(),
                })
            })?;
            data[row * dim..(row + 1) * dim].fill(0.0);
        }
        let mut params = ParameterStore::new();
        params.insert("weight", weight);
        // Negative counts from the end, stored as the row itself, as PyTorch's module does.
        let padding_idx = row.map(|row| row as i64);
        Ok(Embedding {
            op: embedding::Embedding { padding_idx },
            params,
        })
    }

    /// The table, `[num_embeddings, embedding_dim]`.
    pub fn weight(&self) -> &Tensor {
        self.params
            .get("weight")
            .expect("invariant: Embedding has a weight")
    }
}

impl Embedding {
    /// `x @ weightᵀ`: the table as a bias-free output layer over the embedding dimension
    /// (`[..., dim] -> [..., num]`), nanoGPT's tied `lm_head` (flax's `Embed.attend`). Traced,
    /// it reads the lookup's own parameter node, so the table is one parameter counted once
    /// and its gradient is the sum of both uses'.
    pub fn attend(&self, x: &Var) -> Result<Var> {
        let parameters = vec![("weight", self.weight().ty())];
        parametric_forward(
            self,
            Op::Linear { bias: false },
            x,
            &self.params,
            parameters,
        )
    }
}

impl Module for Embedding {
    fn forward(&self, x: &Var) -> Result<Var> {
        let parameters = vec![("weight", self.weight().ty())];
        parametric_forward(
            self,
            Op::Embedding(self.op.clone()),
            x,
            &self.params,
            parameters,
        )
    }

    fn local_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("weight", self.weight())]
    }

    fn extra_repr(&self) -> String {
        let dims = self.weight().shape().dims();
        let mut repr = format!("{}, {}", dims[0], dims[1]);
        if let Some(p) = self.op.padding_idx {
            repr.push_str(&format!(", padding_idx={p}"));
        }
        repr
    }
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}

impl fmt::Debug for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
