//! The Cranelift JIT: the host check, the `JITModule` that owns a compiled graph's machine code
//! (one function per phase, [`crate::plan::Phase`]), the symbols generated code imports, and
//! the one entry ABI.
//!
//! The compiler's `unsafe` is here: turning the finished code's address into a function
//! pointer of the entry ABI, calling it, handing the blocked GEMM raw matrices and the
//! keep-bit generator its buffer, and freeing the code when the compiled graph is dropped.
//! (The rest of the crate's `unsafe` is allocation, `alloc.rs`, and the SIMD kernels of
//! `rng/planes/x86.rs`.)
//!
//! The entry ABI, fixed for every phase of every compiled graph:
//! ```text
//! extern "C" fn(table: *const *mut u8, seed: u64, step: u32, error: *mut i64,
//!               begin: usize, end: usize) -> i32
//! ```
//! `table` holds one buffer address per slot of the buffer plan; `[begin, end)` are the work
//! units of the phase to compute. The function returns 0, or a nonzero code naming the node
//! that failed after writing two details (index, value) to `error`.

use std::fmt::Write;
use std::sync::Mutex;

use cranelift_codegen::ir::{
    AbiParam, ExtFuncData, ExternalName, FuncRef, Function, Signature, UserExternalName,
    UserFuncName, types,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, print_errors, verify_function};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

use crate::error::{Error, Result};
use crate::gemm;
use crate::graph::NodeId;
use crate::isa::Isa;
use crate::math;
use crate::rng::MaskSource;
use crate::rng::planes::{KeepWords, RUN_GROUPS, Run};
use crate::window;

/// The entry ABI of every phase (see the module docs).
type EntryFn = unsafe extern "C" fn(*const *mut u8, u64, u32, *mut i64, usize, usize) -> i32;

/// What the generated code reports back: 0 for success, else a node's error code with its two
/// details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    /// 0, or the failing node's code.
    pub code: i32,
    /// The details the failing node wrote (for `cross_entropy`: batch index, target).
    pub details: [i64; 2],
}

/// A Rust function generated code calls: the element-wise functions both engines share
/// ([`crate::math`]), the GEMM and the keep-bit generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Import {
    /// [`crate::math::log_f32`].
    Log,
    /// The blocked GEMM ([`gemm::sgemm`]: `C = A · B`, strided).
    Sgemm,
    /// Starting a run of the keep-bit generator ([`crate::rng::planes::Run`]).
    RunStart,
    /// One step of a run.
    RunStep,
    /// Finishing a run: its keep bits.
    RunFinish,
    /// A convolution's columns of an image ([`crate::window::columns::dropjit_im2col`]).
    Im2col,
    /// Their adjoint ([`crate::window::columns::dropjit_col2im`]).
    Col2im,
    /// Max pooling of planes ([`crate::window::pool::dropjit_max_pool`]).
    MaxPool,
    /// Its gradient ([`crate::window::pool::dropjit_max_pool_grad`]).
    MaxPoolGrad,
    /// A convolution's bias and fused ReLU
    /// ([`crate::window::columns::dropjit_conv_epilogue`]).
    ConvEpilogue,
    /// A block of a weight gradient zeroed or summed
    /// ([`crate::window::columns::dropjit_add_block`]).
    AddBlock,
}

impl Import {
    /// Every import, in the order the module declares them (new ones at the end, so the
    /// names of the others stay).
    const ALL: [Import; 11] = [
        Import::Log,
        Import::Sgemm,
        Import::RunStart,
        Import::RunStep,
        Import::RunFinish,
        Import::Im2col,
        Import::Col2im,
        Import::MaxPool,
        Import::MaxPoolGrad,
        Import::ConvEpilogue,
        Import::AddBlock,
    ];

    /// How many there are.
    pub(crate) const COUNT: usize = Import::ALL.len();

    /// The symbol it is declared and linked under.
    fn symbol(self) -> &'static str {
        match self {
            Import::Log => "dropjit_log_f32",
            Import::Sgemm => "dropjit_sgemm",
            Import::RunStart => "dropjit_run_start",
            Import::RunStep => "dropjit_run_step",
            Import::RunFinish => "dropjit_run_finish",
            Import::Im2col => "dropjit_im2col",
            Import::Col2im => "dropjit_col2im",
            Import::MaxPool => "dropjit_max_pool",
            Import::MaxPoolGrad => "dropjit_max_pool_grad",
            Import::ConvEpilogue => "dropjit_conv_epilogue",
            Import::AddBlock => "dropjit_add_block",
        }
    }

    /// The function's address.
    fn address(self) -> *const u8 {
        match self {
            Import::Log => math::log_f32 as *const u8,
            Import::Sgemm => dropjit_sgemm as *const u8,
            Import::RunStart => dropjit_run_start as *const u8,
            Import::RunStep => dropjit_run_step as *const u8,
            Import::RunFinish => dropjit_run_finish as *const u8,
            Import::Im2col => window::columns::dropjit_im2col as *const u8,
            Import::Col2im => window::columns::dropjit_col2im as *const u8,
            Import::MaxPool => window::pool::dropjit_max_pool as *const u8,
            Import::MaxPoolGrad => window::pool::dropjit_max_pool_grad as *const u8,
            Import::ConvEpilogue => window::columns::dropjit_conv_epilogue as *const u8,
            Import::AddBlock => window::columns::dropjit_add_block as *const u8,
        }
    }

    /// Its parameter and result types; `ptr` is the pointer type.
    fn types(self, ptr: types::Type) -> (Vec<types::Type>, Vec<types::Type>) {
        match self {
            Import::Log => (vec![types::F32], vec![types::F32]),
            // m, k, n, then (pointer, row stride, column stride) for A, B and C.
            Import::Sgemm => (vec![ptr; 13], Vec::new()),
            // The run, then the kernel, seed, stream, step, q, first group and count as
            // 64-bit words.
            Import::RunStart => {
                let mut params = vec![ptr];
                params.extend([types::I64; 7]);
                (params, Vec::new())
            }
            Import::RunStep => (vec![ptr], Vec::new()),
            // The run and where its keep bits go.
            Import::RunFinish => (vec![ptr; 2], Vec::new()),
            // The geometry, the image, its columns, the first and past-the-last channel.
            Import::Im2col => (vec![ptr; 5], Vec::new()),
            // The geometry, the columns, the image.
            Import::Col2im => (vec![ptr; 3], Vec::new()),
            // The geometry, the input, the output, the first and past-the-last plane, a
            // channel dropout's keep bytes (or null) and scale.
            Import::MaxPool => {
                let mut params = vec![ptr; 6];
                params.push(types::F32);
                (params, Vec::new())
            }
            // The geometry, the gradient, the input, the output, the planes, the ReLU
            // gradient's other operand and output (or nulls).
            Import::MaxPoolGrad => (vec![ptr; 8], Vec::new()),
            // The values, the bias (or null), the ReLU's output (or null), rows, positions.
            Import::ConvEpilogue => (vec![ptr; 5], Vec::new()),
            // The gradient, the product (or null), rows, row stride, first and past-the-last
            // column.
            Import::AddBlock => (vec![ptr; 6], Vec::new()),
        }
    }
}

/// The imports as the module declared them: what a function being built needs to call one
/// (it declares in itself only the ones it calls, so its text shows just those).
#[derive(Clone, Debug)]
pub(crate) struct Imports {
    /// By [`Import`], in [`Import::ALL`] order.
    declared: Vec<(FuncId, Signature)>,
}

impl Imports {
    /// Declares every import in `module`, in [`Import::ALL`] order.
    fn declare(module: &mut JITModule) -> Imports {
        let ptr = module.target_config().pointer_type();
        let declared = (Import::ALL.iter())
            .map(|&import| {
                let (params, returns) = import.types(ptr);
                let mut signature = module.make_signature();
                signature
                    .params
                    .extend(params.into_iter().map(AbiParam::new));
                signature
                    .returns
                    .extend(returns.into_iter().map(AbiParam::new));
                let id = (module.declare_function(import.symbol(), Linkage::Import, &signature))
                    .expect("invariant: each import is declared once");
                (id, signature)
            })
            .collect();
        Imports { declared }
    }

    /// The declaration of `import` for `func`, which has not declared it yet: its reference.
    pub(crate) fn declare_in(&self, import: Import, func: &mut Function) -> FuncRef {
        let (id, signature) = &self.declared[import as usize];
        let signature = func.import_signature(signature.clone());
        let name = func.declare_imported_user_function(UserExternalName {
            namespace: 0,
            index: id.as_u32(),
        });
        // The JIT links imports by absolute address (not colocated).
        func.import_function(ExtFuncData {
            name: ExternalName::user(name),
            signature,
            colocated: false,
            patchable: false,
        })
    }
}

/// A module being filled with one graph's functions, one per phase.
pub(crate) struct Codegen {
    module: JITModule,
    verify: bool,
    /// The imports, declared once, with the first phase.
    imports: Option<Imports>,
    /// The phases' functions, declared up front (so their names do not depend on the
    /// imports), in phase order.
    functions: Vec<FuncId>,
    /// How many of them have been defined.
    defined: usize,
    /// Their Cranelift IR, each headed by its comment line.
    clif: String,
}

/// Machine code of one compiled graph and its entry points, one per phase.
pub(crate) struct Jit {
    /// Owns the code memory. Never used after finalization except to free it on drop; the
    /// `Mutex` only makes the owner `Sync` (a `JITModule` is `Send` but not `Sync`).
    module: Mutex<Option<JITModule>>,
    entries: Vec<EntryFn>,
    /// Error code `i + 1` of the generated code names `error_nodes[i]`.
    error_nodes: Vec<NodeId>,
    /// The Cranelift IR of the functions, before Cranelift's own optimizations.
    clif: String,
}

/// The entry ABI's signature (see the module docs).
fn entry_signature(module: &JITModule) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    sig.params.extend([
        AbiParam::new(ptr),
        AbiParam::new(types::I64),
        AbiParam::new(types::I32),
        AbiParam::new(ptr),
        AbiParam::new(ptr),
        AbiParam::new(ptr),
    ]);
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

/// The ISA of this host, or why the JIT cannot target it. dropjit's code generation assumes
/// x86-64 with SSE4.1.
fn host_isa() -> Result<OwnedTargetIsa> {
    let unsupported = |reason: String| Error::UnsupportedHost { reason };
    if !cfg!(target_arch = "x86_64") {
        return Err(unsupported(format!(
            "the JIT targets x86-64, but this host is {}",
            std::env::consts::ARCH
        )));
    }
    if !has_sse41() {
        return Err(unsupported(
            "the JIT needs SSE4.1, which this CPU lacks".into(),
        ));
    }
    let isa = cranelift_native::builder().map_err(|msg| unsupported(msg.to_string()))?;
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, name: &str, value: &str| {
        flags
            .set(name, value)
            .expect("invariant: Cranelift knows this flag and value");
    };
    set(&mut flags, "opt_level", "speed");
    // The JIT links imported symbols by absolute address.
    set(&mut flags, "use_colocated_libcalls", "false");
    set(&mut flags, "is_pic", "false");
    // We run the verifier ourselves, so its errors come with the function's text.
    set(&mut flags, "enable_verifier", "false");
    isa.finish(settings::Flags::new(flags))
        .map_err(|e| unsupported(e.to_string()))
}

#[cfg(target_arch = "x86_64")]
fn has_sse41() -> bool {
    std::is_x86_feature_detected!("sse4.1")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_sse41() -> bool {
    false
}

impl Codegen {
    /// A fresh module for this host, for `phases` functions of the entry ABI;
    /// [`Error::UnsupportedHost`] if the JIT cannot target it.
    pub(crate) fn new(verify: bool, phases: usize) -> Result<Codegen> {
        let mut builder = JITBuilder::with_isa(host_isa()?, default_libcall_names());
        builder.symbols(Import::ALL.map(|i| (i.symbol(), i.address())));
        let mut module = JITModule::new(builder);
        let entry = entry_signature(&module);
        let functions = (0..phases)
            .map(|i| {
                let name = format!("phase{i}");
                (module.declare_function(&name, Linkage::Local, &entry))
                    .expect("invariant: each phase is declared once")
            })
            .collect();
        Ok(Codegen {
            module,
            verify,
            imports: None,
            functions,
            defined: 0,
            clif: String::new(),
        })
    }

    /// A context for the next phase's function: named, its signature the entry ABI. The first
    /// one declares the imports (a graph without phases declares none).
    pub(crate) fn entry_context(&mut self) -> Context {
        let id =
            *(self.functions.get(self.defined)).expect("invariant: a context per declared phase");
        if self.imports.is_none() {
            self.imports = Some(Imports::declare(&mut self.module));
        }
        let mut ctx = self.module.make_context();
        ctx.func.signature = entry_signature(&self.module);
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        ctx
    }

    /// The target's frontend configuration (pointer type), for `FunctionBuilder::finalize`.
    pub(crate) fn target_config(&self) -> cranelift_codegen::isa::TargetFrontendConfig {
        self.module.target_config()
    }

    /// The imports, for the functions being built (after the first [`Codegen::entry_context`]).
    pub(crate) fn imports(&self) -> &Imports {
        (self.imports.as_ref()).expect("invariant: the first phase's context declares the imports")
    }

    /// Verifies (if asked) and compiles the function in `ctx`, the latest from
    /// [`Codegen::entry_context`], keeping its text under the comment line `header`. A
    /// verifier error is a lowering bug and panics with the function's text.
    pub(crate) fn define(&mut self, mut ctx: Context, header: &str) {
        writeln!(self.clif, "{header}\n{}", ctx.func.display())
            .expect("invariant: writing to a String succeeds");
        if self.verify
            && let Err(errors) = verify_function(&ctx.func, self.module.isa())
        {
            panic!(
                "invariant: lowering emits valid CLIF\n{}",
                print_errors::pretty_verifier_error(&ctx.func, None, errors)
            );
        }
        let id = self.functions[self.defined];
        if let Err(e) = self.module.define_function(id, &mut ctx) {
            panic!("invariant: Cranelift compiles the lowered function: {e:?}");
        }
        self.defined += 1;
    }

    /// Links the defined functions into executable code; `error_nodes` are the nodes their
    /// error codes name (code `i + 1` names the `i`-th).
    pub(crate) fn finish(mut self, error_nodes: Vec<NodeId>) -> Jit {
        assert_eq!(
            self.defined,
            self.functions.len(),
            "invariant: every declared phase is defined"
        );
        self.module
            .finalize_definitions()
            .expect("invariant: linking the imports of a finished module succeeds");
        let entries = (self.functions.iter())
            .map(|&id| {
                let code = self.module.get_finalized_function(id);
                // SAFETY: `code` is a finalized function declared with `entry_signature`,
                // which is the entry ABI `EntryFn` in the host's default (System V) calling
                // convention. The memory it points into is owned by `self.module`, which
                // `Jit` keeps until it drops, and `entries` never leave `Jit`.
                unsafe { std::mem::transmute::<*const u8, EntryFn>(code) }
            })
            .collect();
        Jit {
            module: Mutex::new(Some(self.module)),
            entries,
            error_nodes,
            clif: self.clif,
        }
    }
}

impl Jit {
    /// Runs units `[begin, end)` of phase `phase` over the buffers in `table` (addresses).
    ///
    /// The caller (`CompiledGraph::run`) guarantees what the generated code relies on: every
    /// slot points to a live buffer at least as large as the plan says, buffers the code writes
    /// (arena, outputs, inputs that `run_mut` lets in-place dropouts overwrite) are exclusively
    /// borrowed and disjoint from the others (arena ranges are shared only by buffers the plan
    /// never has live at once), nothing else touches them during the run, the phases before
    /// `phase` have run to completion, and `end` is at most the phase's unit count. Calls of
    /// one phase on disjoint unit ranges may run at once: a phase's units write disjoint
    /// elements and read only what earlier phases wrote.
    pub(crate) fn call(
        &self,
        phase: usize,
        table: &[usize],
        seed: u64,
        step: u32,
        (begin, end): (usize, usize),
    ) -> Status {
        let mut details = [0i64; 2];
        let table = table.as_ptr().cast::<*mut u8>();
        // SAFETY: see the contract above, checked by `CompiledGraph::run`: the generated code
        // reads and writes only within the table's buffers (loop bounds come from the same
        // static shapes as the buffer sizes, unit ranges are clamped to them, class targets
        // are range-checked before use), and `details` has the two slots the ABI writes.
        let entry = self.entries[phase];
        let code = unsafe { entry(table, seed, step, details.as_mut_ptr(), begin, end) };
        Status { code, details }
    }

    /// How many phase functions it has.
    pub(crate) fn phases(&self) -> usize {
        self.entries.len()
    }

    /// The node whose failure error code `index + 1` reports.
    pub(crate) fn error_node(&self, index: usize) -> NodeId {
        self.error_nodes[index]
    }

    /// The Cranelift IR of its functions, one per phase, each headed by a comment line.
    pub(crate) fn clif(&self) -> &str {
        &self.clif
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        let module = self
            .module
            .get_mut()
            .map(Option::take)
            .unwrap_or_else(|poisoned| poisoned.into_inner().take());
        if let Some(module) = module {
            // SAFETY: `entries` are the only pointers into this module's code and are dropped
            // with `self`; no call can be running, since calls borrow `self`.
            unsafe { module.free_memory() };
        }
    }
}

/// `C = A · B` for strided `f32` matrices (`A: m × k`, `B: k × n`) computed with `isa` (an
/// [`Isa`] discriminant) by [`gemm::sgemm`]; imported by generated code for `matmul` and
/// `linear`.
///
/// # Safety
/// The generated code passes pointers to buffers that hold every element the dimensions and
/// strides address, a `c` that overlaps neither operand, and an `isa` this host runs (the
/// compiler checked).
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn dropjit_sgemm(
    isa: u64,
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    let isa = Isa::from_index(isa).expect("invariant: generated code passes an Isa");
    // SAFETY: the caller's contract above is sgemm's.
    unsafe { gemm::sgemm(isa, (m, k, n), (a, rsa, csa), (b, rsb, csb), (c, rsc, csc)) }
}

/// Starts a run of the keep-bit generator in the buffer `run` ([`Run::new`]): groups
/// `first .. first + count` of one dropout's mask (seed, stream, step, threshold `q`), decided
/// with `isa` (an [`Isa`] discriminant). Imported by the generated code's drawing loops.
///
/// # Safety
/// `run` points to a [`Run`] (a stack buffer of the generated code, aligned for it and zeroed
/// before first use: every bit pattern is a valid `Run`) no one else uses, `isa` names an
/// instruction set this host runs (the compiler checked), `count` is at most a run and the groups are
/// below 2^59.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn dropjit_run_start(
    run: *mut Run,
    isa: u64,
    seed: u64,
    stream: u64,
    step: u64,
    q: u64,
    first: u64,
    count: u64,
) {
    let isa = Isa::from_index(isa).expect("invariant: generated code passes an Isa");
    let source = MaskSource {
        seed,
        stream: stream as u32,
        step: step as u32,
    };
    // SAFETY: the caller's contract above.
    unsafe { &mut *run }.start(isa, source, q, first, count as usize);
}

/// One step of the run in `run` ([`Run::step`]).
///
/// # Safety
/// `run` points to a run [`dropjit_run_start`] started, used by no one else.
unsafe extern "C" fn dropjit_run_step(run: *mut Run) {
    // SAFETY: the caller's contract above.
    unsafe { &mut *run }.step();
}

/// Finishes the run in `run` and writes its keep bits to `out` ([`Run::finish`]).
///
/// # Safety
/// `run` points to a run [`dropjit_run_start`] started, used by no one else, and `out` to
/// [`crate::rng::planes::RUN_GROUPS`] writable groups of four words.
unsafe extern "C" fn dropjit_run_finish(run: *mut Run, out: *mut KeepWords) {
    // SAFETY: the caller's contract above.
    let out = unsafe { std::slice::from_raw_parts_mut(out, RUN_GROUPS) };
    // SAFETY: the caller's contract above.
    unsafe { &mut *run }.finish(out);
}

#[cfg(test)]
mod tests {
    use super::Import;

    #[test]
    fn imports_are_listed_in_declaration_order() {
        // `Imports` finds a declaration at the import's discriminant.
        for (i, import) in Import::ALL.iter().enumerate() {
            assert_eq!(*import as usize, i, "{import:?}");
        }
    }
}
