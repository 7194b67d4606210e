//! The memory plan as a value to read: [`Program::memory`] lists every buffer of the
//! address table, where it lives and which values it holds, with the arena's size with and
//! without reuse. Its `Display` is `#` comment lines, so it can follow a textual dump of the
//! graph (`dump --stage optimized`).

use std::fmt;

use super::Program;
use super::memory::{Contents, Home};

/// Where a planned buffer lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BufferHome {
    /// The caller's input of this name (overwritten if an in-place dropout takes it).
    Input(String),
    /// The parameter store's value of this name.
    Parameter(String),
    /// The data of the constant node of this name.
    Constant(String),
    /// The run's output of this name: written there directly, no arena space, no copy.
    Output(String),
    /// The per-run arena, from this byte offset.
    Arena {
        /// Bytes from the arena's start (a multiple of 16).
        offset: usize,
    },
}

/// One buffer of the plan: one slot of the address table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferSummary {
    /// Where it lives.
    pub home: BufferHome,
    /// Its size in bytes.
    pub bytes: usize,
    /// The nodes whose values it holds, in order: more than one when reshapes view it or
    /// in-place dropouts write over it. Empty for keep bytes.
    pub values: Vec<String>,
    /// For a dropout's keep-byte scratch: the dropout.
    pub keep_bytes_of: Option<String>,
    /// For a convolution's im2col scratch: the convolution.
    pub columns_of: Option<String>,
    /// For arena buffers: the first and last kernel (indices into the schedule) during which
    /// it is live.
    pub live: Option<(usize, usize)>,
}

/// The memory plan of a compiled graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemorySummary {
    /// The arena a run allocates, in bytes.
    pub arena_bytes: usize,
    /// The arena it would need if no two arena buffers shared bytes.
    pub unshared_bytes: usize,
    /// The number of arena buffers.
    pub arena_buffers: usize,
    /// Every buffer, in table order.
    pub buffers: Vec<BufferSummary>,
    /// The inputs a run writes over (so it needs [`crate::CompiledGraph::run_mut`]).
    pub written_inputs: Vec<String>,
}

impl MemorySummary {
    /// The buffer holding `node`'s value, if it is in memory.
    pub fn buffer_of(&self, node: &str) -> Option<&BufferSummary> {
        (self.buffers.iter()).find(|b| b.values.iter().any(|v| v == node))
    }
}

impl Program {
    /// Its memory plan: buffers, arena size, reuse (`dump --stage optimized` prints it).
    pub fn memory(&self) -> MemorySummary {
        let name = |id| self.graph[id].name.clone();
        let buffers = (self.memory.slots.iter())
            .map(|slot| {
                let owner = name(slot.owner());
                let home = match &slot.home {
                    Home::Input => BufferHome::Input(owner),
                    Home::Parameter => BufferHome::Parameter(owner),
                    Home::Constant => BufferHome::Constant(owner),
                    Home::Output(k) => BufferHome::Output(self.graph.outputs()[*k].name.clone()),
                    Home::Arena { offset } => BufferHome::Arena { offset: *offset },
                };
                let (values, keep_bytes_of, columns_of) = match &slot.contents {
                    Contents::Values(ids) => (ids.iter().map(|&id| name(id)).collect(), None, None),
                    Contents::KeepBytes(id) => (Vec::new(), Some(name(*id)), None),
                    Contents::Columns(id) => (Vec::new(), None, Some(name(*id))),
                };
                BufferSummary {
                    home,
                    bytes: slot.bytes,
                    values,
                    keep_bytes_of,
                    columns_of,
                    live: slot.live,
                }
            })
            .collect();
        MemorySummary {
            arena_bytes: self.memory.arena_bytes(),
            unshared_bytes: self.memory.unshared_bytes(),
            arena_buffers: self.memory.arena_slots().count(),
            buffers,
            written_inputs: (self.memory.written_inputs.iter())
                .map(|w| name(w.input))
                .collect(),
        }
    }
}

impl fmt::Display for MemorySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.arena_buffers == 1 { "" } else { "s" };
        writeln!(
            f,
            "# memory: {} arena bytes ({} without reuse) in {} arena buffer{plural}",
            self.arena_bytes, self.unshared_bytes, self.arena_buffers
        )?;
        for (i, buffer) in self.buffers.iter().enumerate() {
            write!(f, "# buffer {i}: {} bytes, ", buffer.bytes)?;
            match &buffer.home {
                BufferHome::Input(name) if self.written_inputs.contains(name) => {
                    write!(f, "input {name} (overwritten)")?
                }
                BufferHome::Input(name) => write!(f, "input {name}")?,
                BufferHome::Parameter(name) => write!(f, "parameter {name}")?,
                BufferHome::Constant(name) => write!(f, "constant {name}")?,
                BufferHome::Output(name) => write!(f, "output {name}")?,
                BufferHome::Arena { offset } => {
                    write!(f, "arena [{offset}, {})", offset + buffer.bytes)?;
                }
            }
            match buffer.live {
                Some((first, last)) if first == last => write!(f, ", kernel {first}")?,
                Some((first, last)) => write!(f, ", kernels {first}..={last}")?,
                None => {}
            }
            match (&buffer.keep_bytes_of, &buffer.columns_of) {
                (Some(dropout), _) => writeln!(f, ": keep bytes of %{dropout}")?,
                (None, Some(conv)) => writeln!(f, ": im2col columns of %{conv}")?,
                (None, None) => {
                    let values: Vec<String> =
                        buffer.values.iter().map(|v| format!("%{v}")).collect();
                    writeln!(f, ": {}", values.join(", "))?;
                }
            }
        }
        Ok(())
    }
}
