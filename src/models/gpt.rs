//! [`Gpt`]: nanoGPT's model (Karpathy's `model.py`) from `nn` modules: token and position
//! embeddings, pre-LayerNorm blocks (causal self-attention and a GELU MLP, each a residual
//! branch ending in dropout), a final layer norm and the output layer tied to the token
//! table ([`nn::Embedding::attend`]).
//!
//! Initialisation is nanoGPT's, not PyTorch's defaults: every linear weight and both tables
//! normal(0, 0.02), the residual projections (`c_proj`) normal(0, 0.02 / sqrt(2 layers)),
//! biases zero, layer norms ones and zeros. Drawn from one generator in module order.
//! The one structural difference: the attention's query, key and value are three linears
//! ([`super::CausalSelfAttention`]); the parameters count the same (809,856 for the character
//! configuration [`GptConfig::shakespeare_char`] over 65 characters).

use crate::error::Result;
use crate::graph::Approximate;
use crate::nn::{self, Module, Var, child};
use crate::rng::Generator;
use crate::tensor::Tensor;

use super::CausalSelfAttention;

/// nanoGPT's `GPTConfig` (with `bias = True`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GptConfig {
    /// Tokens in the vocabulary.
    pub vocab: usize,
    /// The longest context (`block_size`), the position table's rows.
    pub block: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// The embedding width `C`.
    pub embd: usize,
    /// Every dropout's probability.
    pub dropout: f64,
}

impl GptConfig {
    /// nanoGPT's CPU configuration for `shakespeare_char`: block 64, 4 layers, 4 heads,
    /// width 128, dropout 0.2, over `vocab` characters.
    pub fn shakespeare_char(vocab: usize) -> GptConfig {
        GptConfig {
            vocab,
            block: 64,
            layers: 4,
            heads: 4,
            embd: 128,
            dropout: 0.2,
        }
    }
}

/// A linear `[out, in]` with nanoGPT's initialisation: weight normal(0, `std`), bias zero.
fn linear(inp: usize, out: usize, std: f32, g: &mut Generator) -> Result<nn::Linear> {
    let weight = g.normal([out, inp], 0.0, std)?;
    let bias = Tensor::zeros(&crate::graph::TensorType::f32([out]))?;
    nn::Linear::from_parameters(weight, bias)
}

/// The block's MLP: `c_fc` (C -> 4C), GELU, `c_proj` (4C -> C), dropout.
struct Mlp {
    c_fc: nn::Linear,
    gelu: nn::GELU,
    c_proj: nn::Linear,
    dropout: nn::Dropout,
}

impl Module for Mlp {
    fn forward(&self, x: &Var) -> Result<Var> {
        let h = self.gelu.forward(&self.c_fc.forward(x)?)?;
        self.dropout.forward(&self.c_proj.forward(&h)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("c_fc", &self.c_fc),
            child("gelu", &self.gelu),
            child("c_proj", &self.c_proj),
            child("dropout", &self.dropout),
        ]
    }
}

/// `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
struct Block {
    ln_1: nn::LayerNorm,
    attn: CausalSelfAttention,
    ln_2: nn::LayerNorm,
    mlp: Mlp,
}

impl Module for Block {
    fn forward(&self, x: &Var) -> Result<Var> {
        let x = nn::add(x, &self.attn.forward(&self.ln_1.forward(x)?)?)?;
        nn::add(&x, &self.mlp.forward(&self.ln_2.forward(&x)?)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("ln_1", &self.ln_1),
            child("attn", &self.attn),
            child("ln_2", &self.ln_2),
            child("mlp", &self.mlp),
        ]
    }
}

/// nanoGPT's GPT over i32 tokens `[B, T]` (`T <= block`): the logits of every position,
/// flattened to `[B * T, vocab]` for the cross-entropy against the next tokens `[B * T]`.
pub struct Gpt {
    config: GptConfig,
    wte: nn::Embedding,
    wpe: nn::Embedding,
    drop: nn::Dropout,
    blocks: Vec<Block>,
    ln_f: nn::LayerNorm,
}

impl Gpt {
    /// The model of `config`, initialised as nanoGPT does from `generator`.
    pub fn new(config: GptConfig, generator: &mut Generator) -> Result<Gpt> {
        let GptConfig {
            vocab,
            block,
            layers,
            heads,
            embd,
            dropout,
        } = config;
        let g = generator;
        let residual_std = 0.02 / (2.0 * layers as f32).sqrt();
        let wte = nn::Embedding::from_weight(g.normal([vocab, embd], 0.0, 0.02)?, None)?;
        let wpe = nn::Embedding::from_weight(g.normal([block, embd], 0.0, 0.02)?, None)?;
        let mut blocks = Vec::with_capacity(layers);
        for _ in 0..layers {
            let projections = [
                linear(embd, embd, 0.02, g)?,
                linear(embd, embd, 0.02, g)?,
                linear(embd, embd, 0.02, g)?,
                linear(embd, embd, residual_std, g)?,
            ];
            blocks.push(Block {
                ln_1: nn::LayerNorm::new(&[embd])?,
                attn: CausalSelfAttention::from_layers(projections, heads, dropout)?,
                ln_2: nn::LayerNorm::new(&[embd])?,
                mlp: Mlp {
                    c_fc: linear(embd, 4 * embd, 0.02, g)?,
                    gelu: nn::GELU::new(Approximate::None),
                    c_proj: linear(4 * embd, embd, residual_std, g)?,
                    dropout: nn::Dropout::new(dropout)?,
                },
            });
        }
        Ok(Gpt {
            config,
            wte,
            wpe,
            drop: nn::Dropout::new(dropout)?,
            blocks,
            ln_f: nn::LayerNorm::new(&[embd])?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> GptConfig {
        self.config
    }
}

impl Module for Gpt {
    fn forward(&self, idx: &Var) -> Result<Var> {
        let t = idx.shape().dims().last().copied().unwrap_or(1);
        let positions = Tensor::from_i32([t], (0..t as i32).collect())?;
        let pos = nn::constant(idx, "positions", positions)?;
        let x = nn::add(&self.wte.forward(idx)?, &self.wpe.forward(&pos)?)?;
        let mut x = self.drop.forward(&x)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let logits = self.wte.attend(&self.ln_f.forward(&x)?)?;
        nn::reshape(&logits, &[-1, self.config.vocab as i64])
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut children = vec![
            child("wte", &self.wte),
            child("wpe", &self.wpe),
            child("drop", &self.drop),
        ];
        for (i, block) in self.blocks.iter().enumerate() {
            children.push((format!("h.{i}"), block as &dyn Module));
        }
        children.push(child("ln_f", &self.ln_f));
        children
    }
}

impl std::fmt::Display for Gpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        nn::fmt_module(self, f)
    }
}
