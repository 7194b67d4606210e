//! Host-side randomness (filled in by the host-randomness work).
