//! The checkpoint (safetensors) reader on arbitrary bytes: see `entries::checkpoint`.

#![no_main]

#[allow(dead_code)]
#[path = "../../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::checkpoint(data));
