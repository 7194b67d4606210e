//! [`Sequential`]: modules applied one after another.

use std::fmt;

use super::module::{Module, fmt_module};
use super::var::Var;
use crate::error::Result;

/// `nn.Sequential`: feeds each module's output to the next. Children are named `0`, `1`, ...
/// (so parameters are `0.weight`, ...). The first module borrows the input; the later ones
/// take the previous output by value ([`Module::forward_owned`]), so in-place modules inside
/// write into intermediate values, never into the caller's.
#[derive(Default)]
pub struct Sequential {
    modules: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// The modules in order.
    pub fn new(modules: Vec<Box<dyn Module>>) -> Sequential {
        Sequential { modules }
    }

    /// Appends a module, builder style.
    pub fn with(mut self, module: impl Module + 'static) -> Sequential {
        self.push(module);
        self
    }

    /// Appends a module.
    pub fn push(&mut self, module: impl Module + 'static) {
        self.modules.push(Box::new(module));
    }

    /// The number of modules.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// True if there are no modules (the identity).
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The `index`-th module.
    pub fn get(&self, index: usize) -> Option<&dyn Module> {
        self.modules.get(index).map(|m| m.as_ref())
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Var) -> Result<Var> {
        let Some((first, rest)) = self.modules.split_first() else {
            return Ok(x.clone());
        };
        let mut value = first.forward(x)?;
        for module in rest {
            value = module.forward_owned(value)?;
        }
        Ok(value)
    }

    fn forward_owned(&self, x: Var) -> Result<Var> {
        self.modules
            .iter()
            .try_fold(x, |value, module| module.forward_owned(value))
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        (self.modules.iter().enumerate())
            .map(|(i, m)| (i.to_string(), m.as_ref()))
            .collect()
    }
}

impl fmt::Display for Sequential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_module(self, f)
    }
}
