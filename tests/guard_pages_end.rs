//! Generated code never touches memory outside its buffers, checked at their ends: every heap
//! buffer of this test binary that a run touches (inputs, parameters, outputs, the arena, the
//! address table) ends right where an inaccessible page begins, so an access one element past its
//! end kills the process with SIGSEGV (see tests/guard/). On such buffers, the differential runs of
//! tests/jit_differential.rs: every `ir/` program and 200 random graphs, both modes, fused and
//! unfused, with the reference GEMM and `sgemm`, through `run` (or `run_mut`) and `run_into`.
//! tests/guard_pages_start.rs guards the other side.

mod common;
mod guard;

use guard::alloc::{GuardPages, Side};
use guard::differential::{check_ir_programs, check_random_graphs};
use guard::selftest::check_faults;

#[global_allocator]
static ALLOCATOR: GuardPages = GuardPages::new(Side::End);

#[test]
fn an_access_beyond_a_guarded_vector_kills_the_process() {
    check_faults(
        "an_access_beyond_a_guarded_vector_kills_the_process",
        Side::End,
    );
}

#[test]
fn ir_programs_stay_inside_their_buffers() {
    check_ir_programs();
}

#[test]
fn random_graphs_stay_inside_their_buffers() {
    check_random_graphs(0..200);
}
