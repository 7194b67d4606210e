//! MnistNet: the classic PyTorch MNIST example network (`pytorch/examples`, `mnist/main.py`,
//! with the Dropout2d(0.25) of its first versions), the network the CNN benchmarks time.

use crate::error::Result;
use crate::nn::{self, Module, Var, child, relu};
use crate::rng::Generator;

/// `[N, 1, 28, 28] -> conv1 (1 -> 32, 3x3) -> relu -> conv2 (32 -> 64, 3x3) -> relu ->
/// max_pool (2x2) -> Dropout2d(0.25) -> flatten -> fc1 (9216 -> 128) -> relu -> Dropout(0.5)
/// -> fc2 (128 -> 10)`: the logits (the example's `log_softmax` + `nll_loss` is
/// [`crate::train::Loss::CrossEntropy`] on them). 1,199,882 parameters, drawn first
/// (PyTorch's default initialisation, `conv1`, `conv2`, `fc1`, `fc2` in order).
pub struct MnistNet {
    pub conv1: nn::ConvNd,
    pub conv2: nn::ConvNd,
    pub pool: nn::PoolNd,
    pub dropout1: nn::Dropout2d,
    pub flatten: nn::Flatten,
    pub fc1: nn::Linear,
    pub dropout2: nn::Dropout,
    pub fc2: nn::Linear,
}

impl MnistNet {
    /// The example's network, initialised from `generator`.
    pub fn new(generator: &mut Generator) -> MnistNet {
        MnistNet::build(generator).expect("invariant: the example's sizes and rates are valid")
    }

    fn build(generator: &mut Generator) -> Result<MnistNet> {
        Ok(MnistNet {
            conv1: nn::ConvNd::new(1, 32, &[3, 3], generator)?,
            conv2: nn::ConvNd::new(32, 64, &[3, 3], generator)?,
            pool: nn::PoolNd::max(&[2, 2]),
            dropout1: nn::Dropout2d::new(0.25)?,
            flatten: nn::Flatten,
            fc1: nn::Linear::new(9216, 128, generator)?,
            dropout2: nn::Dropout::new(0.5)?,
            fc2: nn::Linear::new(128, 10, generator)?,
        })
    }
}

impl Module for MnistNet {
    fn forward(&self, x: &Var) -> Result<Var> {
        let x = relu(&self.conv1.forward(x)?)?;
        let x = relu(&self.conv2.forward(&x)?)?;
        let x = self.pool.forward(&x)?;
        let x = self.dropout1.forward(&x)?; // drops whole feature maps
        let x = self.flatten.forward(&x)?;
        let x = relu(&self.fc1.forward(&x)?)?;
        let x = self.dropout2.forward(&x)?;
        self.fc2.forward(&x)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("conv1", &self.conv1),
            child("conv2", &self.conv2),
            child("pool", &self.pool),
            child("dropout1", &self.dropout1),
            child("flatten", &self.flatten),
            child("fc1", &self.fc1),
            child("dropout2", &self.dropout2),
            child("fc2", &self.fc2),
        ]
    }
}

impl std::fmt::Display for MnistNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        nn::fmt_module(self, f)
    }
}
