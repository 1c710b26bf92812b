//! Trial facts as validated types: studies, subjects, visits, assessments and events. No IO.
//!
//! Parse, don't validate: every type here can only hold a value the clinical definitions allow
//! (docs/clinical.md, sections 1-4), and every rejection names the field path and the
//! allowed range ([`error::InvalidInput`]). Numbers are exact decimals ([`rust_decimal::Decimal`]).

pub mod biopsy;
pub mod case;
pub mod cdasi;
pub mod conventions;
pub mod date;
pub mod enzyme;
pub mod error;
pub mod event;
pub mod global;
pub mod glucocorticoid;
pub mod haq;
pub mod json;
pub mod lab;
pub mod mmt8;
pub mod protocol;
pub mod quantity;
pub mod score;
pub mod treatment_history;
pub mod visit;

pub use rust_decimal::Decimal;
