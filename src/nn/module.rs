//! The [`Module`] trait: what every layer and every user model implements, and its
//! PyTorch-style display ([`ModuleDisplay`]).
//!
//! A model implements two methods, [`Module::forward`] and [`Module::children`]; everything
//! else (train/eval switching, parameters, names for tracing, PyTorch-style display) follows
//! from walking the children.

use std::fmt;

use super::var::Var;
use crate::error::Result;
use crate::tensor::Tensor;

/// A layer or a model: a function of one value, with children and parameters.
///
/// `forward` works on a [`Var`], which is either a concrete tensor (eager execution) or a node
/// of a graph being traced, so one `forward` serves both ways of running (see [`crate::nn`]).
pub trait Module {
    /// Computes the module's output. Never writes into `x`.
    fn forward(&self, x: &Var) -> Result<Var>;

    /// Like [`Module::forward`], taking the value: modules built with `inplace = true` write
    /// their result into it (an error if another handle shares it). [`crate::nn::Sequential`]
    /// passes intermediate values this way.
    fn forward_owned(&self, x: Var) -> Result<Var> {
        self.forward(&x)
    }

    /// The direct submodules with their field names, in declaration order. Tracing names
    /// nodes and parameters by these paths (`fc1`, `fc1.weight`), and train/eval,
    /// parameters and display recurse through them. Use [`child`] to build the entries.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// The module's own parameters (not its children's), by local name.
    fn local_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        Vec::new()
    }

    /// The module's own buffers (not its children's), by local name: state that is no
    /// trainable parameter but is saved with the model (batch norm's `running_mean`,
    /// `running_var`, `num_batches_tracked`), as values (tensors share their buffers).
    fn local_buffers(&self) -> Vec<(&'static str, Tensor)> {
        Vec::new()
    }

    /// Every buffer with its dotted path (`bn1.running_mean`): own buffers first, then each
    /// child's in declaration order, as [`Module::named_parameters`].
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = (self.local_buffers().into_iter())
            .map(|(name, t)| (name.to_string(), t))
            .collect();
        for (prefix, child) in self.children() {
            for (name, t) in child.named_buffers() {
                named.push((format!("{prefix}.{name}"), t));
            }
        }
        named
    }

    /// Sets the train/eval flag of this module and every descendant. Leaf modules with
    /// behaviour that depends on the mode (the dropout family, batch norm) override it; callers use
    /// [`Module::train`] and [`Module::eval`]. The flags are atomic, which is why `&self`
    /// suffices here; the public switches take `&mut self` because they change behaviour.
    fn set_training(&self, training: bool) {
        for (_, child) in self.children() {
            child.set_training(training);
        }
    }

    /// True if every mode-dependent descendant is in train mode (modules start in train mode,
    /// as in PyTorch).
    fn is_training(&self) -> bool {
        self.children().iter().all(|(_, child)| child.is_training())
    }

    /// Switches to train mode: dropout draws masks.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Switches to eval mode: dropout is the identity.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Every parameter, in [`Module::named_parameters`] order.
    fn parameters(&self) -> Vec<&Tensor> {
        (self.named_parameters().into_iter())
            .map(|(_, t)| t)
            .collect()
    }

    /// Every parameter with its dotted path (`fc1.weight`): own parameters first, then each
    /// child's in declaration order.
    fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        let mut named: Vec<(String, &Tensor)> = (self.local_parameters().into_iter())
            .map(|(name, t)| (name.to_string(), t))
            .collect();
        for (prefix, child) in self.children() {
            for (name, t) in child.named_parameters() {
                named.push((format!("{prefix}.{name}"), t));
            }
        }
        named
    }

    /// The full Rust type name; tracing uses it with the module's address to recognise
    /// modules. Not meant to be overridden.
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// The name displays show: the type name without its path or generic arguments.
    fn name(&self) -> String {
        short_type_name(self.type_name()).to_string()
    }

    /// The settings shown between the parentheses of the display, `p=0.5, inplace=false`.
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// The PyTorch-style display, nested over children.
    fn display(&self) -> ModuleDisplay<'_>
    where
        Self: Sized,
    {
        ModuleDisplay::new(self)
    }
}

/// One entry of [`Module::children`]: `child("fc1", &self.fc1)`.
pub fn child<'a>(name: &str, module: &'a dyn Module) -> (String, &'a dyn Module) {
    (name.to_string(), module)
}

/// Writes `module` PyTorch-style; the `Display` of every built-in module, and what a user
/// model's `Display` can forward to.
pub fn fmt_module(module: &dyn Module, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    fmt::Display::fmt(&ModuleDisplay::new(module), f)
}

/// A module rendered PyTorch-style: `Dropout(p=0.5, inplace=false)` for a leaf, and a nested
/// listing for modules with children:
///
/// ```text
/// SimpleNet(
///   (fc1): Linear(in_features=784, out_features=256, bias=true)
///   (dropout1): Dropout(p=0.5, inplace=false)
/// )
/// ```
pub struct ModuleDisplay<'a> {
    module: &'a dyn Module,
}

impl<'a> ModuleDisplay<'a> {
    /// The display of `module`.
    pub fn new(module: &'a dyn Module) -> ModuleDisplay<'a> {
        ModuleDisplay { module }
    }
}

impl fmt::Display for ModuleDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_module(self.module, f, 0)
    }
}

/// Writes `module` whose first line is already indented by `indent` spaces.
fn write_module(module: &dyn Module, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
    let children = module.children();
    let extra = module.extra_repr();
    if children.is_empty() {
        return write!(f, "{}({extra})", module.name());
    }
    writeln!(f, "{}(", module.name())?;
    let inner = " ".repeat(indent + 2);
    if !extra.is_empty() {
        writeln!(f, "{inner}{extra}")?;
    }
    for (name, child) in children {
        write!(f, "{inner}({name}): ")?;
        write_module(child, f, indent + 2)?;
        writeln!(f)?;
    }
    write!(f, "{})", " ".repeat(indent))
}

/// `dropjit::nn::Dropout` -> `Dropout`, `a::Wrapper<b::C>` -> `Wrapper`.
fn short_type_name(full: &str) -> &str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// Python's float repr (for modules' `extra_repr`): `0.1`, `1.0`, `1e-05` (exponent form below 1e-4).
pub(crate) fn python_float(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-4 {
        let s = format!("{x:e}");
        let (mantissa, exponent) = s.split_once('e').expect("an exponent form");
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(digits) => ('-', digits),
            None => ('+', exponent),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    } else if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{python_float, short_type_name};

    #[test]
    fn floats_print_as_python_does() {
        assert_eq!(python_float(1e-5), "1e-05");
        assert_eq!(python_float(1e-3), "0.001");
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(2.5e-7), "2.5e-07");
    }

    #[test]
    fn short_names_drop_paths_and_generics() {
        assert_eq!(short_type_name("dropjit::nn::Linear"), "Linear");
        assert_eq!(short_type_name("a::Wrapper<b::C>"), "Wrapper");
        assert_eq!(short_type_name("SimpleNet"), "SimpleNet");
    }
}
