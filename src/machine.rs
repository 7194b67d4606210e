//! The machine figures come from, as one line: every bench and `dropjit bench` print it first,
//! so a figure names its host (hosts of one kind differ: compare only figures of one run on one
//! machine).

use crate::isa::Isa;

/// `CPU model (arch; vector extensions), N cores available; helpers ISA`.
pub fn describe() -> String {
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
        "machine: {} ({}; {}), {cores} cores available; helpers {}",
        cpu_model(),
        std::env::consts::ARCH,
        extensions.join(", "),
        Isa::best().name()
    )
}

/// The CPU's model name (from `/proc/cpuinfo` where there is one), else the architecture.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    (info.lines())
        .find_map(|line| line.strip_prefix("model name")?.split(':').nth(1))
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_names_the_cpu_the_cores_and_the_helpers() {
        let line = super::describe();
        assert!(line.starts_with("machine: "), "{line}");
        assert!(line.contains(std::env::consts::ARCH), "{line}");
        assert!(line.contains("cores available; helpers "), "{line}");
    }
}
