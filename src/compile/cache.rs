//! A compile cache: each distinct (graph, mode) compiles once, whoever asks for it.
//!
//! The key is the graph's canonical text, which holds every node's op, attributes and type, so
//! input shapes are part of it: the same model at another batch size is another entry. Eager
//! and traced module calls (and train/eval switching) stand on this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{CompiledGraph, Compiler};
use crate::error::Result;
use crate::graph::Graph;
use crate::graph::Mode;

/// Compiled graphs by (canonical graph text, mode), shared behind `Arc`s. `Send + Sync`.
#[derive(Debug, Default)]
pub struct CompileCache {
    compiler: Compiler,
    entries: Mutex<HashMap<(String, Mode), Arc<CompiledGraph>>>,
}

impl CompileCache {
    /// An empty cache compiling with `compiler`'s options (its mode is replaced per request).
    pub fn new(compiler: Compiler) -> CompileCache {
        CompileCache {
            compiler,
            entries: Mutex::default(),
        }
    }

    /// The compilation of `graph` for `mode`, compiled on first request.
    pub fn get(&self, graph: &Graph, mode: Mode) -> Result<Arc<CompiledGraph>> {
        let key = (graph.to_string(), mode);
        if let Some(hit) = self.lock().get(&key) {
            return Ok(Arc::clone(hit));
        }
        // Compile without holding the lock: another thread may compile the same key meanwhile,
        // and the first one stored wins; both results are equivalent.
        let compiled = Arc::new(self.compiler.mode(mode).compile(graph)?);
        Ok(Arc::clone(self.lock().entry(key).or_insert(compiled)))
    }

    /// The number of compiled graphs held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True if nothing has been compiled yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Mode), Arc<CompiledGraph>>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts).
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse;

    fn dropout_graph(batch: usize) -> Graph {
        let source = format!(
            "graph g {{\n  %x: f32[{batch}, 8] = input\n  %y = dropout %x {{p = 0.5}}\n  output y = %y\n}}"
        );
        parse(&source).expect("valid graph")
    }

    #[test]
    fn compiles_each_graph_mode_and_shape_once() {
        let cache = CompileCache::new(Compiler::new());
        let a = cache.get(&dropout_graph(4), Mode::Train).unwrap();
        let b = cache.get(&dropout_graph(4), Mode::Train).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 1);
        let eval = cache.get(&dropout_graph(4), Mode::Eval).unwrap();
        assert_eq!(eval.mode(), Mode::Eval);
        let other_batch = cache.get(&dropout_graph(5), Mode::Train).unwrap();
        assert!(!Arc::ptr_eq(&a, &other_batch));
        assert_eq!(cache.len(), 3);
    }
}
