//! Models shared by the module API tests: the seed's SimpleNet and a module called twice.
// Each test binary uses a different subset.
#![allow(dead_code)]

use dropjit::Generator;
use dropjit::nn::{self, Module, Var, child, relu};

/// The seed page's SimpleNet, written as a user would.
pub struct SimpleNet {
    pub fc1: nn::Linear,
    pub dropout1: nn::Dropout,
    pub fc2: nn::Linear,
    pub dropout2: nn::Dropout,
    pub fc3: nn::Linear,
}

impl SimpleNet {
    /// Layers drawn from `generator`.
    pub fn new(generator: &mut Generator) -> dropjit::Result<SimpleNet> {
        Ok(SimpleNet {
            fc1: nn::Linear::new(784, 256, generator),
            dropout1: nn::Dropout::new(0.5)?,
            fc2: nn::Linear::new(256, 128, generator),
            dropout2: nn::Dropout::new(0.5)?,
            fc3: nn::Linear::new(128, 10, generator),
        })
    }
}

impl Module for SimpleNet {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
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

/// One dropout module applied twice to the input: two call sites, streams 0 and 1.
pub struct Twice {
    pub d: nn::Dropout,
}

impl Module for Twice {
    fn forward(&self, x: &Var) -> dropjit::Result<Var> {
        let _first = self.d.forward(x)?;
        self.d.forward(x)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![child("d", &self.d)]
    }
}
