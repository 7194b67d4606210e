//! DigitsCnn: a small convolutional network for the embedded 8x8 digits, with Dropout2d
//! dropping whole feature maps where a CNN puts it.

use crate::error::Result;
use crate::nn::{self, Module, Var, child, relu};
use crate::rng::Generator;

/// `[N, 64] -> [N, 1, 8, 8] -> conv1 (3x3, padding 1) -> relu -> conv2 (3x3, padding 1) ->
/// relu -> max_pool (2x2) -> Dropout2d(p) -> flatten -> fc -> classes`, with the layer names
/// `conv1`, `conv2`, `pool`, `dropout`, `flatten`, `fc` (its traced nodes and parameters:
/// `conv1.weight`). Parameters are drawn first (PyTorch's default initialisation, `conv1`,
/// `conv2`, `fc` in order) and do not depend on `p`.
pub struct DigitsCnn {
    pub conv1: nn::ConvNd,
    pub conv2: nn::ConvNd,
    pub pool: nn::PoolNd,
    pub dropout: nn::Dropout2d,
    pub flatten: nn::Flatten,
    pub fc: nn::Linear,
    side: usize,
}

impl DigitsCnn {
    /// The network for `side x side` single-channel images given flattened
    /// (`[N, side * side]`), with `channels` maps per convolution and `classes` outputs;
    /// an invalid `p` is [`crate::Error::Probability`].
    pub fn new(
        side: usize,
        channels: [usize; 2],
        classes: usize,
        p: f64,
        generator: &mut Generator,
    ) -> Result<DigitsCnn> {
        let conv1 = nn::ConvNd::new(1, channels[0], &[3, 3], generator)?.padding(&[1, 1]);
        let conv2 = nn::ConvNd::new(channels[0], channels[1], &[3, 3], generator)?.padding(&[1, 1]);
        let pooled = side / 2;
        let fc = nn::Linear::new(channels[1] * pooled * pooled, classes, generator)?;
        Ok(DigitsCnn {
            conv1,
            conv2,
            pool: nn::PoolNd::max(&[2, 2]),
            dropout: nn::Dropout2d::new(p)?,
            flatten: nn::Flatten,
            fc,
            side,
        })
    }

    /// The digits demo's network: 8x8 images, 16 and 32 maps, 10 classes.
    pub fn digits(p: f64, generator: &mut Generator) -> Result<DigitsCnn> {
        DigitsCnn::new(8, [16, 32], 10, p, generator)
    }
}

impl Module for DigitsCnn {
    fn forward(&self, x: &Var) -> Result<Var> {
        let n = x.shape().dims().first().copied().unwrap_or(1) as i64;
        let side = self.side as i64;
        let x = nn::reshape(x, &[n, 1, side, side])?;
        let x = relu(&self.conv1.forward(&x)?)?;
        let x = relu(&self.conv2.forward(&x)?)?;
        let x = self.pool.forward(&x)?;
        let x = self.dropout.forward(&x)?; // drops whole feature maps
        let x = self.flatten.forward(&x)?;
        self.fc.forward(&x)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("conv1", &self.conv1),
            child("conv2", &self.conv2),
            child("pool", &self.pool),
            child("dropout", &self.dropout),
            child("flatten", &self.flatten),
            child("fc", &self.fc),
        ]
    }
}

impl std::fmt::Display for DigitsCnn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        nn::fmt_module(self, f)
    }
}
