//! PyTorch-style module display: `Dropout(p=0.5, inplace=false)` for a leaf, and a nested
//! listing for modules with children:
//!
//! ```text
//! SimpleNet(
//!   (fc1): Linear(in_features=784, out_features=256, bias=true)
//!   (dropout1): Dropout(p=0.5, inplace=false)
//! )
//! ```

use std::fmt;

use super::module::Module;

/// A module rendered PyTorch-style; see the module docs.
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
