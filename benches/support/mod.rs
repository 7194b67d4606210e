//! Code the benchmarks share with their tests.

pub mod bitplane;

/// The machine figures come from, as one line: the CPU's model, the vector extensions the code
/// can use, and the cores the process may run on. Every bench prints it first, so figures
/// name their machine (compare only figures of one run on one machine).
pub fn machine() -> String {
    let mut extensions = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        for (name, present) in [
            ("sse4.1", has!("sse4.1")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx512f", has!("avx512f")),
        ] {
            if present {
                extensions.push(name);
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "machine: {} ({}; {}), {cores} cores available; mask kernel {}",
        cpu_model(),
        std::env::consts::ARCH,
        extensions.join(", "),
        dropjit::Isa::best().name()
    )
}

/// The CPU's model name (from `/proc/cpuinfo` where there is one).
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    (info.lines())
        .find_map(|line| line.strip_prefix("model name")?.split(':').nth(1))
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
