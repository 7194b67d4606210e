//! The emitted Philox4x32-10 and RNG contract v1 ([`super`]), JIT-compiled on the native ISA
//! and compared bit for bit with the host definitions in [`crate::rng`]. (Unit tests, since
//! the emitters take Cranelift's builder and lowering is not public.)
//!
//! Each test builds a tiny function around one emitter, runs Cranelift's verifier on it, compiles
//! it and calls it through one fixed `extern "C"` signature.

use std::time::Instant;

use super::{emit_group_uniforms, emit_philox4x32_10};
use crate::rng::mask::{GROUP_SIZE, MaskSource, fill_uniforms, group_uniforms};
use crate::rng::philox4x32_10;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, InstBuilder, MemFlagsData, Type, UserFuncName, Value, types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::verify_function;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};

/// `(c0, c1, c2, c3, k0, k1, out)`: writes Philox4x32-10 of the counter under the key to `out[0..4]`.
type PhiloxFn = extern "C" fn(u32, u32, u32, u32, u32, u32, *mut u32);

/// `(seed, stream, step, first_group, groups, out)`: writes the uniforms of groups
/// `first_group..first_group + groups` to `out[0..128 * groups]`.
type GroupsFn = extern "C" fn(u64, u32, u32, u64, u64, *mut u32);

/// A native JIT module; functions compiled in it live as long as it does.
struct Jit {
    module: JITModule,
}

impl Jit {
    fn new() -> Jit {
        let mut flags = settings::builder();
        flags
            .set("opt_level", "speed")
            .expect("opt_level is a flag");
        flags.set("is_pic", "false").expect("is_pic is a flag");
        flags
            .set("use_colocated_libcalls", "false")
            .expect("a flag");
        let isa = cranelift_native::builder()
            .expect("host ISA is supported")
            .finish(settings::Flags::new(flags))
            .expect("host ISA builds");
        Jit {
            module: JITModule::new(JITBuilder::with_isa(isa, default_libcall_names())),
        }
    }

    /// Compiles a function with parameters `params` and no results whose body `build` emits
    /// into the entry block (which it may leave for others); returns its code address.
    fn compile(
        &mut self,
        name: &str,
        params: &[Type],
        build: impl FnOnce(&mut FunctionBuilder, &[Value]),
    ) -> *const u8 {
        let mut sig = self.module.make_signature();
        sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        let id = self
            .module
            .declare_function(name, Linkage::Local, &sig)
            .expect("declare");
        let mut ctx = self.module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let args = b.block_params(entry).to_vec();
        build(&mut b, &args);
        b.ins().return_(&[]);
        b.finalize(self.module.target_config());
        if let Err(errors) = verify_function(&ctx.func, self.module.isa()) {
            panic!(
                "verifier errors in {name}:\n{errors}\n{}",
                ctx.func.display()
            );
        }
        self.module.define_function(id, &mut ctx).expect("compiles");
        self.module.finalize_definitions().expect("links");
        self.module.get_finalized_function(id)
    }

    fn philox(&mut self) -> PhiloxFn {
        let ptr = self.module.target_config().pointer_type();
        let mut params = vec![types::I32; 6];
        params.push(ptr);
        let code = self.compile("philox", &params, |b, args| {
            let counter = [args[0], args[1], args[2], args[3]];
            let words = emit_philox4x32_10(b, counter, [args[4], args[5]]);
            for (w, word) in (0i32..).zip(words) {
                b.ins().store(MemFlagsData::trusted(), word, args[6], 4 * w);
            }
        });
        // SAFETY: `code` was compiled above for exactly `PhiloxFn`'s parameters (six i32 and a
        // pointer, no results) in the platform's default C calling convention, and stays mapped
        // while `self` lives (each test keeps its `Jit` until the end).
        unsafe { std::mem::transmute::<*const u8, PhiloxFn>(code) }
    }

    fn groups(&mut self) -> GroupsFn {
        let ptr = self.module.target_config().pointer_type();
        let params = [
            types::I64,
            types::I32,
            types::I32,
            types::I64,
            types::I64,
            ptr,
        ];
        let code = self.compile("groups", &params, |b, args| {
            let [seed, stream, step, first, count, out] = args else {
                panic!("six parameters");
            };
            emit_groups_loop(b, [*seed, *stream, *step], *first, *count, *out);
        });
        // SAFETY: `code` was compiled above for exactly `GroupsFn`'s parameters (i64, i32, i32,
        // i64, i64, pointer; no results) in the platform's default C calling convention, and
        // stays mapped while `self` lives (each test keeps its `Jit` until the end).
        unsafe { std::mem::transmute::<*const u8, GroupsFn>(code) }
    }
}

/// A guarded do-while loop calling `emit_group_uniforms` for `count` groups from `first`,
/// advancing `out` by 512 bytes per group.
fn emit_groups_loop(
    b: &mut FunctionBuilder,
    source: [Value; 3],
    first: Value,
    count: Value,
    out: Value,
) {
    let ptr = b.func.dfg.value_type(out);
    let body = b.create_block();
    let g = b.append_block_param(body, types::I64);
    let dst = b.append_block_param(body, ptr);
    let done = b.create_block();
    let end = b.ins().iadd(first, count);
    b.ins()
        .brif(count, body, &[first.into(), out.into()], done, &[]);

    b.switch_to_block(body);
    let [seed, stream, step] = source;
    emit_group_uniforms(b, seed, stream, step, g, dst);
    let next = b.ins().iadd_imm_u(g, 1);
    let next_dst = b.ins().iadd_imm_u(dst, (GROUP_SIZE * 4) as i64);
    let more = b.ins().icmp(IntCC::NotEqual, next, end);
    b.ins()
        .brif(more, body, &[next.into(), next_dst.into()], done, &[]);
    b.seal_block(body);

    b.switch_to_block(done);
    b.seal_block(done);
}

/// SplitMix64: test inputs from a generator unrelated to Philox.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn word(&mut self) -> u32 {
        self.next() as u32
    }
}

fn run_philox(f: PhiloxFn, counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut out = [0u32; 4];
    f(
        counter[0],
        counter[1],
        counter[2],
        counter[3],
        key[0],
        key[1],
        out.as_mut_ptr(),
    );
    out
}

/// The uniforms of `groups` groups from `first`, written deliberately at an address that is
/// 4-byte but not 16-byte aligned, as the emitter allows.
fn run_groups(f: GroupsFn, source: MaskSource, first: u64, groups: usize) -> Vec<u32> {
    let mut buf = vec![0u32; groups * GROUP_SIZE + 4];
    let skip = (0..4)
        .find(|&i| (buf[i..].as_ptr() as usize) % 16 == 4)
        .expect("some offset is 4 mod 16");
    let out = buf[skip..].as_mut_ptr();
    f(
        source.seed,
        source.stream,
        source.step,
        first,
        groups as u64,
        out,
    );
    buf[skip..skip + groups * GROUP_SIZE].to_vec()
}

#[test]
fn philox_matches_random123_known_answers() {
    let mut jit = Jit::new();
    let f = jit.philox();
    let cases = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (counter, key, expected) in cases {
        assert_eq!(
            run_philox(f, counter, key),
            expected,
            "counter {counter:x?} key {key:x?}"
        );
    }
}

#[test]
fn philox_matches_host_on_random_inputs() {
    let mut jit = Jit::new();
    let f = jit.philox();
    let mut rng = SplitMix(1);
    for _ in 0..20_000 {
        let counter = [rng.word(), rng.word(), rng.word(), rng.word()];
        let key = [rng.word(), rng.word()];
        assert_eq!(
            run_philox(f, counter, key),
            philox4x32_10(counter, key),
            "counter {counter:x?} key {key:x?}"
        );
    }
}

#[test]
fn group_uniforms_match_fill_uniforms() {
    let mut jit = Jit::new();
    let f = jit.groups();
    let mut rng = SplitMix(2);
    let mut sources = vec![
        MaskSource {
            seed: 0,
            stream: 0,
            step: 0,
        },
        MaskSource {
            seed: 0x0123_4567_89ab_cdef,
            stream: 3,
            step: 17,
        },
        MaskSource {
            seed: u64::MAX,
            stream: (1 << 31) - 1,
            step: u32::MAX,
        },
        MaskSource {
            seed: 1 << 32,
            stream: 1,
            step: u32::MAX - 1,
        },
        MaskSource {
            seed: 0xffff_ffff,
            stream: 1 << 31,
            step: u32::MAX - 2,
        },
    ];
    sources.extend((0..40).map(|_| MaskSource {
        seed: rng.next(),
        stream: rng.word() >> 1,
        step: rng.word(),
    }));
    for (i, source) in sources.into_iter().enumerate() {
        let n = [1, 127, 128, 129, 1000, 3 * 128, 5000][i % 7];
        let mut expected = vec![0u32; n];
        fill_uniforms(source, &mut expected);
        let got = run_groups(f, source, 0, n.div_ceil(GROUP_SIZE));
        assert_eq!(&got[..n], &expected[..], "{source:?}, n = {n}");
    }
}

#[test]
fn group_uniforms_match_host_for_large_group_indices() {
    let mut jit = Jit::new();
    let f = jit.groups();
    let source = MaskSource {
        seed: 0xdead_beef_0bad_f00d,
        stream: 12345,
        step: u32::MAX,
    };
    let firsts = [
        (1u64 << 32) - 1,
        1 << 32,
        (1 << 32) + 12_345,
        0x0123_4567_89ab,
        (1 << 59) - 3,
    ];
    for first in firsts {
        let got = run_groups(f, source, first, 3);
        for (i, chunk) in got.chunks(GROUP_SIZE).enumerate() {
            let g = first + i as u64;
            assert_eq!(chunk, &group_uniforms(source, g)[..], "group {g:#x}");
        }
    }
}

/// Rough throughput of the emitted uniforms, one core: run with
/// `cargo test --release --test jit_philox -- --ignored --nocapture`. Reports the best of many
/// short runs, which is robust to a busy machine.
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    let mut jit = Jit::new();
    let f = jit.groups();
    let source = MaskSource {
        seed: 42,
        stream: 1,
        step: 7,
    };
    let mut out = vec![0u32; 1024 * GROUP_SIZE];
    let emitted = best_rate(out.len(), || {
        f(
            source.seed,
            source.stream,
            source.step,
            0,
            1024,
            out.as_mut_ptr(),
        )
    });
    let mut host_out = vec![0u32; 64 * GROUP_SIZE];
    let host = best_rate(host_out.len(), || fill_uniforms(source, &mut host_out));
    println!(
        "emitted: {:.0} M U/s; host fill_uniforms: {:.0} M U/s",
        emitted / 1e6,
        host / 1e6
    );
}

/// The best rate, in values per second, of 50 runs of `run`, each producing `values` values.
fn best_rate(values: usize, mut run: impl FnMut()) -> f64 {
    let best = (0..50)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    values as f64 / best
}
