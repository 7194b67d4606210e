//! A test model shared by the module API tests: one dropout module called twice. (SimpleNet,
//! which the demos and benches share too, is `dropjit::models::SimpleNet`.)

use dropjit::nn::{self, Module, Var, child};

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
