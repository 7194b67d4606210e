//! The experiment's network: SimpleNet's shape with configurable widths and dropout rate.

use crate::error::Result;
use crate::nn::{self, Module, Var, child, relu};
use crate::rng::Generator;

/// `inputs -> h1 -> relu -> Dropout(p) -> h2 -> relu -> Dropout(p) -> classes`, the seed
/// page's SimpleNet with its sizes as parameters (nodes `fc1`, `dropout1`, `fc2`, `dropout2`,
/// `fc3`). Parameters are drawn before anything else and do not depend on `p`, so networks
/// built from equal generators start from equal weights whatever their dropout rate.
pub struct SimpleNet {
    fc1: nn::Linear,
    dropout1: nn::Dropout,
    fc2: nn::Linear,
    dropout2: nn::Dropout,
    fc3: nn::Linear,
}

impl SimpleNet {
    /// A network with PyTorch's default Linear initialisation drawn from `generator`
    /// (`fc1`, `fc2`, `fc3` in order); an invalid `p` is [`crate::Error::Probability`].
    pub fn new(
        inputs: usize,
        hidden: [usize; 2],
        classes: usize,
        p: f64,
        generator: &mut Generator,
    ) -> Result<SimpleNet> {
        let fc1 = nn::Linear::new(inputs, hidden[0], generator);
        let fc2 = nn::Linear::new(hidden[0], hidden[1], generator);
        let fc3 = nn::Linear::new(hidden[1], classes, generator);
        Ok(SimpleNet {
            fc1,
            dropout1: nn::Dropout::new(p)?,
            fc2,
            dropout2: nn::Dropout::new(p)?,
            fc3,
        })
    }
}

impl Module for SimpleNet {
    fn forward(&self, x: &Var) -> Result<Var> {
        let x = relu(&self.fc1.forward(x)?)?;
        let x = self.dropout1.forward(&x)?;
        let x = relu(&self.fc2.forward(&x)?)?;
        let x = self.dropout2.forward(&x)?;
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
