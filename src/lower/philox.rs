//! The Philox emitter's interface: U(j) of a whole mask group under RNG contract v1.
//!
//! TEMPORARY (issue 3): this stand-in calls [`crate::rng::mask::group_uniforms`] through its
//! address instead of inlining Philox4x32-10; the real emitter replaces this file, keeping
//! [`emit_group_uniforms`]'s signature. Nothing else depends on its insides. (The callee's
//! address is embedded in the code, so CLIF dumps of train-mode graphs differ between
//! processes until then.)

use cranelift_codegen::ir::{AbiParam, InstBuilder, Signature, Value, types};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

use crate::rng::mask::{GROUP_SIZE, MaskSource, group_uniforms};

/// Emits code that stores U(j) of the 128 lanes of mask group `group` (i64) as 128 u32 at
/// address `out` (pointer-sized int), under RNG contract v1 (`rng::mask`).
pub fn emit_group_uniforms(
    b: &mut FunctionBuilder,
    seed: Value,   /*i64*/
    stream: Value, /*i32*/
    step: Value,   /*i32*/
    group: Value,  /*i64*/
    out: Value,    /*ptr*/
) {
    let mut sig = Signature::new(CallConv::SystemV);
    let params = [types::I64, types::I32, types::I32, types::I64, types::I64];
    sig.params.extend(params.map(AbiParam::new));
    let sig = b.import_signature(sig);
    let callee = b.ins().iconst(
        types::I64,
        dropjit_group_uniforms as *const () as usize as i64,
    );
    b.ins()
        .call_indirect(sig, callee, &[seed, stream, step, group, out]);
}

/// `group_uniforms` for generated code: writes the group's 128 uniforms to `out`.
extern "C" fn dropjit_group_uniforms(
    seed: u64,
    stream: u32,
    step: u32,
    group: u64,
    out: &mut [u32; GROUP_SIZE],
) {
    *out = group_uniforms(MaskSource { seed, stream, step }, group);
}
