//! The JIT against the interpreter on graphs the bytes make: see `entries::compile`.

#![no_main]

#[allow(dead_code)]
#[path = "../../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::compile(data));
