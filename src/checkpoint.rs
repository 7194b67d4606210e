//! Checkpoints as safetensors files (Hugging Face's format, written and read by its
//! reference crate): parameters and optimizer state as tensors under their store names
//! (`fc1.weight`, `fc1.weight.momentum_buffer`), and in `__metadata__` the optimizer's
//! configuration and step count and the generator's seed, step and host stream count, so a
//! resumed run continues bit-identically (masks and host-side draws such as shuffles).
//!
//! ```text
//! __metadata__: format = dropjit.checkpoint.v1, optimizer = SGD(lr=0.1, ...),
//!               optimizer.steps = 3, generator.seed = 7, generator.step = 3,
//!               generator.host_streams = 2
//! tensors:      F32 (f32), I32 (i32), BOOL (bool), little-endian, row-major
//! ```
//!
//! The optimizer's configuration is recorded for people and tools, not checked on load: a
//! resumed run may change the learning rate.
//!
//! Saving is atomic ([`crate::fs_atomic`]): a save that fails (a full disk) leaves the
//! checkpoint it would have replaced as it was, never a truncated file.
//!
//! Loading checks everything before changing anything: the file has to hold exactly the
//! entries asked for, each of the type the store holds ([`Error::CheckpointMismatch`] names
//! the first that does not fit).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};

use crate::error::{Error, Result};
use crate::fs_atomic;
use crate::graph::{DType, Shape, TensorType};
use crate::optim::{Optimizer, state_name};
use crate::rng::Generator;
use crate::runtime::ParameterStore;
use crate::tensor::{Tensor, TensorData};

/// The `format` metadata value of files this version writes and reads.
pub const FORMAT: &str = "dropjit.checkpoint.v1";

/// The store entries a checkpoint of `parameters` trained by `optimizer` holds: every
/// parameter, then every state entry of the optimizer's parameters, in that order.
pub fn entries(parameters: &[String], optimizer: &dyn Optimizer) -> Vec<String> {
    let state = (optimizer.parameters().iter())
        .flat_map(|p| (optimizer.state_names().into_iter()).map(move |s| state_name(p, s)));
    parameters.iter().cloned().chain(state).collect()
}

/// Writes `entries` of `store` (a missing optimizer state entry is written as zeros of its
/// parameter's type, the state before the first step), the optimizer's configuration and
/// step count, and `generator`'s seed and step to `path`.
pub fn save(
    path: &Path,
    store: &ParameterStore,
    entries: &[String],
    optimizer: &dyn Optimizer,
    generator: &Generator,
) -> Result<()> {
    let mut tensors = Vec::new();
    for name in entries {
        let tensor = match store.get(name) {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(Tensor::zeros(&state_type(store, optimizer, name)?)?),
        };
        tensors.push((name.clone(), Entry(tensor)));
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("optimizer".to_string(), optimizer.describe()),
        ("optimizer.steps".to_string(), optimizer.steps().to_string()),
        ("generator.seed".to_string(), generator.seed().to_string()),
        ("generator.step".to_string(), generator.step().to_string()),
        (
            "generator.host_streams".to_string(),
            generator.host_streams().to_string(),
        ),
    ]);
    let bytes = safetensors::tensor::serialize(tensors, Some(metadata))
        .map_err(|e| format_error(path, e.to_string()))?;
    // Atomic: a failed save (a full disk) leaves the checkpoint it would replace intact.
    fs_atomic::write(path, &bytes)
}

/// Reads `path` into `store` (exactly `entries`, each of the type `store` holds or, for
/// optimizer state not created yet, its parameter's), sets the optimizer's step count and
/// returns the generator to continue with. Nothing changes on an error.
pub fn load(
    path: &Path,
    store: &mut ParameterStore,
    entries: &[String],
    optimizer: &mut dyn Optimizer,
) -> Result<Generator> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_bytes(path, &bytes, store, entries, optimizer)
}

/// [`load`] from `bytes`, the contents of the checkpoint file `path` (which errors name).
pub fn load_bytes(
    path: &Path,
    bytes: &[u8],
    store: &mut ParameterStore,
    entries: &[String],
    optimizer: &mut dyn Optimizer,
) -> Result<Generator> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| format_error(path, e.to_string()))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| format_error(path, e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let number = |key: &str| -> Result<u64> {
        let value = metadata
            .get(key)
            .ok_or_else(|| format_error(path, format!("__metadata__ has no {key}")))?;
        value.parse().map_err(|_| {
            format_error(
                path,
                format!("__metadata__ {key} = {value:?} is not a count"),
            )
        })
    };
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(format_error(
            path,
            format!("__metadata__ format is not {FORMAT}"),
        ));
    }
    let steps = number("optimizer.steps")?;
    let seed = number("generator.seed")?;
    let step = number("generator.step")?;
    let host_streams = number("generator.host_streams")?;
    let step = u32::try_from(step)
        .map_err(|_| format_error(path, format!("generator.step {step} is past 2^32 - 1")))?;

    let mut loaded = Vec::new();
    for name in entries {
        let expected = match store.get(name) {
            Some(t) => t.ty(),
            None => state_type(store, optimizer, name)?,
        };
        let tensor = match file.tensor(name) {
            Ok(view) => to_tensor(path, name, view.dtype(), view.shape(), view.data())?,
            Err(_) => return Err(mismatch(path, name, expected.to_string(), "nothing")),
        };
        if tensor.ty() != expected {
            return Err(mismatch(
                path,
                name,
                expected.to_string(),
                &tensor.ty().to_string(),
            ));
        }
        loaded.push((name.clone(), tensor));
    }
    let mut names = file.names();
    names.sort_unstable();
    if let Some(extra) = names.into_iter().find(|n| !entries.iter().any(|e| e == n)) {
        let view = file
            .tensor(extra)
            .map_err(|e| format_error(path, e.to_string()))?;
        let got = to_tensor(path, extra, view.dtype(), view.shape(), view.data())?.ty();
        return Err(mismatch(path, extra, "nothing".into(), &got.to_string()));
    }
    for (name, tensor) in loaded {
        store.insert(name, tensor);
    }
    optimizer.set_steps(steps);
    Ok(Generator::new(seed)
        .with_step(step)
        .with_host_streams(host_streams))
}

/// The type of optimizer state entry `name`: its parameter's.
fn state_type(store: &ParameterStore, optimizer: &dyn Optimizer, name: &str) -> Result<TensorType> {
    let param = (optimizer.parameters().iter())
        .find(|p| (optimizer.state_names().iter()).any(|s| state_name(p, s) == name));
    match param.and_then(|p| store.get(p)) {
        Some(t) => Ok(t.ty()),
        None => Err(Error::MissingValue {
            what: "parameter",
            name: name.to_string(),
        }),
    }
}

fn to_tensor(
    path: &Path,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    data: &[u8],
) -> Result<Tensor> {
    let shape = Shape::new(shape.to_vec());
    let data = if dtype == Dtype::F32 {
        TensorData::F32(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    } else if dtype == Dtype::I32 {
        TensorData::I32(
            data.chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    } else if dtype == Dtype::BOOL {
        TensorData::Bool(data.iter().map(|&b| b != 0).collect())
    } else {
        return Err(mismatch(
            path,
            name,
            "f32, i32 or bool".into(),
            &format!("{dtype}"),
        ));
    };
    Tensor::new(shape, data)
}

fn mismatch(path: &Path, name: &str, expected: String, got: &str) -> Error {
    Error::CheckpointMismatch {
        path: path.to_path_buf(),
        name: name.to_string(),
        expected,
        got: got.to_string(),
    }
}

fn format_error(path: &Path, message: String) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    }
}

/// A tensor as safetensors writes it.
struct Entry<'a>(Cow<'a, Tensor>);

impl View for Entry<'_> {
    fn dtype(&self) -> Dtype {
        match self.0.dtype() {
            DType::F32 => Dtype::F32,
            DType::I32 => Dtype::I32,
            DType::Bool => Dtype::BOOL,
        }
    }

    fn shape(&self) -> &[usize] {
        self.0.shape().dims()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_le_bytes())
    }

    fn data_len(&self) -> usize {
        self.0.numel() * self.0.dtype().size()
    }
}
