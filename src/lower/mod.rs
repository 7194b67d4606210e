//! Lowering: a planned program ([`crate::plan::Program`]) becomes Cranelift functions of the
//! entry ABI ([`crate::jit`]), one per [`crate::plan::Phase`] of its kernels in the schedule's
//! order, every op lowered (no interpreter fallback). A fused kernel of element-wise nodes is
//! one loop, vector or scalar as the plan decided ([`crate::plan::Form`]). Lowering reads the
//! plan and decides nothing the plan has decided.
//!
//! [`LowerCx`] is what every op's lowering works with: the `FunctionBuilder`, the map from
//! nodes to the table slots holding their buffers' addresses, the imported functions, the
//! phase's unit range `[begin, end)`, and the loop helpers every loop comes from:
//! - [`LowerCx::counted_loop`] emits `for i in 0..n` as a guarded do-while loop (body first,
//!   test at the bottom), because with the test at the top Cranelift hoisted almost nothing
//!   out of the body. Static counts get a static guard: a zero-trip loop emits nothing and a
//!   one-trip loop emits its body once. [`LowerCx::range_loop`] is the same over a run-time
//!   range, with a run-time guard.
//! - [`LowerCx::strided_loop`] walks a shape row-major and hands the body one element offset
//!   per operand, from per-dimension strides (0 broadcasts a dimension): broadcasting,
//!   transposes, reductions and dropout masks all use it. [`LowerCx::strided_range`] walks
//!   only the row-major positions `[start, stop)` of a shape, a unit range's part of it.
//!
//! The scalar arithmetic of every element-wise op lives in [`arith`], one definition each;
//! the op families' loops live in one file each (`elementwise` holds the fused loop).

mod arith;
mod bitplane;
mod conv;
mod dispatch;
mod dropout;
mod elementwise;
mod indexed;
mod layout;
mod linalg;
mod loops;
mod pool;
mod reduce;
mod simd;
mod softmax;
mod transcendental;
mod vector_arith;
mod window;

use cranelift_codegen::ir::{
    FuncRef, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value, types,
};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, Variable};

pub(crate) use dispatch::lower;

use crate::graph::{NodeId, Shape, TensorType};
use crate::isa::Isa;
use crate::jit::{Import, Imports};
use crate::plan::memory::BufferMap;

/// How `matmul` and `linear` compute their dot products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Gemm {
    /// [`crate::gemm`]: blocked and vectorised, each element one chain of fused multiply-adds
    /// (the same bits on every instruction set and thread count), so results differ from the
    /// interpreter's (no FMA) in the last bits.
    #[default]
    Blocked,
    /// Plain loops in the interpreter's order (from 0.0, k ascending, no FMA): bit-identical
    /// to the interpreter, and slow. For differential tests and reproducibility checks.
    Reference,
}

/// What lowering was asked to choose between: how products and dropout masks are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Choices {
    /// How `matmul` and `linear` compute their dot products.
    pub gemm: Gemm,
    /// The instruction set of the Rust helpers generated code calls (the keep-bit generator,
    /// the blocked GEMM); the host runs it.
    pub isa: Isa,
}

/// A node's buffer: its address (loaded from the table) and its type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buffer<'g> {
    pub addr: Value,
    pub ty: &'g TensorType,
}

impl Buffer<'_> {
    /// The buffer's shape.
    pub fn shape(&self) -> &Shape {
        &self.ty.shape
    }
}

/// The state of lowering one phase into one function.
pub(crate) struct LowerCx<'a> {
    /// The function being built.
    pub b: FunctionBuilder<'a>,
    /// The pointer type, also used for every index.
    pub ptr: Type,
    table: Value,
    seed: Value,
    step: Value,
    error: Value,
    begin: Value,
    end: Value,
    buffers: &'a BufferMap,
    /// The Rust functions generated code may call.
    imports: &'a Imports,
    /// The ones this function has declared so far, by [`Import`].
    imported: [Option<FuncRef>; Import::COUNT],
    /// How `matmul` and `linear` are computed.
    pub gemm: Gemm,
    /// The instruction set of the helpers it calls ([`bitplane`]'s generator, the GEMM).
    pub isa: Isa,
    /// The nodes that can fail at run time; error code `i + 1` is `error_nodes[i]`.
    error_nodes: Vec<NodeId>,
    /// Units per chunk of the phase (a chunk's unit range starts at a multiple of it).
    pub chunk_units: usize,
}

/// Flags of every access to a tensor buffer: in bounds and aligned by construction.
fn buffer_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl<'a> LowerCx<'a> {
    /// The context for one phase's function, built by `b`, with its entry block started:
    /// buffers in the table slots `buffers` says, imports declared, products and masks
    /// computed as `choices` says, and `error_nodes` the failing nodes of the phases before (their error
    /// codes stay).
    pub(crate) fn new(
        mut b: FunctionBuilder<'a>,
        target: TargetFrontendConfig,
        buffers: &'a BufferMap,
        imports: &'a Imports,
        choices: Choices,
        error_nodes: Vec<NodeId>,
    ) -> LowerCx<'a> {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        // The entry ABI's parameters, in order (see crate::jit).
        let [table, seed, step, error, begin, end] = b.block_params(entry)[..] else {
            panic!("invariant: the entry ABI has six parameters");
        };
        LowerCx {
            b,
            ptr: target.pointer_type(),
            table,
            seed,
            step,
            error,
            begin,
            end,
            buffers,
            imports,
            imported: [None; Import::COUNT],
            gemm: choices.gemm,
            isa: choices.isa,
            error_nodes,
            chunk_units: 1,
        }
    }

    /// Finalizes the function (every block must end in a return or branch); returns the
    /// failing nodes of this phase and the ones before.
    pub(crate) fn finish(self, target: TargetFrontendConfig) -> Vec<NodeId> {
        self.b.finalize(target);
        self.error_nodes
    }
}

impl LowerCx<'_> {
    /// Calls the imported function `import` on `args` (declaring it in this function on first
    /// use); returns its result, if it has one.
    pub(crate) fn call(&mut self, import: Import, args: &[Value]) -> Option<Value> {
        let declared = &mut self.imported[import as usize];
        let func = *declared.get_or_insert_with(|| self.imports.declare_in(import, self.b.func));
        let call = self.b.ins().call(func, args);
        self.b.inst_results(call).first().copied()
    }

    /// An index (pointer-sized) constant.
    pub fn index(&mut self, n: usize) -> Value {
        let n = i64::try_from(n).expect("invariant: sizes fit in i64");
        self.b.ins().iconst(self.ptr, n)
    }

    /// An `f32` constant.
    pub fn f32(&mut self, x: f32) -> Value {
        self.b.ins().f32const(x)
    }

    /// The address of `id`'s buffer, loaded from the table.
    pub(crate) fn node_addr(&mut self, id: NodeId) -> Value {
        let slot = self.buffers.slot(id);
        self.table_entry(slot)
    }

    /// The address of node `id`'s scratch buffer: a dropout's keep bytes, a convolution's
    /// im2col columns.
    pub(crate) fn scratch_addr(&mut self, id: NodeId) -> Value {
        let slot = self.buffers.scratch(id);
        self.table_entry(slot)
    }

    fn table_entry(&mut self, slot: usize) -> Value {
        let offset = i32::try_from(slot * 8).expect("invariant: the table is small");
        let flags = MemFlagsData::trusted().with_readonly();
        self.b.ins().load(self.ptr, flags, self.table, offset)
    }

    /// The generator's seed (i64) and the run's step (i32), entry parameters.
    pub fn seed_and_step(&self) -> (Value, Value) {
        (self.seed, self.step)
    }

    /// The phase's unit range `[begin, end)`, entry parameters (pointer-sized).
    pub fn unit_range(&self) -> (Value, Value) {
        (self.begin, self.end)
    }

    /// The index of the chunk this call runs (pointer-sized): chunks of one phase that run
    /// at once have different ones, below the phase's count of chunks, so each can own a
    /// block of a scratch buffer ([`crate::plan::Phase::chunks`] blocks).
    pub fn chunk_index(&mut self) -> Value {
        let units = self.index(self.chunk_units.max(1));
        self.b.ins().udiv(self.begin, units)
    }

    /// The positions `[begin * unit, min(end * unit, total))` covered by the unit range when
    /// each unit is `unit` consecutive positions out of `total`.
    pub fn unit_positions(&mut self, unit: usize, total: usize) -> (Value, Value) {
        let (begin, end) = self.unit_range();
        let start = self.b.ins().imul_imm_u(begin, unit as i64);
        let stop = self.b.ins().imul_imm_u(end, unit as i64);
        let total = self.index(total);
        (start, self.b.ins().umin(stop, total))
    }

    /// `base + index * size`.
    pub fn element_addr(&mut self, base: Value, index: Value, size: usize) -> Value {
        let scaled = self.b.ins().imul_imm_s(index, size as i64);
        self.b.ins().iadd(base, scaled)
    }

    /// Loads element `index` of type `ty` from `base`.
    pub fn load(&mut self, ty: Type, base: Value, index: Value) -> Value {
        let addr = self.element_addr(base, index, ty.bytes() as usize);
        self.b.ins().load(ty, buffer_flags(), addr, 0)
    }

    /// Stores `value` as element `index` of `base`.
    pub fn store(&mut self, value: Value, base: Value, index: Value) {
        let ty = self.b.func.dfg.value_type(value);
        let addr = self.element_addr(base, index, ty.bytes() as usize);
        self.b.ins().store(buffer_flags(), value, addr, 0);
    }

    /// A 16-byte aligned stack buffer of `bytes` bytes, and its address.
    pub fn stack_buffer(&mut self, bytes: u32) -> Value {
        let data = StackSlotData::new(StackSlotKind::ExplicitSlot, bytes, 4);
        let slot = self.b.create_sized_stack_slot(data);
        self.b.ins().stack_addr(self.ptr, slot, 0)
    }

    /// A mutable variable (for accumulators carried around loops) holding `init`.
    pub fn var(&mut self, init: Value) -> Variable {
        let ty = self.b.func.dfg.value_type(init);
        let var = self.b.declare_var(ty);
        self.b.def_var(var, init);
        var
    }

    /// Returns from the function with the error code of `node` and two `i64` details if
    /// `failed` (an i8 condition) holds; continues otherwise.
    pub(crate) fn fail_if(&mut self, failed: Value, node: NodeId, details: [Value; 2]) {
        self.error_nodes.push(node);
        let code = self.error_nodes.len() as i64;
        let fail = self.b.create_block();
        let go_on = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(failed, fail, &[], go_on, &[]);
        self.b.switch_to_block(fail);
        self.b.seal_block(fail);
        for (k, detail) in details.into_iter().enumerate() {
            self.b
                .ins()
                .store(buffer_flags(), detail, self.error, (k * 8) as i32);
        }
        let code = self.b.ins().iconst(types::I32, code);
        self.b.ins().return_(&[code]);
        self.b.switch_to_block(go_on);
        self.b.seal_block(go_on);
    }
}
