//! A compiled call with preallocated outputs (`CompiledGraph::run_into`) allocates nothing
//! once its graph has run: the arena and the table are reused, the checks do not allocate.
//! Counted by a global allocator that counts the allocations of the thread that asks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use dropjit::{Compiler, Generator, Mode, ParameterStore, Tensor, text};

/// The system allocator, counting this thread's allocations while `COUNTING` is set.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counters are thread-local cells that never
// allocate (const-initialized).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn check(source: &str, mode: Mode, inputs: BTreeMap<String, Tensor>) {
    let graph = text::parse(source).expect("a valid graph");
    let compiled = Compiler::new()
        .mode(mode)
        .compile(&graph)
        .expect("compiles");
    let params = ParameterStore::new();
    let mut generator = Generator::new(3);
    let mut outputs = compiled
        .run(&mut generator, &inputs, &params)
        .expect("runs");
    // A deep copy: a clone would share the buffers, and the next run would have to replace
    // them.
    let first: Vec<(String, Tensor)> = (outputs.iter())
        .map(|(name, t)| {
            (
                name.clone(),
                Tensor::new(t.shape().clone(), t.data().clone()).unwrap(),
            )
        })
        .collect();
    let counted = allocations(|| {
        for _ in 0..3 {
            (compiled.run_into(&mut generator, &inputs, &params, &mut outputs)).expect("runs");
        }
    });
    assert_eq!(counted, 0, "{mode:?}: run_into allocated");
    if mode == Mode::Train {
        assert_ne!(outputs, first, "later steps draw other masks");
    }
    // The counter works: `run` makes its outputs.
    let fresh = allocations(|| drop(compiled.run(&mut generator, &inputs, &params)));
    assert!(fresh > 0);
}

#[test]
fn dropout_calls_with_preallocated_outputs_allocate_nothing() {
    let x = Generator::new(1).normal([4, 1024], 0.0, 1.0).unwrap();
    let source = "graph g {
       %x: f32[4, 1024] = input
       %y: f32[4, 1024] = dropout %x {p = 0.5}
       %z: f32[4, 1024] = relu %y
       %w: f32[4, 1024] = add %z, %x
       output w = %w
     }";
    for mode in [Mode::Eval, Mode::Train] {
        check(source, mode, BTreeMap::from([("x".to_string(), x.clone())]));
    }
}

#[test]
fn a_channel_dropout_with_keep_bytes_allocates_nothing() {
    let x = Generator::new(2).normal([2, 8, 3, 5], 0.0, 1.0).unwrap();
    let source = "graph g {
       %x: f32[2, 8, 3, 5] = input
       %y: f32[2, 8, 3, 5] = dropout2d %x {p = 0.3}
       output y = %y
     }";
    check(source, Mode::Train, BTreeMap::from([("x".to_string(), x)]));
}
