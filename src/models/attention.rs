//! [`CausalSelfAttention`]: nanoGPT's multi-head causal self-attention, from `nn` modules and
//! functional ops, so it traces into the ops the compiler fuses (`matmul`, `where` over a
//! `tril` mask, `softmax`, `dropout`).
//!
//! ```text
//! q, k, v = x Wqᵀ + bq, ...                   [B, T, C] each, heads split: [B, nh, T, hs]
//! att = softmax(where(tril, (q @ kᵀ) * (1 / sqrt(hs)), -inf)) ; dropout(att)
//! y = (att @ v) merged back to [B, T, C] ; c_proj ; dropout
//! ```
//!
//! One difference from nanoGPT's module: the query, key and value projections are three
//! linears (`q`, `k`, `v`) rather than one `c_attn` of `3C` outputs split in three (the IR
//! has no slicing op yet). The parameters count the same and are drawn from the same
//! distribution (fan-in `C` for all three); the names differ.

use crate::error::Result;
use crate::nn::{self, Module, Var, child};
use crate::rng::Generator;
use crate::tensor::Tensor;

/// Multi-head causal self-attention over `[B, T, C]` with `heads` heads and dropout `p`
/// on the attention probabilities and on the output (nanoGPT's `attn_dropout` and
/// `resid_dropout`).
pub struct CausalSelfAttention {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    c_proj: nn::Linear,
    attn_dropout: nn::Dropout,
    resid_dropout: nn::Dropout,
    heads: usize,
}

impl CausalSelfAttention {
    /// `C = embd` split over `heads` heads (`embd % heads == 0`), PyTorch's default
    /// initialisation drawn from `generator` (q, k, v, c_proj in that order).
    pub fn new(
        embd: usize,
        heads: usize,
        p: f64,
        generator: &mut Generator,
    ) -> Result<CausalSelfAttention> {
        let mut linear = || nn::Linear::new(embd, embd, generator);
        let layers = [linear()?, linear()?, linear()?, linear()?];
        CausalSelfAttention::from_layers(layers, heads, p)
    }

    /// The attention of given projections (each `[C, C]` with a bias, `C` splitting over
    /// `heads`), dropout `p`.
    pub fn from_layers(
        [q, k, v, c_proj]: [nn::Linear; 4],
        heads: usize,
        p: f64,
    ) -> Result<CausalSelfAttention> {
        let embd = q.in_features();
        if heads == 0 || !embd.is_multiple_of(heads) {
            return Err(crate::Error::Module {
                module: "CausalSelfAttention".to_string(),
                detail: crate::error::TypeError::Heads { embd, heads },
            });
        }
        Ok(CausalSelfAttention {
            q,
            k,
            v,
            c_proj,
            attn_dropout: nn::Dropout::new(p)?,
            resid_dropout: nn::Dropout::new(p)?,
            heads,
        })
    }

    /// `[B, T, C] -> [B, nh, T, hs]`.
    fn heads_of(&self, x: &Var, dims: &[usize]) -> Result<Var> {
        let (b, t, c) = (dims[0] as i64, dims[1] as i64, dims[2]);
        let hs = (c / self.heads) as i64;
        let split = nn::reshape(x, &[b, t, self.heads as i64, hs])?;
        nn::transpose(&split, &[0, 2, 1, 3])
    }
}

impl Module for CausalSelfAttention {
    fn forward(&self, x: &Var) -> Result<Var> {
        let dims = x.shape().dims().to_vec();
        let (t, c) = (dims[1], dims[2]);
        let q = self.heads_of(&self.q.forward(x)?, &dims)?;
        let k = self.heads_of(&self.k.forward(x)?, &dims)?;
        let v = self.heads_of(&self.v.forward(x)?, &dims)?;
        let scores = nn::matmul(&q, &nn::transpose(&k, &[0, 1, 3, 2])?)?;
        let scale = Var::new(Tensor::scalar(1.0 / ((c / self.heads) as f32).sqrt()));
        let scaled = nn::mul(&scores, &scale)?;
        let ninf = Var::new(Tensor::scalar(f32::NEG_INFINITY));
        let masked = nn::where_(&nn::causal_mask(t, t)?, &scaled, &ninf)?;
        let att = self.attn_dropout.forward(&nn::softmax(&masked, -1)?)?;
        let y = nn::matmul(&att, &v)?;
        let merged = nn::transpose(&y, &[0, 2, 1, 3])?;
        let merged = nn::reshape(&merged, &[dims[0] as i64, t as i64, c as i64])?;
        self.resid_dropout.forward(&self.c_proj.forward(&merged)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("q", &self.q),
            child("k", &self.k),
            child("v", &self.v),
            child("c_proj", &self.c_proj),
            child("attn_dropout", &self.attn_dropout),
            child("resid_dropout", &self.resid_dropout),
        ]
    }
}
