//! Reading and writing NumPy `.npy` files (filled in by the host-randomness work).
