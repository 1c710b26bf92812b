//! Pure outcome computations over domain types: instruments, IMACS DOI, 2016 TIS, CDASI, cohort statistics.

pub mod stats;
