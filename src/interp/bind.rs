//! Checking the caller's values against the graph's inputs and parameters before a run.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::graph::signature::Bound;

use super::value::Value;

/// Every binding names an input or parameter, and every input and parameter has a value of
/// its declared type ([`Graph::check_bindings`]). Bindings are checked in name order, then the
/// graph's leaves in topological order; the first failure is returned.
pub(crate) fn check<T>(graph: &Graph, values: &BTreeMap<String, Value<T>>) -> Result<()> {
    for name in values.keys() {
        let id = graph.lookup(name)?;
        let op = &graph[id].op;
        if !op.is_bound() {
            return Err(Error::NotBindable {
                name: name.clone(),
                op: op.name(),
            });
        }
    }
    graph.check_bindings(|_, name| {
        values.get(name).map(|value| Bound {
            ty: value.ty(),
            // An Array's fields are public, so its length is the caller's to get right.
            len: value.len(),
        })
    })
}
