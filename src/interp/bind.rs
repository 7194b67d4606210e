//! Checking the caller's values against the graph's inputs and parameters before a run.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::graph::{Graph, Leaf};

use super::value::Value;

/// Every binding names an input or parameter, and every input and parameter has a value of
/// its declared type. Bindings are checked in name order, then the graph's leaves in
/// topological order; the first failure is returned.
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
    for id in graph.topo_order() {
        let node = &graph[id];
        let Some(what) = node.op.leaf().filter(|l| l.is_bound()).map(Leaf::name) else {
            continue;
        };
        let Some(value) = values.get(&node.name) else {
            return Err(Error::MissingValue {
                what,
                name: node.name.clone(),
            });
        };
        check_length(value)?;
        if value.ty() != node.ty {
            return Err(Error::ValueType {
                what,
                name: node.name.clone(),
                expected: node.ty.to_string(),
                got: value.ty().to_string(),
            });
        }
    }
    Ok(())
}

/// An [`super::Array`]'s fields are public, so its length is the caller's to get right.
fn check_length<T>(value: &Value<T>) -> Result<()> {
    let got = match value {
        Value::Float(a) => a.data.len(),
        Value::Int(a) => a.data.len(),
        Value::Bool(a) => a.data.len(),
    };
    let shape = value.shape();
    if got != shape.numel() {
        return Err(Error::DataLength {
            expected: shape.numel(),
            shape: shape.clone(),
            got,
        });
    }
    Ok(())
}
