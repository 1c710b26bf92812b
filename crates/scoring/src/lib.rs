//! Pure outcome computations over domain types: instruments, IMACS DOI, 2016 TIS, CDASI, cohort statistics.

pub mod cdasi;
pub mod change;
pub mod core_set;
pub mod doi;
pub mod exact;
pub mod haq_di;
pub mod mmt;
pub mod outcome;
pub mod protocol_eval;
pub mod stats;
pub mod tis;

pub use outcome::{CaseOutcome, score_case};
