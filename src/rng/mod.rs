//! Randomness: Philox4x32-10, the dropout mask contract, and the caller-owned [`Generator`].
//!
//! Every random bit dropjit produces is a pure function of (seed, stream, step, position):
//! the same seed gives the same masks and tensors whatever the thread count, vector width or
//! chunking. Streams below 2^31 belong to dropout nodes; streams from 2^31 up serve host-side
//! randomness (filling inputs, parameters and test tensors).

pub mod generator;
pub mod host;
pub mod mask;
pub mod philox;
pub mod planes;

pub use generator::Generator;
pub use host::PhiloxStream;
pub use mask::{CONTRACT_VERSION, MaskSource, keep_mask, keep_threshold};
pub use philox::philox4x32_10;
