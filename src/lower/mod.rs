//! Lowering to Cranelift IR (placeholder for this branch: the full module is written elsewhere).

pub mod philox;
