//! SimpleNet, the seed page's "dropout in a deep network" model: three linear layers with a
//! ReLU and a dropout after each hidden one.

use crate::error::Result;
use crate::nn::{self, Module, Var, child, relu};
use crate::rng::Generator;

/// `inputs -> h1 -> relu -> Dropout(p) -> h2 -> relu -> Dropout(p) -> classes`, with the
/// seed page's layer names (`fc1`, `dropout1`, `fc2`, `dropout2`, `fc3`), which name its
/// traced nodes and parameters (`fc1.weight`). The layers are public fields, as a PyTorch
/// model's attributes are.
///
/// Parameters are drawn before anything else (PyTorch's default Linear initialisation, `fc1`,
/// `fc2`, `fc3` in order) and do not depend on `p`, so networks built from equal generators
/// start from equal weights whatever their dropout rate.
pub struct SimpleNet {
    /// `inputs -> h1`.
    pub fc1: nn::Linear,
    /// After `fc1`'s ReLU.
    pub dropout1: nn::Dropout,
    /// `h1 -> h2`.
    pub fc2: nn::Linear,
    /// After `fc2`'s ReLU.
    pub dropout2: nn::Dropout,
    /// `h2 -> classes`: the logits.
    pub fc3: nn::Linear,
}

impl SimpleNet {
    /// A network of the given widths and dropout rate, initialised from `generator`; an
    /// invalid `p` is [`crate::Error::Probability`].
    pub fn new(
        inputs: usize,
        hidden: [usize; 2],
        classes: usize,
        p: f64,
        generator: &mut Generator,
    ) -> Result<SimpleNet> {
        let fc1 = nn::Linear::new(inputs, hidden[0], generator)?;
        let fc2 = nn::Linear::new(hidden[0], hidden[1], generator)?;
        let fc3 = nn::Linear::new(hidden[1], classes, generator)?;
        Ok(SimpleNet {
            fc1,
            dropout1: nn::Dropout::new(p)?,
            fc2,
            dropout2: nn::Dropout::new(p)?,
            fc3,
        })
    }

    /// The seed page's network exactly: 784 inputs (a flattened 28x28 MNIST image) -> 256
    /// -> 128 -> 10 classes, with two Dropout(0.5).
    pub fn mnist(generator: &mut Generator) -> SimpleNet {
        SimpleNet::new(784, [256, 128], 10, 0.5, generator)
            .expect("invariant: p = 0.5 is a valid dropout rate")
    }
}

impl Module for SimpleNet {
    fn forward(&self, x: &Var) -> Result<Var> {
        let x = relu(&self.fc1.forward(x)?)?;
        let x = self.dropout1.forward(&x)?; // prevents co-adaptation in the first layer
        let x = relu(&self.fc2.forward(&x)?)?;
        let x = self.dropout2.forward(&x)?; // and in the second
        self.fc3.forward(&x)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            child("fc1", &self.fc1),
            child("dropout1", &self.dropout1),
            child("fc2", &self.fc2),
            child("dropout2", &self.dropout2),
            child("fc3", &self.fc3),
        ]
    }
}

impl std::fmt::Display for SimpleNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        nn::fmt_module(self, f)
    }
}
