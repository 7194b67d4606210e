//! The instruction sets the rustc-compiled helpers of generated code are written for (the
//! keep-bit generator of `rng::planes` and the matrix products of `gemm`), detected at run
//! time. Every helper gives the same bits on every instruction set, so choosing one is only
//! a matter of speed; `Compiler::isa` forces one, which is how tests run every path on a
//! host that has them all.

/// An instruction set the helpers can run on. Ordered slowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust: any host.
    Portable,
    /// x86-64 with AVX2 and FMA (eight f32 or u32 lanes).
    Avx2,
    /// x86-64 with AVX-512F (sixteen lanes; it includes FMA).
    Avx512,
}

impl Isa {
    /// Every instruction set, slowest first (their discriminants' order).
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// Its name, as options and figures print it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The instruction set named `name`, if any.
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// True if this host's CPU runs it.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The instruction sets this host runs, slowest first.
    pub fn available() -> Vec<Isa> {
        (Isa::ALL.into_iter())
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// The widest instruction set this host runs.
    pub fn best() -> Isa {
        *(Isa::available().last()).expect("invariant: portable code runs anywhere")
    }

    /// The instruction set of discriminant `index` (as generated code passes it).
    pub(crate) fn from_index(index: u64) -> Option<Isa> {
        Isa::ALL.get(usize::try_from(index).ok()?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_discriminants_round_trip_and_portable_code_is_always_there() {
        for (i, isa) in Isa::ALL.into_iter().enumerate() {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
            assert_eq!(isa as usize, i);
            assert_eq!(Isa::from_index(i as u64), Some(isa));
        }
        assert_eq!(Isa::from_name("sse"), None);
        assert_eq!(Isa::from_index(3), None);
        assert!(Isa::Portable.is_available());
        assert!(Isa::available().contains(&Isa::best()));
    }
}
