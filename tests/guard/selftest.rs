//! Proof that the guard pages work: the test binary re-runs one of its own tests in a child
//! process (`std::env::current_exe()`, a test-name filter and [`CHILD`] naming what to do),
//! and the child reads one element beyond a vector's guarded side, which must kill it with
//! SIGSEGV; a child reading the last element inside must pass.

use std::env;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::ptr;

use super::alloc::{Side, is_guarded};

/// The environment variable that makes a test binary the child: its value names the access.
pub const CHILD: &str = "DROPJIT_GUARD_CHILD";

/// The accesses a child makes, and whether each must fault.
const ACCESSES: [(&str, bool); 4] = [
    ("inside", false),
    ("small", true),
    ("large", true),
    ("huge", true),
];

/// The self-test: in the parent, runs `test` (the calling test's name) in a child process
/// per access and checks how each child ended; in a child, makes the access [`CHILD`] names.
pub fn check_faults(test: &str, side: Side) {
    if let Ok(access) = env::var(CHILD) {
        touch(&access, side);
        return;
    }
    let exe = env::current_exe().expect("the test binary knows its path");
    for (access, faults) in ACCESSES {
        let output = Command::new(&exe)
            .args([test, "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD, access)
            .output()
            .expect("the test binary runs again");
        let report = format!(
            "access {access}: {:?}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if faults {
            assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{report}");
        } else {
            assert!(output.status.success(), "{report}");
            // The filter matched: the child really ran the test.
            assert!(
                String::from_utf8_lossy(&output.stdout).contains("1 passed"),
                "{report}"
            );
        }
    }
}

/// Reads one `f32` next to a guarded vector: `inside` its last (or, at the start side,
/// first) element; `small`, `large` and `huge` the element beyond its guarded side, of a
/// vector of 3 elements, of 100, and of several pages (which is not recycled when freed).
fn touch(access: &str, side: Side) {
    let (len, beyond) = match access {
        "inside" => (3, false),
        "small" => (3, true),
        "large" => (100, true),
        "huge" => (10_000, true),
        other => panic!("unknown access {other:?} in {CHILD}"),
    };
    let v: Vec<f32> = vec![1.5; len];
    assert!(is_guarded(v.as_ptr().cast()), "the vector is guarded");
    assert_eq!(v.capacity(), len, "the vector has no spare capacity");
    let at = match (side, beyond) {
        (Side::End, false) => v.as_ptr().wrapping_add(len - 1),
        (Side::End, true) => v.as_ptr().wrapping_add(len),
        (Side::Start, false) => v.as_ptr(),
        (Side::Start, true) => v.as_ptr().wrapping_sub(1),
    };
    // SAFETY: inside, `at` is an element of `v`. Beyond, it is not: this is the deliberate
    // out-of-bounds read the child exists to make, into the guard page, and it does not
    // return (the process dies of SIGSEGV, which the parent checks). Volatile, so the read
    // is made.
    let value = unsafe { ptr::read_volatile(at) };
    println!("{access}: read {value} at {at:?}");
}
