//! Code the benchmarks share with their tests.

pub mod bitplane;

/// The CPU's model name (from `/proc/cpuinfo` where there is one), so figures name their machine.
#[allow(dead_code)] // not every bench prints it
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    (info.lines())
        .find_map(|line| line.strip_prefix("model name")?.split(':').nth(1))
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
