//! Synthetic trial data for the demo, the tests and the benchmarks: a seeded STIR-like cohort
//! ([`cohort`]) sent as the requests an EDC would send, and the small deterministic generator it
//! draws from ([`prng`]).
//!
//! Fictional data only, never a real person. It is not a fixture loader (fixtures are data files
//! under `tests/data/`) and it validates nothing: the service does that to what it generates.

pub mod cohort;
pub mod prng;

pub use cohort::*;
